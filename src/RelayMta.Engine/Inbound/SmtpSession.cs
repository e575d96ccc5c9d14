using System.Buffers;
using System.Collections.Immutable;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
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
/// and the transaction state, with STARTTLS (RFC 3207), implicit TLS (RFC 8314), AUTH PLAIN and
/// LOGIN (RFC 4954) and the per-session limits. Owned by a <see cref="SessionActor"/>, which drives
/// its lifecycle (drain, forced close, end); nothing here touches actor state. Bytes are read
/// through a <see cref="PipeReader"/>; replies are written into a <see cref="PipeWriter"/> and
/// flushed once no complete command is left in the input, so a PIPELINING batch gets one write
/// (RFC 2920).
/// </summary>
internal sealed class SmtpSession : IDisposable, SessionClock.IDeadline
{
    // RFC 5321 4.5.3.1.4 allows 512 octets; extension parameters make lines longer, and 1000 is
    // what we promise. Longer lines get 500 5.5.2.
    private const int MaxCommandLine = 1000;

    private static readonly SmtpReply ReadyForTls = new(220, "2.0.0", "Ready to start TLS");
    private static readonly SmtpReply TlsAlreadyActive = new(503, "5.5.1", "TLS already active");
    private static readonly SmtpReply TalkedTooSoon = new(554, "5.5.1", "Protocol error: client sent data before the greeting");
    private static readonly SmtpReply AuthRequired = new(530, "5.7.0", "Authentication required");
    private static readonly SmtpReply EncryptionRequired = new(538, "5.7.11", "Encryption required for requested authentication mechanism");
    private static readonly SmtpReply AlreadyAuthenticated = new(503, "5.5.1", "Already authenticated");
    private static readonly SmtpReply UnknownMechanism = new(504, "5.5.4", "Unrecognized authentication type");
    private static readonly SmtpReply AuthCancelled = new(501, "5.7.0", "Authentication cancelled");
    private static readonly SmtpReply BadBase64 = new(501, "5.5.2", "Cannot decode response");
    private static readonly SmtpReply AuthSucceeded = new(235, "2.7.0", "Authentication successful");
    private static readonly SmtpReply AuthFailed = new(535, "5.7.8", "Authentication credentials invalid");
    private static readonly SmtpReply TooManyAuthFailures = new(421, "4.7.0", "Too many failed authentication attempts, closing transmission channel");
    private static readonly SmtpReply TooSlow = new(421, "4.4.2", "Data arriving too slowly, closing transmission channel");
    private static readonly SmtpReply ContinuePlain = new(334, "", "");
    private static readonly SmtpReply AskUsername = new(334, "", "VXNlcm5hbWU6");
    private static readonly SmtpReply AskPassword = new(334, "", "UGFzc3dvcmQ6");

    private readonly Socket _socket;
    private readonly ListenerKind _kind;
    private readonly bool _exempt;
    private readonly InboundContext _ctx;
    private readonly IPAddress _clientAddress;
    private readonly bool _localIsLoopback;
    private readonly DataReader _data = new();
    private readonly List<string> _recipients = new();
    private Stream _stream;
    private PipeReader _input;
    private PipeWriter _output;

    private SessionState _state = SessionState.Connected;
    private bool _mayRelay;
    private bool _inData;
    private bool _discarding;
    private bool _closing;
    private bool _unflushed;
    private bool _partialCommand;
    private int _errors;
    private int _commands;
    private int _accepted;
    private long _deadline;
    private long _armed; // the deadline the clock acts on; 0 while not waiting for the client
    private long _dataStarted;
    private volatile bool _draining;
    private volatile bool _forced;

    private string? _helo;
    private bool _esmtp;
    private string? _tls;
    private string? _authUser;
    private AuthStep _authStep;
    private string? _loginUser;
    private Pending _pending;
    private (string User, string Password, string Mechanism) _credentials;

    private string? _sender;
    private bool _smtpUtf8;
    private bool _nonAsciiEnvelope;
    private BodyType _bodyType;
    private bool _rcptAttempted;
    private IncomingMessage? _incoming;

    private enum AuthStep : byte
    {
        None,
        PlainResponse,
        LoginUser,
        LoginPassword,
    }

    private enum Pending : byte
    {
        None,
        StartTls,
        Authenticate,
    }

