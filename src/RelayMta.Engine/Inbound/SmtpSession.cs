using System.Buffers;
using System.Collections.Immutable;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Akka.Actor;
using Microsoft.Extensions.Logging;
using RelayMta.Engine.Queue;
using RelayMta.Engine.Spool;
using RelayMta.Protocol.Mail;
using RelayMta.Protocol.Smtp;

namespace RelayMta.Engine.Inbound;

/// <summary>
/// One SMTP server session (RFC 5321) over one TCP connection: the read loop, the command rules
/// and the transaction state. Owned by a <see cref="SessionActor"/>, which drives its lifecycle
/// (drain, forced close, end); nothing here touches actor state. Bytes are read through a
/// <see cref="PipeReader"/>; replies are written into a <see cref="PipeWriter"/> and flushed once
/// no complete command is left in the input, so a PIPELINING batch gets one write (RFC 2920).
/// </summary>
internal sealed class SmtpSession : IDisposable
{
    // RFC 5321 4.5.3.1.4 allows 512 octets; extension parameters make lines longer, and 1000 is
    // what we promise. Longer lines get 500 5.5.2.
    private const int MaxCommandLine = 1000;

    private readonly Socket _socket;
    private readonly InboundContext _ctx;
    private readonly IPAddress _clientAddress;
    private readonly bool _mayRelay;
    private readonly Timer _timer;
    private readonly Stream _stream;
    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private readonly DataReader _data = new();
    private readonly List<string> _recipients = new();

    private SessionState _state = SessionState.Connected;
    private bool _inData;
    private bool _discarding;
    private bool _closing;
    private bool _unflushed;
    private int _errors;
    private int _commands;
    private int _accepted;
    private long _deadline;
    private volatile bool _draining;
    private volatile bool _forced;

    private string? _helo;
    private bool _esmtp;
    private string? _sender;
    private bool _smtpUtf8;
    private bool _nonAsciiEnvelope;
    private BodyType _bodyType;
    private bool _rcptAttempted;
    private IncomingMessage? _incoming;

    public SmtpSession(Socket socket, InboundContext ctx, long id)
    {
        _socket = socket;
        _ctx = ctx;
        Id = id;
        var remote = (IPEndPoint)socket.RemoteEndPoint!;
        _clientAddress = remote.Address.IsIPv4MappedToIPv6 ? remote.Address.MapToIPv4() : remote.Address;
        _mayRelay = ctx.MayRelay(_clientAddress);
        _stream = new NetworkStream(socket, ownsSocket: true);
        // Zero-byte reads: an idle session holds no receive buffer until data arrives.
        _input = PipeReader.Create(_stream, new StreamPipeReaderOptions(bufferSize: 4096, minimumReadSize: 1024, leaveOpen: true, useZeroByteReads: true));
        _output = PipeWriter.Create(_stream, new StreamPipeWriterOptions(minimumBufferSize: 1024, leaveOpen: true));
        _timer = new Timer(static s => ((SmtpSession)s!).OnTimer(), this, Timeout.Infinite, Timeout.Infinite);
    }

    /// <summary>The session number (for logs).</summary>
    public long Id { get; }

    /// <summary>The client's address.</summary>
    public IPAddress ClientAddress => _clientAddress;

    /// <summary>Finish the current transaction, then 421 and close. Thread-safe.</summary>
    public void RequestDrain()
    {
        _draining = true;
        _input.CancelPendingRead();
    }

    /// <summary>421 and close now, transaction or not. Thread-safe.</summary>
    public void RequestForceClose()
    {
        _forced = true;
        _input.CancelPendingRead();
    }

