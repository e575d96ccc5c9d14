using System.Buffers;
using System.Collections.Immutable;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MimeKit;
using RelayMta.Engine.Hosting;
using RelayMta.Engine.Queue;
using RelayMta.Engine.Spool;
using RelayMta.Protocol.Smtp;

namespace RelayMta.Engine.Outbound;

/// <summary>The SMTP client: opens <see cref="SmtpOutboundSession"/>s over TCP.</summary>
public sealed class SmtpOutboundTransport(string ourHostname, OutboundSettings settings, Func<QueueId, BodyReader> openBody) : IOutboundTransport
{
    /// <inheritdoc />
    public async Task<IOutboundSession> OpenAsync(RemoteHost host, IPAddress address, int port, TlsLevel tls, Credentials? credentials, CancellationToken ct)
    {
        var session = new SmtpOutboundSession(host.Name, new IPEndPoint(address, port), ourHostname, settings.Timeouts, openBody, settings.TrustedCas);
        try
        {
            await session.OpenAsync(tls, credentials, ct).ConfigureAwait(false);
            return session;
        }
        catch
        {
            await session.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }
}

/// <summary>
/// One SMTP client session (RFC 5321): greeting, EHLO (HELO if refused), opportunistic STARTTLS
/// (RFC 3207), then transactions that use PIPELINING (RFC 2920) when offered, SIZE (RFC 1870),
/// BODY=8BITMIME (RFC 6152) and SMTPUTF8 (RFC 6531) when the message needs them. Content is
/// dot-stuffed on the way out with CRLF line ends only. Every wait has the RFC 5321 4.5.3.2
/// time-out from <c>outbound.timeouts</c>.
/// </summary>
internal sealed class SmtpOutboundSession : IOutboundSession
{
    private const int ChunkSize = 64 * 1024;
    private readonly IPEndPoint _endpoint;
    private readonly string _ourHostname;
    private readonly ClientTimeouts _timeouts;
    private readonly Func<QueueId, BodyReader> _openBody;
    private readonly X509Certificate2Collection? _trustedCas;
    private Socket? _socket;
    private Stream? _stream;
    private PipeReader? _reader;
    private PipeWriter? _writer;
    private EhloCapabilities _caps = EhloCapabilities.None;
    // One reusable time-out per direction: a new linked source and timer for every command was a
    // measurable share of the relay's allocations under load.
    private readonly Deadline _readDeadline = new();
    private readonly Deadline _writeDeadline = new();
    // True while the server is known to be between transactions: after the greeting and EHLO,
    // after a reply to the end of data (RFC 5321 4.1.1.4: that ends the transaction, whatever the
    // code), after a 250 to RSET. With _lastUsed it lets ResetAsync skip the RSET round trip.
    private bool _clean;
    private long _lastUsed;

    /// <summary>
    /// How long a clean session may sit unused before its next transaction is preceded by an RSET
    /// (as Postfix's smtp client does before reusing a cached connection, to see it still works).
    /// </summary>
    internal static readonly TimeSpan ReuseWithoutReset = TimeSpan.FromSeconds(1);

    public SmtpOutboundSession(string hostName, IPEndPoint endpoint, string ourHostname, ClientTimeouts timeouts, Func<QueueId, BodyReader> openBody,
        X509Certificate2Collection? trustedCas)
    {
        RemoteHostName = hostName;
        _endpoint = endpoint;
        _ourHostname = ourHostname;
        _timeouts = timeouts;
        _openBody = openBody;
        _trustedCas = trustedCas;
        RemoteMta = $"{hostName}[{endpoint.Address}]:{endpoint.Port}";
    }

    public string RemoteMta { get; }

    public string RemoteHostName { get; }

    public string? Tls { get; private set; }

    public bool Usable { get; private set; } = true;

    internal EhloCapabilities Capabilities => _caps;