    public SmtpSession(Socket socket, ListenerKind kind, bool exempt, InboundContext ctx, long id)
    {
        _socket = socket;
        _kind = kind;
        _exempt = exempt;
        _ctx = ctx;
        Id = id;
        var remote = (IPEndPoint)socket.RemoteEndPoint!;
        _clientAddress = remote.Address.IsIPv4MappedToIPv6 ? remote.Address.MapToIPv4() : remote.Address;
        _localIsLoopback = IPAddress.IsLoopback(((IPEndPoint)socket.LocalEndPoint!).Address);
        _mayRelay = ctx.MayRelay(_clientAddress);
        _stream = new NetworkStream(socket, ownsSocket: true);
        (_input, _output) = Pipes(_stream);
        ctx.Clock.Add(this);
    }

    /// <inheritdoc />
    long SessionClock.IDeadline.Deadline => Volatile.Read(ref _armed);

    /// <inheritdoc />
    void SessionClock.IDeadline.DeadlinePassed()
    {
        Volatile.Write(ref _armed, 0);
        _input.CancelPendingRead();
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
        if (log.IsEnabled(LogLevel.Debug)) Diagnostics.Log.Connect(log, Id, _clientAddress.ToString());
        try
        {
            if (_kind == ListenerKind.ImplicitTls && !await StartTlsAsync(ct).ConfigureAwait(false)) return;
            if (_draining || _forced)
            {
                Write(Replies.ShuttingDown);
                await FlushAsync(ct).ConfigureAwait(false);
                return;
            }
            if (!_exempt && _ctx.Settings.Limits.GreetDelay > TimeSpan.Zero && await TalksBeforeGreetingAsync(ct).ConfigureAwait(false))
            {
                log.LogInformation("session {Session}: [{Client}] sent data before the greeting; refused", Id, _clientAddress);
                _ctx.Metrics.MessagesRejected.WithLabels("early-talker").Inc();
                Write(TalkedTooSoon);
                await FlushAsync(ct).ConfigureAwait(false);
                return;
            }
            Write(_ctx.Banner);
            await FlushAsync(ct).ConfigureAwait(false);

            while (!_closing)
            {
                ArmTimer();
                var result = await _input.ReadAsync(ct).ConfigureAwait(false);
                Volatile.Write(ref _armed, 0);
                var buffer = result.Buffer;

                if (result.IsCanceled && OnInterrupted())
                {
                    _input.AdvanceTo(buffer.Start, buffer.End);
                    await FlushAsync(ct).ConfigureAwait(false);
                    break;
                }

                while (!_closing && _pending == Pending.None)
                {
                    if (_inData)
                    {
                        if (!_data.Feed(ref buffer, _incoming!))
                        {
                            TooSlowInData();
                            break;
                        }
                        Write(await FinishDataAsync().ConfigureAwait(false));
                        continue;
                    }
                    if (!TakeCommand(ref buffer)) break;
                }

                if (_pending == Pending.StartTls)
                {
                    // RFC 3207 / CVE-2011-0411: anything the client pipelined after STARTTLS was sent
                    // in plain text and must not be executed inside the TLS session. Throw it away.
                    if (!buffer.IsEmpty)
                        log.LogWarning("session {Session}: discarded {Bytes} bytes pipelined after STARTTLS by [{Client}]", Id, buffer.Length, _clientAddress);
                    _input.AdvanceTo(buffer.End);
                    await FlushAsync(ct).ConfigureAwait(false);
                    _pending = Pending.None;
                    if (!await StartTlsAsync(ct).ConfigureAwait(false)) break;
                    continue;
                }
                if (_pending == Pending.Authenticate)
                {
                    // Leave what follows in the pipe (examined = consumed), so it is read straight away.
                    _input.AdvanceTo(buffer.Start);
                    await FlushAsync(ct).ConfigureAwait(false);
                    _pending = Pending.None;
                    await AuthenticateAsync().ConfigureAwait(false);
                    await FlushAsync(ct).ConfigureAwait(false);
                    continue;
                }

                _partialCommand = !_inData && !buffer.IsEmpty;
                _input.AdvanceTo(buffer.Start, buffer.End);
                await FlushAsync(ct).ConfigureAwait(false);
                if (result.IsCompleted)
                {
                    if (!_closing) log.LogDebug("session {Session}: client [{Client}] closed the connection", Id, _clientAddress);
                    break;
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException or AuthenticationException)
        {
            log.LogDebug("session {Session}: connection from [{Client}] ended: {Reason}", Id, _clientAddress, e.Message);
        }
        finally
        {
            DiscardTransaction();
            if (log.IsEnabled(LogLevel.Debug)) Diagnostics.Log.Disconnect(log, Id, _clientAddress.ToString(), _commands, _accepted, _errors);
        }
    }

    public void Dispose()
    {
        _ctx.Clock.Remove(this);
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

    // ------------------------------------------------------------------ transport

    private static (PipeReader, PipeWriter) Pipes(Stream stream) => (
        // Zero-byte reads: an idle session holds no receive buffer until data arrives.
        PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 4096, minimumReadSize: 1024, leaveOpen: true, useZeroByteReads: true)),
        PipeWriter.Create(stream, new StreamPipeWriterOptions(minimumBufferSize: 1024, leaveOpen: true)));

    /// <summary>TLS handshake as the server (after STARTTLS, or at once on a TLS listener); then a fresh session (RFC 3207 4.2).</summary>
    private async Task<bool> StartTlsAsync(CancellationToken ct)
    {
        var context = _ctx.TlsContext;
        if (context is null) return false;
        await _input.CompleteAsync().ConfigureAwait(false);
        await _output.CompleteAsync().ConfigureAwait(false);
        var ssl = new SslStream(_stream, leaveInnerStreamOpen: false);
        using (var cts = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            cts.CancelAfter(_ctx.Settings.Limits.TlsHandshakeTimeout);
            try
            {
                await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
                {
                    ServerCertificateContext = context,
                    EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                    ClientCertificateRequired = false,
                }, cts.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is AuthenticationException or IOException or OperationCanceledException && !ct.IsCancellationRequested)
            {
                _ctx.Log.LogInformation("session {Session}: TLS handshake with [{Client}] failed: {Error}", Id, _clientAddress, e.Message);
                await ssl.DisposeAsync().ConfigureAwait(false);
                return false;
            }
        }
        _stream = ssl;
        (_input, _output) = Pipes(ssl);
        _tls = $"{Describe(ssl.SslProtocol)} with cipher {ssl.NegotiatedCipherSuite}";
        _ctx.Metrics.TlsSessions.WithLabels("inbound").Inc();
        _helo = null;
        _esmtp = false;
        _authUser = null;
        _mayRelay = _ctx.MayRelay(_clientAddress);
        _state = SessionState.Connected;
        ResetTransaction();
        _ctx.Log.LogDebug("session {Session}: TLS with [{Client}]: {Tls}", Id, _clientAddress, _tls);
        return true;
    }

    /// <summary>Postscreen's pregreet test: anything sent before our banner means a bot that does not wait.</summary>
    private async Task<bool> TalksBeforeGreetingAsync(CancellationToken ct)
    {
        var read = _input.ReadAsync(ct).AsTask();
        var winner = await Task.WhenAny(read, Task.Delay(_ctx.Settings.Limits.GreetDelay, ct)).ConfigureAwait(false);
        if (winner != read) _input.CancelPendingRead();
        var result = await read.ConfigureAwait(false);
        var early = !result.IsCanceled && (!result.Buffer.IsEmpty || result.IsCompleted);
        _input.AdvanceTo(result.Buffer.Start);
        return early;
    }

    private static string Describe(SslProtocols p) => p switch
    {
        SslProtocols.Tls13 => "TLSv1.3",
        SslProtocols.Tls12 => "TLSv1.2",
        _ => p.ToString(),
    };

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

    /// <summary>
    /// In DATA each read must come within data-timeout. Between commands the whole next command
    /// line must arrive within command-timeout: a client trickling a byte at a time (slowloris)
    /// does not push the deadline back.
    /// </summary>
    private void ArmTimer()
    {
        var limits = _ctx.Settings.Limits;
        if (_inData || !_partialCommand)
            _deadline = Stopwatch.GetTimestamp() + (long)((_inData ? limits.DataTimeout : limits.CommandTimeout).TotalSeconds * Stopwatch.Frequency);
        Volatile.Write(ref _armed, _deadline);
    }

    /// <summary>Slowloris in DATA: past the grace period, content must keep up a minimum rate.</summary>
    private bool TooSlowInData()
    {
        var limits = _ctx.Settings.Limits;
        if (limits.MinDataRate == 0) return false;
        var elapsed = Stopwatch.GetElapsedTime(_dataStarted);
        if (elapsed < limits.DataRateGrace || elapsed.TotalSeconds <= 0) return false;
        if (_data.Size / elapsed.TotalSeconds >= limits.MinDataRate) return false;
        _ctx.Log.LogInformation("session {Session}: [{Client}] sent {Bytes} bytes of DATA in {Seconds:0.0}s, below the minimum rate; closing",
            Id, _clientAddress, _data.Size, elapsed.TotalSeconds);
        DiscardTransaction();
        Write(TooSlow);
        _closing = true;
        return true;
    }

    /// <summary>Takes one command line off the buffer and handles it; false when more input is needed.</summary>
    private bool TakeCommand(ref ReadOnlySequence<byte> buffer)
    {
        if (_discarding)
        {
            if (!LineReader.TrySkipLine(ref buffer)) return false;
            _discarding = false;
            _authStep = AuthStep.None;
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
                _authStep = AuthStep.None;
                Error(Replies.BareLineFeed);
                return true;
        }

        _commands++;
        if (line.IsSingleSegment)
        {
            Dispatch(line.FirstSpan);
        }
        else
        {
            Span<byte> copy = stackalloc byte[MaxCommandLine];
            line.CopyTo(copy);
            Dispatch(copy[..(int)line.Length]);
        }
        return true;
    }

    private void Dispatch(ReadOnlySpan<byte> line)
    {
        if (_authStep != AuthStep.None) AuthResponse(line);
        else Handle(line);
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
            var noRecipients = verb == SmtpVerb.Data && _state == SessionState.MailGiven && _rcptAttempted;
            if (noRecipients) _ctx.Metrics.MessagesRejected.WithLabels("no-valid-recipients").Inc();
            Error(noRecipients ? Replies.NoValidRecipients : sequence);
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
            case SmtpVerb.StartTls:
                StartTlsCommand(argument);
                break;
            case SmtpVerb.Auth:
                Auth(argument);
                break;
            case SmtpVerb.Expn:
            case SmtpVerb.Bdat:
                Error(Replies.NotImplemented);
                break;
            default:
                Error(Replies.UnknownCommand);
                break;
        }
    }