    /// <summary>Runs the session until the client quits, the connection drops, or we close it.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        var log = _ctx.Log;
        log.LogDebug("session {Session}: connect from [{Client}]", Id, _clientAddress);
        try
        {
            if (_draining || _forced)
            {
                Write(Replies.ShuttingDown);
                await FlushAsync(ct).ConfigureAwait(false);
                return;
            }
            Write(_ctx.Banner);
            await FlushAsync(ct).ConfigureAwait(false);

            while (!_closing)
            {
                Arm(_inData ? _ctx.Settings.Limits.DataTimeout : _ctx.Settings.Limits.CommandTimeout);
                var result = await _input.ReadAsync(ct).ConfigureAwait(false);
                _timer.Change(Timeout.Infinite, Timeout.Infinite);
                var buffer = result.Buffer;

                if (result.IsCanceled && OnInterrupted())
                {
                    _input.AdvanceTo(buffer.Start, buffer.End);
                    await FlushAsync(ct).ConfigureAwait(false);
                    break;
                }

                while (!_closing)
                {
                    if (_inData)
                    {
                        if (!_data.Feed(ref buffer, _incoming!)) break;
                        Write(await FinishDataAsync().ConfigureAwait(false));
                        continue;
                    }
                    if (!TakeCommand(ref buffer)) break;
                }

                _input.AdvanceTo(buffer.Start, buffer.End);
                await FlushAsync(ct).ConfigureAwait(false);
                if (result.IsCompleted)
                {
                    if (!_closing) log.LogDebug("session {Session}: client [{Client}] closed the connection", Id, _clientAddress);
                    break;
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            log.LogDebug("session {Session}: connection from [{Client}] ended: {Reason}", Id, _clientAddress, e.Message);
        }
        finally
        {
            DiscardTransaction();
            log.LogDebug("session {Session}: disconnect from [{Client}] commands={Commands} accepted={Accepted} errors={Errors}",
                Id, _clientAddress, _commands, _accepted, _errors);
        }
    }

    public void Dispose()
    {
        _timer.Dispose();
        DiscardTransaction();
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // already gone
        }
        _stream.Dispose();
    }

    // ------------------------------------------------------------------ reading

    /// <summary>A read was cancelled (timer, drain, force). Returns true when the session must end.</summary>
    private bool OnInterrupted()
    {
        if (_forced)
        {
            Write(Replies.ShuttingDown);
            _closing = true;
            return true;
        }
        if (Stopwatch.GetTimestamp() >= _deadline)
        {
            _ctx.Log.LogInformation("session {Session}: timeout from [{Client}] {Where}", Id, _clientAddress, _inData ? "in DATA" : "waiting for a command");
            Write(Replies.Timeout);
            _closing = true;
            return true;
        }
        if (_draining && !_inData && _state is SessionState.Connected or SessionState.Ready)
        {
            Write(Replies.ShuttingDown);
            _closing = true;
            return true;
        }
        return false; // a drain while a transaction is open: carry on until it ends
    }

    private void Arm(TimeSpan timeout)
    {
        _deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        _timer.Change(timeout, Timeout.InfiniteTimeSpan);
    }

    private void OnTimer() => _input.CancelPendingRead();

    /// <summary>Takes one command line off the buffer and handles it; false when more input is needed.</summary>
    private bool TakeCommand(ref ReadOnlySequence<byte> buffer)
    {
        if (_discarding)
        {
            if (!LineReader.TrySkipLine(ref buffer)) return false;
            _discarding = false;
            Error(Replies.LineTooLong);
            return true;
        }

        switch (LineReader.TryReadLine(ref buffer, MaxCommandLine, out var line))
        {
            case LineStatus.NeedMore:
                return false;
            case LineStatus.TooLong:
                _discarding = true; // reply once the rest of the line has gone by, to keep replies in order
                return true;
            case LineStatus.BareLineFeed:
                _commands++;
                Error(Replies.BareLineFeed);
                return true;
        }

        _commands++;
        if (line.IsSingleSegment)
        {
            Handle(line.FirstSpan);
        }
        else
        {
            Span<byte> copy = stackalloc byte[MaxCommandLine];
            line.CopyTo(copy);
            Handle(copy[..(int)line.Length]);
        }
        return true;
    }