    public async Task OpenAsync(TlsLevel tls, Credentials? credentials, CancellationToken ct)
    {
        try
        {
            // Inside the try: on a host without IPv6 even creating the socket fails.
            _socket = new Socket(_endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            using var connect = Timeout(_timeouts.Connect, ct);
            await _socket.ConnectAsync(_endpoint, connect.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            throw new OutboundConnectException("4.4.1", $"connect to {RemoteMta} failed: {Describe(e)}", inner: e);
        }
        Attach(new NetworkStream(_socket, ownsSocket: true));

        try
        {
            var greeting = await ReadReplyAsync(_timeouts.Greeting, ct).ConfigureAwait(false);
            if (greeting.Code != 220)
                throw new OutboundConnectException(greeting.IsPermanent ? "5.0.0" : "4.0.0",
                    $"host {RemoteMta} refused to talk to us: {greeting}") { Refused = greeting.IsPermanent };
            await HelloAsync(ct).ConfigureAwait(false);

            if (tls != TlsLevel.None)
            {
                var required = tls is TlsLevel.Encrypt or TlsLevel.Verify;
                if (!_caps.StartTls)
                {
                    if (required) throw new OutboundConnectException("4.7.4", $"TLS is required for {RemoteMta} but it does not offer STARTTLS");
                }
                else
                {
                    var reply = await CommandAsync("STARTTLS", _timeouts.Command, ct).ConfigureAwait(false);
                    if (reply.Code == 220)
                    {
                        await StartTlsAsync(tls, ct).ConfigureAwait(false);
                        await HelloAsync(ct).ConfigureAwait(false); // RFC 3207 4.2: forget what was learnt before TLS
                    }
                    else if (required)
                    {
                        throw new OutboundConnectException("4.7.4", $"TLS is required for {RemoteMta} but STARTTLS was refused: {reply}");
                    }
                }
            }
            if (credentials is not null) await AuthenticateAsync(credentials, ct).ConfigureAwait(false);
            MarkClean();
        }
        catch (Exception e) when (e is IOException or TimeoutException or InvalidDataException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            throw new OutboundConnectException("4.4.2", $"conversation with {RemoteMta} failed: {Describe(e)}", inner: e);
        }
    }

    private async Task HelloAsync(CancellationToken ct)
    {
        var ehlo = await CommandAsync("EHLO " + _ourHostname, _timeouts.Command, ct).ConfigureAwait(false);
        if (ehlo.Code == 250)
        {
            _caps = EhloCapabilities.Parse(ehlo);
            return;
        }
        if (ehlo.Code == 421) throw new OutboundConnectException("4.0.0", $"host {RemoteMta} said {ehlo} to EHLO");
        // RFC 5321 3.2: a server that does not know EHLO gets HELO.
        var helo = await CommandAsync("HELO " + _ourHostname, _timeouts.Command, ct).ConfigureAwait(false);
        if (helo.Code != 250)
            throw new OutboundConnectException(helo.IsPermanent ? "5.0.0" : "4.0.0", $"host {RemoteMta} refused HELO: {helo}") { Refused = helo.IsPermanent };
        _caps = EhloCapabilities.None;
    }

    /// <summary>
    /// AUTH to a smarthost (RFC 4954): PLAIN when offered, else LOGIN; never in plain text. A
    /// refusal defers the mail (the operator has to fix the credentials; nothing is lost meanwhile).
    /// </summary>
    private async Task AuthenticateAsync(Credentials credentials, CancellationToken ct)
    {
        if (Tls is null) throw new OutboundConnectException("4.7.0", $"not sending credentials to {RemoteMta} without TLS");
        SmtpResponse reply;
        if (_caps.AuthMechanisms.Contains("PLAIN"))
        {
            var token = Convert.ToBase64String(Encoding.UTF8.GetBytes("\0" + credentials.User + "\0" + credentials.Password));
            reply = await CommandAsync("AUTH PLAIN " + token, _timeouts.Command, ct).ConfigureAwait(false);
        }
        else if (_caps.AuthMechanisms.Contains("LOGIN"))
        {
            reply = await CommandAsync("AUTH LOGIN", _timeouts.Command, ct).ConfigureAwait(false);
            if (reply.Code == 334) reply = await CommandAsync(Convert.ToBase64String(Encoding.UTF8.GetBytes(credentials.User)), _timeouts.Command, ct).ConfigureAwait(false);
            if (reply.Code == 334) reply = await CommandAsync(Convert.ToBase64String(Encoding.UTF8.GetBytes(credentials.Password)), _timeouts.Command, ct).ConfigureAwait(false);
        }
        else
        {
            throw new OutboundConnectException("4.7.0", $"{RemoteMta} offers no AUTH mechanism we speak (PLAIN, LOGIN)");
        }
        if (reply.Code != 235) throw new OutboundConnectException("4.7.0", $"authentication to {RemoteMta} as {credentials.User} failed: {reply}");
    }

    private async Task StartTlsAsync(TlsLevel level, CancellationToken ct)
    {
        // Whatever the old reader buffered after the 220 is not trusted (RFC 3207 4.2).
        await _reader!.CompleteAsync().ConfigureAwait(false);
        await _writer!.CompleteAsync().ConfigureAwait(false);
        var ssl = new SslStream(_stream!, leaveInnerStreamOpen: false);
        var trusted = false;
        string? problem = null;
        try
        {
            using var handshake = Timeout(_timeouts.Command, ct);
            await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = RemoteHostName,
                EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
                {
                    trusted = IsTrusted(certificate, errors, out problem);
                    // may/encrypt: any certificate (RFC 7435 opportunistic security); verify: chain and name.
                    return trusted || level != TlsLevel.Verify;
                },
            }, handshake.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is AuthenticationException or IOException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            Usable = false;
            if (level == TlsLevel.Verify && problem is not null)
                throw new OutboundConnectException("4.7.5", $"certificate of {RemoteMta} not verified: {problem}", inner: e);
            throw new OutboundConnectException("4.7.5", $"TLS handshake with {RemoteMta} failed: {Describe(e)}", tlsFailed: level == TlsLevel.May, inner: e);
        }
        Tls = $"{Protocol(ssl.SslProtocol)} {ssl.NegotiatedCipherSuite} ({(trusted ? "verified" : "not verified")})";
        Attach(ssl);
    }

    /// <summary>Chain to a trusted root (the system's, or outbound.tls-ca-file) and the name of the host we asked for.</summary>
    private bool IsTrusted(X509Certificate? certificate, SslPolicyErrors errors, out string? problem)
    {
        problem = null;
        if (certificate is null)
        {
            problem = "no certificate";
            return false;
        }
        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
        {
            problem = $"the certificate does not name {RemoteHostName}";
            return false;
        }
        if (errors == SslPolicyErrors.None) return true;
        if (_trustedCas is null)
        {
            problem = "the certificate chain is not trusted";
            return false;
        }
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(_trustedCas);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var leaf = new X509Certificate2(certificate);
        if (chain.Build(leaf)) return true;
        problem = "the certificate chain is not trusted: " + string.Join(", ", chain.ChainStatus.Select(s => s.Status));
        return false;
    }

    public async Task<TransactionResult> SendAsync(DeliveryJob job, CancellationToken ct)
    {
        var envelope = job.Envelope;
        var recipients = job.Recipients;
        var flags = envelope.Flags;
        var needsUtf8 = flags.HasFlag(MessageFlags.NeedsSmtpUtf8);
        var eightBit = flags.HasFlag(MessageFlags.EightBitContent);

        // RFC 6531 3.4: a message that needs SMTPUTF8 cannot go to a server without it.
        if (needsUtf8 && !_caps.SmtpUtf8)
            return All(recipients, Perm("5.6.7", $"host {RemoteMta} does not support SMTPUTF8, which this message needs"));

        // RFC 6152 3: 8-bit content to a server without 8BITMIME is converted to 7-bit MIME
        // (quoted-printable/base64, as Postfix does) or, if that cannot be done, bounced.
        byte[]? converted = null;
        if (eightBit && !_caps.EightBitMime)
        {
            converted = DowngradeTo7Bit(envelope.Id);
            if (converted is null)
                return All(recipients, Perm("5.6.3", $"host {RemoteMta} does not support 8BITMIME and the message cannot be converted to 7-bit"));
        }
        var size = converted?.LongLength ?? envelope.BodyLength;
        if (_caps.MaxSize is { } max && size > max)
            return All(recipients, Perm("5.3.4", $"message of {size} bytes is larger than {RemoteMta} accepts ({max})"));

        var mail = new StringBuilder("MAIL FROM:<").Append(envelope.Sender).Append('>');
        if (_caps.Size) mail.Append(" SIZE=").Append(size);
        if (eightBit && converted is null && _caps.EightBitMime) mail.Append(" BODY=8BITMIME");
        if ((needsUtf8 || flags.HasFlag(MessageFlags.SmtpUtf8)) && _caps.SmtpUtf8) mail.Append(" SMTPUTF8");

        var rcptReplies = new SmtpResponse?[recipients.Length];
        var stage = "MAIL FROM";
        _clean = false;
        try
        {
            SmtpResponse mailReply;
            SmtpResponse? dataReply = null;
            if (_caps.Pipelining)
            {
                // RFC 2920: MAIL, every RCPT and DATA in one write; replies come back in order.
                Write(mail.ToString());
                foreach (var i in recipients) Write($"RCPT TO:<{envelope.Recipients[i]}>");
                Write("DATA");
                await FlushAsync(_timeouts.Command, ct).ConfigureAwait(false);
                mailReply = await ReadReplyAsync(_timeouts.Mail, ct).ConfigureAwait(false);
                stage = "RCPT TO";
                for (var k = 0; k < recipients.Length; k++) rcptReplies[k] = await ReadReplyAsync(_timeouts.Rcpt, ct).ConfigureAwait(false);
                stage = "DATA";
                dataReply = await ReadReplyAsync(_timeouts.DataInit, ct).ConfigureAwait(false);
            }
            else
            {
                mailReply = await CommandAsync(mail.ToString(), _timeouts.Mail, ct).ConfigureAwait(false);
                if (mailReply.Code == 250)
                {
                    stage = "RCPT TO";
                    for (var k = 0; k < recipients.Length; k++)
                    {
                        rcptReplies[k] = await CommandAsync($"RCPT TO:<{envelope.Recipients[recipients[k]]}>", _timeouts.Rcpt, ct).ConfigureAwait(false);
                        if (rcptReplies[k]!.Code == 421) break;
                    }
                    if (Usable && rcptReplies.Any(r => r is { Code: 250 or 251 }))
                    {
                        stage = "DATA";
                        dataReply = await CommandAsync("DATA", _timeouts.DataInit, ct).ConfigureAwait(false);
                    }
                }
            }

            if (mailReply.Code == 421 || rcptReplies.Any(r => r?.Code == 421) || dataReply?.Code == 421) Usable = false;
            if (mailReply.Code != 250)
            {
                if (dataReply?.Code == 354) await AbortDataAsync(ct).ConfigureAwait(false);
                return All(recipients, FromReply(mailReply, "MAIL FROM"));
            }

            var results = ImmutableArray.CreateBuilder<RecipientResult>(recipients.Length);
            var acceptedCount = 0;
            for (var k = 0; k < recipients.Length; k++)
            {
                if (rcptReplies[k] is { Code: 250 or 251 })
                {
                    acceptedCount++;
                    continue;
                }
                var reply = rcptReplies[k];
                results.Add(new RecipientResult(recipients[k], reply is null
                    ? Temp("4.0.0", $"host {RemoteMta} closed the transaction before this recipient")
                    : FromReply(reply, "RCPT TO")));
            }
            if (acceptedCount == 0)
            {
                // RFC 2920 3.1: a 354 with no valid recipient gets an empty message, which the server refuses.
                if (dataReply?.Code == 354) await AbortDataAsync(ct).ConfigureAwait(false);
                return new TransactionResult(results.ToImmutable());
            }
            if (dataReply is null || dataReply.Code != 354)
            {
                var failure = dataReply is null ? Temp("4.0.0", $"host {RemoteMta} gave no reply to DATA") : FromReply(dataReply, "DATA");
                AddAccepted(results, recipients, rcptReplies, failure);
                return new TransactionResult(results.ToImmutable());
            }

            stage = "message content";
            await SendContentAsync(envelope.Id, converted, ct).ConfigureAwait(false);
            stage = "end of data";
            var final = await ReadReplyAsync(_timeouts.DataDone, ct).ConfigureAwait(false);
            MarkClean();
            if (final.Code == 421) Usable = false;
            var outcome = final.Code == 250
                ? new DeliveryOutcome.Delivered(final.StatusOrDefault, $"{final}", RemoteHostName)
                : FromReply(final, "end of data");
            AddAccepted(results, recipients, rcptReplies, outcome);
            return new TransactionResult(results.ToImmutable());
        }
        catch (Exception e) when (e is IOException or TimeoutException or InvalidDataException or SocketException or ObjectDisposedException
                                     || e is OperationCanceledException && !ct.IsCancellationRequested)
        {
            Usable = false;
            // Lost before the reply to MAIL: nothing was handed over, the caller may try again on a
            // new connection. (Not after a time-out: a slow server would make the wait twice as long.)
            return All(recipients, Temp("4.4.2", $"lost connection with {RemoteMta} during {stage}: {Describe(e)}")) with
            {
                LostBeforeMailReply = stage == "MAIL FROM" && e is not TimeoutException and not OperationCanceledException,
            };
        }
    }

    private static void AddAccepted(ImmutableArray<RecipientResult>.Builder results, ImmutableArray<int> recipients, SmtpResponse?[] rcptReplies,
        DeliveryOutcome outcome)
    {
        for (var k = 0; k < recipients.Length; k++)
            if (rcptReplies[k] is { Code: 250 or 251 }) results.Add(new RecipientResult(recipients[k], outcome));
    }

    public async Task<bool> ResetAsync(CancellationToken ct)
    {
        if (!Usable) return false;
        // A session that just finished a transaction needs no RSET (one round trip per message
        // less); one left mid-transaction, or idle for a while, gets it.
        if (_clean && Environment.TickCount64 - _lastUsed < (long)ReuseWithoutReset.TotalMilliseconds) return true;
        try
        {
            var reply = await CommandAsync("RSET", _timeouts.Command, ct).ConfigureAwait(false);
            if (reply.Code == 250)
            {
                MarkClean();
                return true;
            }
        }
        catch (Exception e) when (e is IOException or TimeoutException or InvalidDataException or SocketException or OperationCanceledException)
        {
        }
        Usable = false;
        return false;
    }

    private void MarkClean()
    {
        _clean = true;
        _lastUsed = Environment.TickCount64;
    }

    public async Task QuitAsync(CancellationToken ct)
    {
        if (!Usable || _writer is null) return;
        try
        {
            await CommandAsync("QUIT", TimeSpan.FromSeconds(Math.Min(10, _timeouts.Command.TotalSeconds)), ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or TimeoutException or InvalidDataException or SocketException or OperationCanceledException)
        {
            // the server may close first; nothing is lost
        }
        Usable = false;
    }

    public async ValueTask DisposeAsync()
    {
        Usable = false;
        if (_reader is not null) await _reader.CompleteAsync().ConfigureAwait(false);
        if (_writer is not null) await _writer.CompleteAsync().ConfigureAwait(false);
        if (_stream is not null) await _stream.DisposeAsync().ConfigureAwait(false);
        _socket?.Dispose();
        _readDeadline.Dispose();
        _writeDeadline.Dispose();
    }

    // ------------------------------------------------------------------ content

    private async Task SendContentAsync(QueueId id, byte[]? converted, CancellationToken ct)
    {
        var stuffer = new DotStuffer();
        if (converted is not null)
        {
            for (var offset = 0; offset < converted.Length; offset += ChunkSize)
            {
                stuffer.Write(converted.AsSpan(offset, Math.Min(ChunkSize, converted.Length - offset)), _writer!);
                await FlushIfFullAsync(ct).ConfigureAwait(false);
            }
        }
        else
        {
            using var body = _openBody(id);
            var buffer = ArrayPool<byte>.Shared.Rent(ChunkSize);
            try
            {
                for (long position = 0; position < body.Length;)
                {
                    // A body of one chunk was just written and is in the page cache: read it in place
                    // rather than through a thread-pool hop (what RandomAccess.ReadAsync does here).
                    var n = body.Length <= ChunkSize
                        ? body.Read(buffer.AsSpan(0, ChunkSize), position)
                        : await body.ReadAsync(buffer.AsMemory(0, ChunkSize), position, ct).ConfigureAwait(false);
                    if (n <= 0) throw new IOException("the stored body ended early");
                    position += n;
                    stuffer.Write(buffer.AsSpan(0, n), _writer!);
                    await FlushIfFullAsync(ct).ConfigureAwait(false);
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
        // The end of the content and the final dot go in one write: one send for a small message.
        stuffer.Complete(_writer!);
        await FlushAsync(_timeouts.DataBlock, ct).ConfigureAwait(false);
    }

    private ValueTask FlushIfFullAsync(CancellationToken ct) =>
        _writer!.UnflushedBytes >= ChunkSize ? new ValueTask(FlushAsync(_timeouts.DataBlock, ct)) : ValueTask.CompletedTask;

    private async Task AbortDataAsync(CancellationToken ct)
    {
        Write(".");
        await FlushAsync(_timeouts.DataBlock, ct).ConfigureAwait(false);
        await ReadReplyAsync(_timeouts.DataDone, ct).ConfigureAwait(false);
    }

    private byte[]? DowngradeTo7Bit(QueueId id)
    {
        try
        {
            using var body = _openBody(id);
            using var stream = body.AsStream();
            var message = MimeMessage.Load(stream);
            message.Prepare(EncodingConstraint.SevenBit, 998);
            using var output = new MemoryStream();
            message.WriteTo(new FormatOptions { NewLineFormat = NewLineFormat.Dos }, output);
            var bytes = output.ToArray();
            return bytes.AsSpan().IndexOfAnyInRange((byte)0x80, (byte)0xff) >= 0 ? null : bytes;
        }
        catch (FormatException)
        {
            return null;
        }
    }

    // ------------------------------------------------------------------ wire

    private void Attach(Stream stream)
    {
        _stream = stream;
        _reader = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 4096, leaveOpen: true));
        _writer = PipeWriter.Create(stream, new StreamPipeWriterOptions(minimumBufferSize: ChunkSize, leaveOpen: true));
    }

    private void Write(string command)
    {
        var n = Encoding.UTF8.GetByteCount(command);
        var span = _writer!.GetSpan(n + 2);
        Encoding.UTF8.GetBytes(command, span);
        span[n] = (byte)'\r';
        span[n + 1] = (byte)'\n';
        _writer.Advance(n + 2);
    }

    private async Task<SmtpResponse> CommandAsync(string command, TimeSpan timeout, CancellationToken ct)
    {
        Write(command);
        await FlushAsync(timeout, ct).ConfigureAwait(false);
        return await ReadReplyAsync(timeout, ct).ConfigureAwait(false);
    }

    private async Task FlushAsync(TimeSpan timeout, CancellationToken ct)
    {
        var token = _writeDeadline.Start(timeout, ct);
        try
        {
            var result = await _writer!.FlushAsync(token).ConfigureAwait(false);
            if (result.IsCompleted) throw new IOException("the connection was closed");
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TimeoutException($"no progress writing to {RemoteMta} for {timeout}");
        }
        finally
        {
            _writeDeadline.Stop();
        }
    }

    private async Task<SmtpResponse> ReadReplyAsync(TimeSpan timeout, CancellationToken ct)
    {
        var token = _readDeadline.Start(timeout, ct);
        try
        {
            while (true)
            {
                var read = await _reader!.ReadAsync(token).ConfigureAwait(false);
                var buffer = read.Buffer;
                var status = ReplyReader.TryRead(ref buffer, out var reply);
                if (status == ReplyStatus.Complete)
                {
                    _reader.AdvanceTo(buffer.Start);
                    return reply!;
                }
                _reader.AdvanceTo(buffer.Start, buffer.End);
                if (status == ReplyStatus.Invalid) throw new InvalidDataException($"{RemoteMta} sent something that is not an SMTP reply");
                if (read.IsCompleted) throw new IOException($"{RemoteMta} closed the connection");
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TimeoutException($"no reply from {RemoteMta} within {timeout}");
        }
        finally
        {
            _readDeadline.Stop();
        }
    }

    private static CancellationTokenSource Timeout(TimeSpan timeout, CancellationToken ct)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        return cts;
    }

    /// <summary>
    /// A time-out that is started and stopped around each operation of one direction and reused:
    /// its source is reset rather than replaced while it has not fired, and it stays linked to the
    /// caller's token until the caller passes another.
    /// </summary>
    private sealed class Deadline : IDisposable
    {
        private CancellationTokenSource _cts = new();
        private CancellationToken _linkedTo;
        private CancellationTokenRegistration _link;

        public CancellationToken Start(TimeSpan timeout, CancellationToken ct)
        {
            if (!_cts.TryReset())
            {
                _link.Dispose();
                _cts.Dispose();
                _cts = new CancellationTokenSource();
                _linkedTo = default;
            }
            if (!_linkedTo.Equals(ct))
            {
                _link.Dispose();
                _link = ct.UnsafeRegister(static state => ((CancellationTokenSource)state!).Cancel(), _cts);
                _linkedTo = ct;
            }
            _cts.CancelAfter(timeout);
            return _cts.Token;
        }

        public void Stop() => _cts.CancelAfter(System.Threading.Timeout.InfiniteTimeSpan);

        public void Dispose()
        {
            _link.Dispose();
            _cts.Dispose();
        }
    }

    // ------------------------------------------------------------------ outcomes

    private DeliveryOutcome FromReply(SmtpResponse reply, string stage)
    {
        var diagnostic = $"{reply} (in reply to {stage})";
        return reply.IsPermanent
            ? new DeliveryOutcome.PermFailure(reply.StatusOrDefault, diagnostic, RemoteHostName)
            : new DeliveryOutcome.TempFailure(reply.IsTransient ? reply.StatusOrDefault : "4.0.0", diagnostic, RemoteHostName);
    }

    private DeliveryOutcome Temp(string status, string diagnostic) => new DeliveryOutcome.TempFailure(status, diagnostic, RemoteHostName);

    private DeliveryOutcome Perm(string status, string diagnostic) => new DeliveryOutcome.PermFailure(status, diagnostic, RemoteHostName);

    private static TransactionResult All(ImmutableArray<int> recipients, DeliveryOutcome outcome) =>
        new(recipients.Select(i => new RecipientResult(i, outcome)).ToImmutableArray());

    private static string Protocol(SslProtocols p) => p switch
    {
        SslProtocols.Tls13 => "TLSv1.3",
        SslProtocols.Tls12 => "TLSv1.2",
        _ => p.ToString(),
    };

    private static string Describe(Exception e) => e switch
    {
        SocketException s => s.SocketErrorCode.ToString(),
        OperationCanceledException => "timed out",
        _ => e.Message,
    };
}