    private bool OfferStartTls => _tls is null && _ctx.TlsContext is not null;

    // RFC 4954 4: AUTH only over TLS, except on loopback when the operator allows it (tests).
    private bool OfferAuth => _ctx.Settings.Auth.Enabled && (_tls is not null || (_ctx.Settings.Auth.AllowInsecure && _localIsLoopback));

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
        Write(esmtp ? _ctx.EhloReply(OfferStartTls, OfferAuth && _authUser is null) : _ctx.HeloReply);
    }

    private void StartTlsCommand(ReadOnlySpan<byte> argument)
    {
        if (_tls is not null)
        {
            Error(TlsAlreadyActive);
            return;
        }
        if (_ctx.TlsContext is null)
        {
            Error(Replies.NotImplemented);
            return;
        }
        if (!argument.IsEmpty)
        {
            Error(Replies.SyntaxError);
            return;
        }
        Write(ReadyForTls);
        _pending = Pending.StartTls;
    }

    private void Auth(ReadOnlySpan<byte> argument)
    {
        if (!_ctx.Settings.Auth.Enabled)
        {
            Error(Replies.NotImplemented);
            return;
        }
        if (!OfferAuth)
        {
            Error(EncryptionRequired);
            return;
        }
        if (_authUser is not null)
        {
            Error(AlreadyAuthenticated);
            return;
        }
        if (_ctx.Limiter.IsAuthBlocked(_clientAddress))
        {
            Write(ClientLimiter.AuthBlocked);
            return;
        }
        var space = argument.IndexOf((byte)' ');
        var mechanism = space < 0 ? argument : argument[..space];
        var initial = space < 0 ? ReadOnlySpan<byte>.Empty : argument[(space + 1)..];
        if (Ascii.EqualsIgnoreCase(mechanism, "PLAIN"u8))
        {
            if (initial.IsEmpty)
            {
                _authStep = AuthStep.PlainResponse;
                Write(ContinuePlain);
            }
            else
            {
                PlainCredentials(initial);
            }
        }
        else if (Ascii.EqualsIgnoreCase(mechanism, "LOGIN"u8))
        {
            if (initial.IsEmpty)
            {
                _authStep = AuthStep.LoginUser;
                Write(AskUsername);
            }
            else if (Decode(initial) is { } user)
            {
                _loginUser = user;
                _authStep = AuthStep.LoginPassword;
                Write(AskPassword);
            }
            else
            {
                Error(BadBase64);
            }
        }
        else
        {
            Error(UnknownMechanism);
        }
    }

    /// <summary>A line of the AUTH exchange (RFC 4954 4): base64, or "*" to cancel.</summary>
    private void AuthResponse(ReadOnlySpan<byte> line)
    {
        var step = _authStep;
        _authStep = AuthStep.None;
        if (line.SequenceEqual("*"u8))
        {
            Error(AuthCancelled);
            return;
        }
        switch (step)
        {
            case AuthStep.PlainResponse:
                PlainCredentials(line);
                break;
            case AuthStep.LoginUser:
                if (Decode(line) is { } user)
                {
                    _loginUser = user;
                    _authStep = AuthStep.LoginPassword;
                    Write(AskPassword);
                }
                else
                {
                    Error(BadBase64);
                }
                break;
            case AuthStep.LoginPassword:
                if (Decode(line) is { } password)
                {
                    _credentials = (_loginUser ?? "", password, "LOGIN");
                    _pending = Pending.Authenticate;
                }
                else
                {
                    Error(BadBase64);
                }
                break;
        }
    }

    /// <summary>PLAIN (RFC 4616): authzid NUL authcid NUL password; we do not act for another identity.</summary>
    private void PlainCredentials(ReadOnlySpan<byte> base64)
    {
        var decoded = base64.SequenceEqual("="u8) ? "" : Decode(base64);
        if (decoded is null)
        {
            Error(BadBase64);
            return;
        }
        var parts = decoded.Split('\0');
        if (parts.Length != 3 || (parts[0].Length > 0 && parts[0] != parts[1]))
        {
            _credentials = ("", "", "PLAIN");
        }
        else
        {
            _credentials = (parts[1], parts[2], "PLAIN");
        }
        _pending = Pending.Authenticate;
    }

    private static string? Decode(ReadOnlySpan<byte> base64)
    {
        var bytes = new byte[base64.Length];
        if (Convert.TryFromBase64String(Encoding.ASCII.GetString(base64), bytes, out var n))
        {
            try
            {
                return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes, 0, n);
            }
            catch (DecoderFallbackException)
            {
                return null;
            }
        }
        return null;
    }

    /// <summary>Checks the credentials off the I/O path (the hash is slow on purpose) and answers.</summary>
    private async Task AuthenticateAsync()
    {
        var (user, password, mechanism) = _credentials;
        _credentials = default;
        var users = _ctx.Settings.Auth.Users;
        var ok = user.Length > 0 && await Task.Run(() => users.Verify(user, password)).ConfigureAwait(false);
        if (ok)
        {
            _authUser = user;
            _mayRelay = true;
            _ctx.Log.LogInformation("session {Session}: [{Client}] authenticated as {User} ({Mechanism})", Id, _clientAddress, user, mechanism);
            Write(AuthSucceeded);
            return;
        }
        // Never log the password; the user name helps the operator see what is being tried.
        _ctx.Log.LogWarning("session {Session}: AUTH {Mechanism} failed for user '{User}' from [{Client}]", Id, mechanism, user, _clientAddress);
        var blocked = _ctx.Limiter.RecordAuthFailure(_clientAddress);
        Error(AuthFailed);
        if (blocked && !_closing)
        {
            Write(TooManyAuthFailures);
            _closing = true;
        }
    }

    private void Mail(ReadOnlySpan<byte> argument)
    {
        if (_kind == ListenerKind.Submission && _authUser is null)
        {
            Error(AuthRequired); // RFC 6409 4.3 / RFC 4954 6
            return;
        }
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
            _ctx.Metrics.MessagesRejected.WithLabels("non-ascii-address").Inc();
            Error(Replies.NonAsciiAddress);
            return;
        }
        // RFC 1870 6: refuse at MAIL when the declared size is already too big.
        if (parameters.Size > _ctx.Settings.Limits.MaxMessageSize)
        {
            _ctx.Metrics.MessagesRejected.WithLabels("too-large").Inc();
            Error(Replies.MessageTooBig);
            return;
        }
        if (!_ctx.Limiter.TryCountMessage(_clientAddress, _exempt))
        {
            _ctx.Log.LogInformation("session {Session}: message rate limit reached for [{Client}]", Id, _clientAddress);
            _ctx.Metrics.MessagesRejected.WithLabels("rate-limit").Inc();
            Write(ClientLimiter.MessageRate);
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
            _ctx.Metrics.MessagesRejected.WithLabels("non-ascii-address").Inc();
            Error(Replies.NonAsciiAddress);
            return;
        }
        if (_recipients.Count >= _ctx.Settings.Limits.MaxRecipients)
        {
            // RFC 5321 4.5.3.1.10: 452, and the client sends the rest in another transaction.
            _ctx.Metrics.MessagesRejected.WithLabels("too-many-recipients").Inc();
            Write(Replies.TooManyRecipients);
            return;
        }
        var refusal = _ctx.CheckRecipient(path, _mayRelay, out var address, out _);
        if (refusal is not null)
        {
            _ctx.Metrics.MessagesRejected.WithLabels(RejectReason(refusal)).Inc();
            if (refusal == Replies.RelayDenied)
                _ctx.Log.LogInformation("session {Session}: relay denied for <{Recipient}> from [{Client}]", Id,
                    Encoding.UTF8.GetString(path.LocalPart) + "@" + Encoding.UTF8.GetString(path.Domain), _clientAddress);
            Error(refusal);
            return;
        }
        if (!_recipients.Contains(address)) _recipients.Add(address);
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
            _recipients.Count == 1 ? _recipients[0] : null, DateTimeOffset.Now,
            _tls is null ? null : "using " + _tls, _authUser);
        _incoming.WritePrefix(Encoding.UTF8.GetBytes(received));
        _data.Reset(_ctx.Settings.Limits.MaxMessageSize);
        _dataStarted = Stopwatch.GetTimestamp();
        _inData = true;
        Write(Replies.StartData);
    }

    /// <summary>The WITH protocol name (RFC 3848, RFC 6531 3.7.3): ESMTP, ESMTPS, ESMTPA, ESMTPSA, UTF8SMTP...</summary>
    private string Protocol()
    {
        if (!_esmtp) return "SMTP";
        var name = _smtpUtf8 ? "UTF8SMTP" : "ESMTP";
        if (_tls is not null) name += "S";
        if (_authUser is not null) name += "A";
        return name;
    }

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
            : _data.LongestLine > limits.MaxLineLength ? Replies.DataLineTooLong
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
            _ctx.Metrics.MessagesRejected.WithLabels(RejectReason(refusal)).Inc();
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
            _clientAddress.ToString(), _helo!, Protocol(), _authUser, messageFlags, incoming.Length);
        SpoolEntry entry;
        var commitStarted = Stopwatch.GetTimestamp();
        try
        {
            entry = await _ctx.Spool.CommitAsync(incoming, envelope).ConfigureAwait(false);
            _ctx.Metrics.SpoolCommit.Observe(Stopwatch.GetElapsedTime(commitStarted).TotalSeconds);
        }
        catch (Exception e)
        {
            _ctx.Log.LogError(e, "session {Session}: could not store message {QueueId}; answering 451", Id, envelope.Id);
            ResetTransaction();
            return Replies.SpoolFailure;
        }

        _ctx.QueueManager.Tell(new QueueProtocol.Enqueued(entry), ActorRefs.NoSender);
        _accepted++;
        _ctx.Metrics.MessagesAccepted.Inc();
        _ctx.Metrics.Activity.Accepted();
        Diagnostics.Log.Accepted(_ctx.Log, envelope.Id.Value, envelope.Sender, envelope.BodyLength, envelope.Recipients.Length, _helo,
            envelope.ClientAddress, Id, _authUser is null ? "" : " sasl_username=" + _authUser, _tls is null ? "" : " tls=" + _tls);
        ResetTransaction();
        return new SmtpReply(250, "2.0.0", "OK: queued as " + envelope.Id.Value);
    }

    // ------------------------------------------------------------------ helpers

    /// <summary>A short label for the rejection metrics.</summary>
    private static string RejectReason(SmtpReply reply) =>
        reply == Replies.RelayDenied ? "relay-denied"
        : reply == Replies.UserUnknown ? "user-unknown"
        : reply == Replies.MailboxNameNotAllowed ? "mailbox-name"
        : reply == Replies.MessageTooBig ? "too-large"
        : reply == Replies.HeaderTooBig ? "header-too-large"
        : reply == Replies.BareLineEndingInData ? "bare-line-ending"
        : reply == Replies.DataLineTooLong ? "line-too-long"
        : reply == Replies.MailLoop ? "mail-loop"
        : "other";

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
        if (++_errors >= _ctx.Settings.Limits.MaxErrors && !_closing)
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