    // ------------------------------------------------------------------ commands

    private void Handle(ReadOnlySpan<byte> line)
    {
        var verb = CommandParser.ParseVerb(line, out var argument);

        if (_draining && _state is SessionState.Connected or SessionState.Ready && verb != SmtpVerb.Quit)
        {
            Write(Replies.ShuttingDown);
            _closing = true;
            return;
        }

        if (line.IndexOfAny((byte)0, (byte)'\r') >= 0)
        {
            Error(Replies.InvalidCharacters);
            return;
        }
        // 8-bit bytes only make sense in addresses under SMTPUTF8 (RFC 6531) and in the EHLO name.
        if (verb is not (SmtpVerb.Mail or SmtpVerb.Rcpt or SmtpVerb.Ehlo or SmtpVerb.Helo) &&
            line.IndexOfAnyInRange((byte)0x80, (byte)0xff) >= 0)
        {
            Error(Replies.EightBitCommand);
            return;
        }

        var sequence = SessionRules.Check(_state, verb);
        if (sequence is not null)
        {
            // RFC 2920 3.1 / RFC 5321 3.3: DATA after only failed RCPTs is "no valid recipients".
            Error(verb == SmtpVerb.Data && _state == SessionState.MailGiven && _rcptAttempted ? Replies.NoValidRecipients : sequence);
            return;
        }

        switch (verb)
        {
            case SmtpVerb.Ehlo:
            case SmtpVerb.Helo:
                Hello(verb == SmtpVerb.Ehlo, argument);
                break;
            case SmtpVerb.Mail:
                Mail(argument);
                break;
            case SmtpVerb.Rcpt:
                Rcpt(argument);
                break;
            case SmtpVerb.Data:
                Data(argument);
                break;
            case SmtpVerb.Rset:
                if (!argument.IsEmpty)
                {
                    Error(Replies.SyntaxError);
                    break;
                }
                DiscardTransaction();
                _state = _helo is null ? SessionState.Connected : SessionState.Ready;
                Write(Replies.ResetOk);
                break;
            case SmtpVerb.Noop:
                Write(Replies.Ok);
                break;
            case SmtpVerb.Quit:
                Write(Replies.Bye);
                _closing = true;
                break;
            case SmtpVerb.Vrfy:
                if (argument.IsEmpty) Error(Replies.SyntaxError);
                else Write(Replies.CannotVerify); // RFC 5321 3.5.3: 252 rather than reveal mailboxes
                break;
            case SmtpVerb.Help:
                Write(Replies.Help);
                break;
            case SmtpVerb.Expn:
            case SmtpVerb.StartTls:
            case SmtpVerb.Auth:
            case SmtpVerb.Bdat:
                Error(Replies.NotImplemented);
                break;
            default:
                Error(Replies.UnknownCommand);
                break;
        }
    }

    private void Hello(bool esmtp, ReadOnlySpan<byte> argument)
    {
        if (!CommandParser.TryParseHelo(argument, out var domain))
        {
            Error(Replies.HeloNeedsDomain);
            return;
        }
        // RFC 5321 4.1.4: EHLO/HELO resets any transaction.
        DiscardTransaction();
        _helo = Encoding.UTF8.GetString(domain);
        _esmtp = esmtp;
        _state = SessionState.Ready;
        Write(esmtp ? _ctx.EhloReply : _ctx.HeloReply);
    }

    private void Mail(ReadOnlySpan<byte> argument)
    {
        var error = CommandParser.ParseMailFrom(argument, out var path, out var parameters);
        if (error is not null)
        {
            Error(error);
            return;
        }
        if (!_esmtp && (parameters.Size >= 0 || parameters.Body != BodyType.NotSpecified || parameters.SmtpUtf8 || parameters.HasAuth))
        {
            Error(Replies.ParameterNotImplemented); // parameters need EHLO (RFC 5321 4.1.1.11)
            return;
        }
        if (path.HasNonAscii && !parameters.SmtpUtf8)
        {
            Error(Replies.NonAsciiAddress);
            return;
        }
        // RFC 1870 6: refuse at MAIL when the declared size is already too big.
        if (parameters.Size > _ctx.Settings.Limits.MaxMessageSize)
        {
            Error(Replies.MessageTooBig);
            return;
        }
        _sender = path.IsNull ? "" : Encoding.UTF8.GetString(path.LocalPart) + "@" + Encoding.UTF8.GetString(path.Domain);
        _smtpUtf8 = parameters.SmtpUtf8;
        _nonAsciiEnvelope = path.HasNonAscii;
        _bodyType = parameters.Body;
        _state = SessionState.MailGiven;
        Write(Replies.SenderOk);
    }

    private void Rcpt(ReadOnlySpan<byte> argument)
    {
        var error = CommandParser.ParseRcptTo(argument, out var path);
        if (error is not null)
        {
            Error(error);
            return;
        }
        _rcptAttempted = true;
        if (path.HasNonAscii && !_smtpUtf8)
        {
            Error(Replies.NonAsciiAddress);
            return;
        }
        if (_recipients.Count >= _ctx.Settings.Limits.MaxRecipients)
        {
            // RFC 5321 4.5.3.1.10: 452, and the client sends the rest in another transaction.
            Write(Replies.TooManyRecipients);
            return;
        }
        var refusal = _ctx.CheckRecipient(path, _mayRelay, out var address, out _);
        if (refusal is not null)
        {
            if (refusal == Replies.RelayDenied)
                _ctx.Log.LogInformation("session {Session}: relay denied for <{Recipient}> from [{Client}]", Id,
                    Encoding.UTF8.GetString(path.LocalPart) + "@" + Encoding.UTF8.GetString(path.Domain), _clientAddress);
            Error(refusal);
            return;
        }
        if (!_recipients.Contains(address))
        {
            _recipients.Add(address);
        }
        _nonAsciiEnvelope |= path.HasNonAscii;
        _state = SessionState.RecipientGiven;
        Write(Replies.RecipientOk);
    }

    private void Data(ReadOnlySpan<byte> argument)
    {
        if (!argument.IsEmpty)
        {
            Error(Replies.SyntaxError);
            return;
        }
        var id = _ctx.Spool.Ids.Next();
        _incoming = _ctx.Spool.Begin(id);
        var received = ReceivedHeader.Build(_helo!, _clientAddress, _ctx.Settings.Hostname, Protocol(), id.Value,
            _recipients.Count == 1 ? _recipients[0] : null, DateTimeOffset.Now);
        _incoming.WritePrefix(Encoding.UTF8.GetBytes(received));
        _data.Reset(_ctx.Settings.Limits.MaxMessageSize);
        _inData = true;
        Write(Replies.StartData);
    }

    private string Protocol() => (_esmtp, _smtpUtf8) switch
    {
        (_, true) => "UTF8SMTP", // RFC 6531 3.7.3
        (true, false) => "ESMTP",
        _ => "SMTP",
    };

    /// <summary>The content has ended (CRLF.CRLF): check it, commit it, and say what happened.</summary>
    private async Task<SmtpReply> FinishDataAsync()
    {
        _inData = false;
        var incoming = _incoming!;
        _incoming = null;
        var limits = _ctx.Settings.Limits;
        var flags = _data.Flags;

        var refusal = (flags & DataFlags.TooLarge) != 0 ? Replies.MessageTooBig
            : (flags & (DataFlags.BareCarriageReturn | DataFlags.BareLineFeed)) != 0 ? Replies.BareLineEndingInData
            : null;
        var headerEightBit = false;
        if (refusal is null)
        {
            var contentLength = incoming.Length - incoming.PrefixLength;
            var want = (int)Math.Min(contentLength, limits.MaxHeaderSize + 2L);
            var head = ArrayPool<byte>.Shared.Rent(Math.Max(want, 1));
            try
            {
                var got = incoming.CopyTo(incoming.PrefixLength, head.AsSpan(0, want));
                var info = HeaderScanner.Scan(head.AsSpan(0, got), complete: got == contentLength);
                headerEightBit = info.HeaderHasEightBit;
                if (info.HeaderLength < 0 || info.HeaderLength > limits.MaxHeaderSize) refusal = Replies.HeaderTooBig;
                else if (info.ReceivedCount > limits.MaxReceivedHeaders) refusal = Replies.MailLoop;
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(head);
            }
        }

        if (refusal is not null)
        {
            incoming.Dispose();
            _ctx.Log.LogInformation("session {Session}: message from <{Sender}> refused: {Reply}", Id, _sender, refusal.ToString());
            ResetTransaction();
            return refusal;
        }

        var messageFlags = MessageFlags.None;
        if (_bodyType == BodyType.EightBitMime) messageFlags |= MessageFlags.EightBitDeclared;
        if ((flags & DataFlags.EightBit) != 0) messageFlags |= MessageFlags.EightBitContent;
        if (_smtpUtf8) messageFlags |= MessageFlags.SmtpUtf8;
        if (_smtpUtf8 && (_nonAsciiEnvelope || headerEightBit)) messageFlags |= MessageFlags.NeedsSmtpUtf8;

        var envelope = new MailEnvelope(incoming.Id, DateTimeOffset.UtcNow, _sender!, _recipients.ToImmutableArray(),
            _clientAddress.ToString(), _helo!, Protocol(), null, messageFlags, incoming.Length);
        SpoolEntry entry;
        try
        {
            entry = await _ctx.Spool.CommitAsync(incoming, envelope).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            _ctx.Log.LogError(e, "session {Session}: could not store message {QueueId}; answering 451", Id, envelope.Id);
            ResetTransaction();
            return Replies.SpoolFailure;
        }

        _ctx.QueueManager.Tell(new QueueProtocol.Enqueued(entry), ActorRefs.NoSender);
        _accepted++;
        _ctx.Log.LogInformation("{QueueId}: accepted from=<{Sender}> size={Size} nrcpt={Recipients} client={Helo}[{Client}] session={Session}",
            envelope.Id, envelope.Sender, envelope.BodyLength, envelope.Recipients.Length, _helo, _clientAddress, Id);
        ResetTransaction();
        return new SmtpReply(250, "2.0.0", "OK: queued as " + envelope.Id.Value);
    }

    // ------------------------------------------------------------------ helpers

    private void ResetTransaction()
    {
        _sender = null;
        _recipients.Clear();
        _rcptAttempted = false;
        _smtpUtf8 = false;
        _nonAsciiEnvelope = false;
        _bodyType = BodyType.NotSpecified;
        if (_state != SessionState.Connected) _state = SessionState.Ready;
    }

    private void DiscardTransaction()
    {
        _incoming?.Dispose();
        _incoming = null;
        _inData = false;
        ResetTransaction();
    }

    private void Error(SmtpReply reply)
    {
        Write(reply);
        if (++_errors >= _ctx.Settings.Limits.MaxErrors)
        {
            _ctx.Log.LogInformation("session {Session}: too many errors from [{Client}]; closing", Id, _clientAddress);
            Write(Replies.TooManyErrors);
            _closing = true;
        }
    }

    private void Write(SmtpReply reply)
    {
        _output.Write(reply.Utf8.Span);
        _unflushed = true;
    }

    private ValueTask<FlushResult> FlushAsync(CancellationToken ct)
    {
        if (!_unflushed) return default;
        _unflushed = false;
        return _output.FlushAsync(ct);
    }
}
