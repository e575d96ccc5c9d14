using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace RelayMta.IntegrationTests.Infrastructure;

/// <summary>Where a <see cref="FakeSmtpServer"/> stops answering (see <see cref="FakeSmtpBehavior.StallBeforeReply"/>).</summary>
public enum StallAt
{
    None,

    /// <summary>Before the 220 greeting.</summary>
    Banner,

    /// <summary>Before the reply to EHLO or HELO.</summary>
    Ehlo,

    /// <summary>Before the reply to MAIL FROM.</summary>
    Mail,

    /// <summary>Before the reply to (every) RCPT TO.</summary>
    Rcpt,

    /// <summary>Before the 354 to DATA.</summary>
    Data,

    /// <summary>After the whole message (through CRLF.CRLF), before the final reply.</summary>
    DataEnd,

    /// <summary>Before the 221 to QUIT.</summary>
    Quit,
}

/// <summary>
/// How a <see cref="FakeSmtpServer"/> answers. The defaults accept everything. Properties are read each
/// time they are needed, so a test may change them while the server runs (e.g. stop failing). Replies are
/// full strings like <c>"550 5.1.1 no such user"</c>; lines separated by '\n' make a multi-line reply.
/// A 421 reply (anywhere) is followed by closing the connection, as RFC 5321 says.
/// </summary>
public sealed class FakeSmtpBehavior
{
    public static IReadOnlyList<string> DefaultExtensions { get; } = ["PIPELINING", "SIZE 52428800", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES"];

    /// <summary>Name used in the EHLO/HELO and QUIT replies.</summary>
    public string Hostname { get; set; } = "fake.test";

    /// <summary>The greeting. A 421 greeting closes the connection; any other non-2xx (554) answers 503 to all but QUIT.</summary>
    public string Banner { get; set; } = "220 fake.test ESMTP";

    /// <summary>EHLO keywords, one per line, e.g. "SIZE 1000". MAIL/RCPT parameters are only accepted for advertised extensions.</summary>
    public IReadOnlyList<string> Extensions { get; set; } = DefaultExtensions;

    /// <summary>Answer EHLO with 502, so the client must fall back to HELO (and then send no ESMTP parameters).</summary>
    public bool EhloRefused { get; set; }

    /// <summary>Reply to a syntactically valid MAIL FROM, given the reverse-path ("" for &lt;&gt;); null = "250 2.1.0 ok".</summary>
    public Func<string, string?>? OnMail { get; set; }

    /// <summary>Reply to a syntactically valid RCPT TO, given the address; null = "250 2.1.5 ok".</summary>
    public Func<string, string?>? OnRcpt { get; set; }

    /// <summary>Reply at the end of DATA, given the message as received; null = "250 2.0.0 ok queued as ...". Only 2xx messages are kept.</summary>
    public Func<ReceivedMessage, string?>? OnDataEnd { get; set; }

    /// <summary>After the 354, read some of the content and close the socket without replying.</summary>
    public bool DropConnectionDuringData { get; set; }

    /// <summary>
    /// Asked after the reply at the end of DATA (whatever it was), given the message: true = close the connection right
    /// after that reply, without a 421 (the reply is sent, then FIN), as a server that ends sessions after one transaction,
    /// or that times out idle clients, does. Null = keep the session.
    /// </summary>
    public Func<ReceivedMessage, bool>? CloseAfterDataEnd { get; set; }

    /// <summary>Stage at which <see cref="StallBeforeReply"/> applies (on every connection while set).</summary>
    public StallAt StallAt { get; set; }

    /// <summary>How long to wait before the reply at <see cref="StallAt"/>; null = never answer (the client's timeout must fire).
    /// Replies already due are sent before stalling.</summary>
    public TimeSpan? StallBeforeReply { get; set; }

    /// <summary>Answer the first N DATA ends (server-wide) with "451 4.3.0 try later", then behave normally.</summary>
    public int? FailFirstNTransactions { get; set; }

    /// <summary>
    /// Server certificate (with private key, e.g. from <see cref="TestCa.Issue"/>). When set, EHLO advertises STARTTLS
    /// (until TLS is active) and STARTTLS works as in RFC 3207: "220 2.0.0 Ready to start TLS", the handshake, then a
    /// fresh session that needs a new EHLO. Without it STARTTLS is an unknown command (500).
    /// </summary>
    public X509Certificate2? TlsCertificate { get; set; }

    /// <summary>Handshake as soon as the connection is accepted, before the banner (port 465 style, RFC 8314); needs <see cref="TlsCertificate"/>.</summary>
    public bool ImplicitTls { get; set; }

    /// <summary>Protocol versions the server accepts.</summary>
    public SslProtocols TlsProtocols { get; set; } = SslProtocols.Tls12 | SslProtocols.Tls13;

    /// <summary>Reply to a valid STARTTLS instead of starting TLS, e.g. "454 4.7.0 TLS not available due to temporary reason";
    /// null = "220 2.0.0 Ready to start TLS" and the handshake.</summary>
    public string? StartTlsReply { get; set; }
}

/// <summary>A message a <see cref="FakeSmtpServer"/> received (and, in <see cref="FakeSmtpServer.Messages"/>, accepted).</summary>
public sealed class ReceivedMessage
{
    public required int ConnectionId { get; init; }

    /// <summary>The reverse-path without angle brackets; "" for the null sender.</summary>
    public required string Sender { get; init; }

    /// <summary>Recipients the server accepted, in order.</summary>
    public required IReadOnlyList<string> Recipients { get; init; }

    /// <summary>Everything after the reverse-path on the MAIL line, e.g. "SIZE=123 BODY=8BITMIME" ("" if none).</summary>
    public required string MailParameters { get; init; }

    /// <summary>The content exactly as it would be stored: dot-unstuffed, up to (not including) the final ".\r\n".</summary>
    public required byte[] Data { get; init; }

    /// <summary>The TLS the message came over, as "Tls13 TLS_AES_256_GCM_SHA384" (protocol and cipher suite); null if plain text.</summary>
    public string? Tls { get; init; }

    /// <summary>The server name the client asked for in the TLS handshake (SNI); null if none or plain text.</summary>
    public string? TlsServerName { get; init; }

    /// <summary><see cref="Data"/> as UTF-8.</summary>
    public string Text => Encoding.UTF8.GetString(Data);

    /// <summary>Value of a MAIL parameter (keyword case-insensitive): "" for a keyword without value, null if absent.</summary>
    public string? Parameter(string keyword)
    {
        foreach (var p in MailParameters.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = p.IndexOf('=');
            var key = eq < 0 ? p : p[..eq];
            if (key.Equals(keyword, StringComparison.OrdinalIgnoreCase)) return eq < 0 ? "" : p[(eq + 1)..];
        }
        return null;
    }

    public override string ToString() =>
        $"#{ConnectionId} <{Sender}> -> {string.Join(", ", Recipients.Select(r => $"<{r}>"))} ({Data.Length} bytes{(Tls is null ? "" : ", " + Tls)})";
}

/// <summary>
/// A scripted, protocol-correct SMTP server (RFC 5321) for the relay's outbound side: pipelining (replies
/// in order, flushed when no complete command is buffered), EHLO/HELO, MAIL/RCPT with parameter checks
/// against what was advertised, DATA with dot-unstuffing ending at CRLF.CRLF only, RSET, NOOP, VRFY,
/// QUIT, and STARTTLS or implicit TLS when given a certificate (RFC 3207, RFC 8314; TLS 1.2 and 1.3 only).
/// Hooks in <see cref="FakeSmtpBehavior"/>. Everything received is recorded; all members are
/// thread-safe. Fake MX hosts listen on the same port at different loopback addresses
/// (<see cref="LoopbackPorts.FindPortFreeOn"/>).
/// </summary>
public sealed class FakeSmtpServer : IAsyncDisposable
{
    private const int MaxCommandLine = 64 * 1024;
    private const int MaxDataLine = 8 * 1024 * 1024;

    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly object _gate = new();
    private readonly List<ReceivedMessage> _messages = [];
    private readonly List<(int ConnectionId, string Line)> _commands = [];
    private readonly List<Exception> _errors = [];
    private readonly Dictionary<int, Task> _sessions = [];
    private readonly Dictionary<int, string> _tlsByConnection = [];
    private readonly List<string> _tlsFailureReasons = [];
    private (X509Certificate2 Certificate, SslStreamCertificateContext Context)? _certificateContext;
    private readonly Task _acceptLoop;
    private int _connections;
    private int _current;
    private int _maxConcurrent;
    private int _transactions;
    private int _dataEnds;
    private int _tlsHandshakes;
    private int _tlsFailures;
    private int _disposed;

    private FakeSmtpServer(TcpListener listener, FakeSmtpBehavior behavior)
    {
        _listener = listener;
        Behavior = behavior;
        Endpoint = (IPEndPoint)listener.LocalEndpoint;
        _acceptLoop = Task.Run(AcceptLoopAsync);
    }

    /// <summary>Listens on <paramref name="address"/>:<paramref name="port"/> (0 = any free port).</summary>
    /// <exception cref="SocketException">The port is taken (pick another and retry).</exception>
    public static FakeSmtpServer Start(IPAddress address, int port, FakeSmtpBehavior? behavior = null)
    {
        var listener = new TcpListener(address, port);
        try
        {
            listener.Start(backlog: 128);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
        return new FakeSmtpServer(listener, behavior ?? new FakeSmtpBehavior());
    }

    public IPEndPoint Endpoint { get; }

    /// <summary>The live behaviour; changes take effect at the next decision.</summary>
    public FakeSmtpBehavior Behavior { get; }

    /// <summary>Messages accepted with a 2xx at the end of DATA, in order of acceptance.</summary>
    public IReadOnlyList<ReceivedMessage> Messages
    {
        get
        {
            lock (_gate) return _messages.ToArray();
        }
    }

    /// <summary>Every command line received, in order, as "#connectionId LINE" (e.g. "#2 RCPT TO:&lt;b@x.test&gt;").</summary>
    public IReadOnlyList<string> Commands
    {
        get
        {
            lock (_gate) return _commands.Select(c => $"#{c.ConnectionId} {c.Line}").ToArray();
        }
    }

    /// <summary>The command lines received on one connection (ids start at 1), without the prefix.</summary>
    public IReadOnlyList<string> CommandsOn(int connectionId)
    {
        lock (_gate) return _commands.Where(c => c.ConnectionId == connectionId).Select(c => c.Line).ToArray();
    }

    /// <summary>Connections accepted so far.</summary>
    public int Connections => Volatile.Read(ref _connections);

    /// <summary>Connections open right now.</summary>
    public int CurrentConnections => Volatile.Read(ref _current);

    /// <summary>The most connections open at once.</summary>
    public int MaxConcurrentConnections => Volatile.Read(ref _maxConcurrent);

    /// <summary>MAIL commands received (accepted or not).</summary>
    public int Transactions => Volatile.Read(ref _transactions);

    /// <summary>TLS sessions established (STARTTLS or implicit): the handshake completed and the client then sent data over TLS.</summary>
    public int TlsHandshakes => Volatile.Read(ref _tlsHandshakes);

    /// <summary>
    /// TLS handshakes that failed (no common protocol version or cipher, not TLS at all, ...), or that completed but the
    /// client hung up before sending anything over TLS. The latter is what a .NET (SslStream) client refusing the
    /// certificate looks like from here: on Linux it checks the certificate only after the handshake is done and then
    /// closes without an alert. Such connections are just closed.
    /// </summary>
    public int TlsFailures => Volatile.Read(ref _tlsFailures);

    /// <summary>Why each failed handshake failed (exception messages), in order.</summary>
    public IReadOnlyList<string> TlsFailureReasons
    {
        get
        {
            lock (_gate) return _tlsFailureReasons.ToArray();
        }
    }

    /// <summary>The TLS established on a connection (ids start at 1; counted in <see cref="TlsHandshakes"/>), as in
    /// <see cref="ReceivedMessage.Tls"/>; null if none (yet).</summary>
    public string? TlsOn(int connectionId)
    {
        lock (_gate) return _tlsByConnection.GetValueOrDefault(connectionId);
    }

    /// <summary>Failures inside the fake itself (a hook threw, a reply string was malformed); should stay empty.</summary>
    public IReadOnlyList<Exception> Errors
    {
        get
        {
            lock (_gate) return _errors.ToArray();
        }
    }

    /// <summary>Waits until at least <paramref name="count"/> messages were accepted and returns them all.</summary>
    public async Task<IReadOnlyList<ReceivedMessage>> WaitForMessagesAsync(int count = 1, TimeSpan? timeout = null)
    {
        IReadOnlyList<ReceivedMessage> messages = [];
        await Eventually.TrueAsync(() => (messages = Messages).Count >= count, timeout ?? TimeSpan.FromSeconds(20),
            () => $"{Endpoint} accepted {messages.Count} messages, expected {count}; commands: {string.Join(" | ", Commands)}");
        return messages;
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _stop.CancelAsync();
        _listener.Stop();
        Task[] sessions;
        lock (_gate) sessions = [.. _sessions.Values];
        await Task.WhenAll(sessions.Append(_acceptLoop)).WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        _listener.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException or InvalidOperationException)
            {
                if (_stop.IsCancellationRequested) return;
                RecordError(e);
                continue;
            }

            int id;
            lock (_gate)
            {
                id = ++_connections;
                var current = ++_current;
                if (current > _maxConcurrent) _maxConcurrent = current;
                var session = new Session(this, socket, id);
                _sessions[id] = Task.Run(session.RunAsync);
            }
        }
    }

    private void RecordError(Exception e)
    {
        lock (_gate) _errors.Add(e);
    }

    private void RecordCommand(int connectionId, string line)
    {
        lock (_gate) _commands.Add((connectionId, line));
    }

    private SslStreamCertificateContext CertificateContext(X509Certificate2 certificate)
    {
        lock (_gate)
        {
            if (_certificateContext is { } cached && ReferenceEquals(cached.Certificate, certificate)) return cached.Context;
            // Only the leaf is sent (as a server whose certificate the CA signed directly would); offline: no fetching.
            var context = SslStreamCertificateContext.Create(certificate, additionalCertificates: null, offline: true);
            _certificateContext = (certificate, context);
            return context;
        }
    }

    private void TlsNegotiated(int connectionId, string tls)
    {
        Interlocked.Increment(ref _tlsHandshakes);
        lock (_gate) _tlsByConnection[connectionId] = tls;
    }

    private void TlsFailed(string reason)
    {
        Interlocked.Increment(ref _tlsFailures);
        lock (_gate) _tlsFailureReasons.Add(reason);
    }

    private static string Describe(Exception e) => e.InnerException is { } inner ? $"{e.GetType().Name}: {e.Message} ({inner.Message})" : $"{e.GetType().Name}: {e.Message}";

    private void Closed(int connectionId)
    {
        lock (_gate)
        {
            _current--;
            _sessions.Remove(connectionId);
        }
    }

    private sealed class LineTooLongException : Exception;

    /// <summary>One connection: a byte buffer for input, a buffer of replies flushed before each blocking read.</summary>
    private sealed class Session
    {
        private readonly FakeSmtpServer _server;
        private readonly Socket _socket;
        private readonly int _id;
        private readonly NetworkStream _network;
        private Stream _stream;
        private SslStream? _ssl;
        private string? _tls;
        private string? _tlsServerName;
        private bool _tlsUnconfirmed; // handshake done, nothing received over TLS yet
        private Exception? _lastReadError;
        private readonly MemoryStream _out = new();
        private readonly CancellationToken _ct;
        private byte[] _in = new byte[16 * 1024];
        private int _start;
        private int _end;
        private bool _greeted;
        private bool _esmtp;
        private bool _noService;
        private bool _abort;
        private string? _sender;
        private string _mailParameters = "";
        private bool _smtpUtf8;
        private readonly List<string> _recipients = [];

        public Session(FakeSmtpServer server, Socket socket, int id)
        {
            _server = server;
            _socket = socket;
            _id = id;
            _network = new NetworkStream(socket, ownsSocket: false);
            _stream = _network;
            _ct = server._stop.Token;
        }

        private FakeSmtpBehavior B => _server.Behavior;

        public async Task RunAsync()
        {
            try
            {
                if (B.ImplicitTls)
                {
                    var certificate = B.TlsCertificate ?? throw new InvalidOperationException("ImplicitTls needs a TlsCertificate");
                    if (!await HandshakeAsync(certificate)) return;
                }
                if (!await StallAsync(StallAt.Banner)) return;
                var banner = B.Banner;
                if (!Reply(banner)) return;
                _noService = !banner.StartsWith('2');
                while (true)
                {
                    var line = await ReadLineAsync(MaxCommandLine);
                    if (line is null) return;
                    var text = Encoding.UTF8.GetString(line);
                    _server.RecordCommand(_id, text);
                    if (!await HandleAsync(text, line)) return;
                }
            }
            catch (LineTooLongException)
            {
                // The client's fault, not the fake's: say so and hang up.
                _out.SetLength(0);
                Reply("500 5.5.6 line too long");
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or ObjectDisposedException or AuthenticationException)
            {
                // Client went away (perhaps with a TLS alert), or the server is stopping.
                _lastReadError = e;
            }
            catch (Exception e)
            {
                _server.RecordError(e);
            }
            finally
            {
                if (_tlsUnconfirmed && !_ct.IsCancellationRequested)
                {
                    _abort = true;
                    _server.TlsFailed("the client closed the connection after the handshake without sending anything (it refused the certificate?)" +
                        (_lastReadError is null ? "" : ": " + Describe(_lastReadError)));
                }
                await CloseAsync();
                _server.Closed(_id);
            }
        }

        /// <summary>Sends what is queued, then FIN, then reads until the client closes (at most a second):
        /// closing with unread input would send a reset, which can destroy the last reply in flight.
        /// <see cref="FakeSmtpBehavior.DropConnectionDuringData"/> skips all that on purpose.</summary>
        private async Task CloseAsync()
        {
            try
            {
                if (!_abort && !_ct.IsCancellationRequested)
                {
                    await FlushAsync();
                    if (_ssl is not null) await _ssl.ShutdownAsync(); // close_notify
                    _socket.Shutdown(SocketShutdown.Send);
                    using var linger = CancellationTokenSource.CreateLinkedTokenSource(_ct);
                    linger.CancelAfter(TimeSpan.FromSeconds(1));
                    var scratch = new byte[8192];
                    while (await _stream.ReadAsync(scratch, linger.Token) > 0)
                    {
                    }
                }
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException or AuthenticationException)
            {
            }
            finally
            {
                _ssl?.Dispose();
                _network.Dispose();
                _socket.Dispose();
            }
        }

        /// <summary>Handles one command line; false ends the session.</summary>
        private async Task<bool> HandleAsync(string text, byte[] raw)
        {
            if (Array.IndexOf(raw, (byte)'\r') >= 0 || Array.IndexOf(raw, (byte)'\n') >= 0)
                return Reply("500 5.5.2 bare CR or LF in command line");

            var space = text.IndexOf(' ');
            var verb = (space < 0 ? text : text[..space]).ToUpperInvariant();
            var arg = space < 0 ? "" : text[(space + 1)..];

            if (_noService && verb != "QUIT") return Reply("503 5.5.1 no service here");

            switch (verb)
            {
                case "EHLO":
                case "HELO":
                    if (!await StallAsync(StallAt.Ehlo)) return false;
                    if (verb == "EHLO" && B.EhloRefused) return Reply("502 5.5.2 EHLO not implemented, try HELO");
                    if (arg.Trim().Length == 0) return Reply($"501 5.5.4 {verb} needs a domain or address literal");
                    ResetTransaction();
                    _greeted = true;
                    _esmtp = verb == "EHLO";
                    if (verb == "HELO") return Reply($"250 {B.Hostname}");
                    var lines = new List<string> { $"250 {B.Hostname} greets {arg.Trim()}" };
                    lines.AddRange(B.Extensions.Select(x => "250 " + x));
                    if (B.TlsCertificate is not null && _ssl is null) lines.Add("250 STARTTLS");
                    return Reply(string.Join('\n', lines));
                case "MAIL":
                    Interlocked.Increment(ref _server._transactions);
                    return await MailAsync(arg);
                case "RCPT":
                    return await RcptAsync(arg);
                case "DATA":
                    return await DataAsync(arg);
                case "RSET":
                    if (arg.Length > 0) return Reply("501 5.5.4 RSET takes no arguments");
                    ResetTransaction();
                    return Reply("250 2.0.0 ok");
                case "NOOP":
                    return Reply("250 2.0.0 ok");
                case "VRFY":
                    return Reply("252 2.1.5 cannot VRFY, but will take a message");
                case "HELP":
                    return Reply("214 2.0.0 see RFC 5321");
                case "STARTTLS" when B.TlsCertificate is not null || _ssl is not null:
                    return await StartTlsAsync(arg);
                case "QUIT":
                    if (arg.Length > 0) return Reply("501 5.5.4 QUIT takes no arguments");
                    if (!await StallAsync(StallAt.Quit)) return false;
                    Reply($"221 2.0.0 {B.Hostname} closing connection");
                    await FlushAsync();
                    return false;
                default:
                    return Reply("500 5.5.2 command not recognized");
            }
        }

        private async Task<bool> MailAsync(string arg)
        {
            if (!_greeted) return Reply("503 5.5.1 send EHLO or HELO first");
            if (_sender is not null) return Reply("503 5.5.1 nested MAIL command");
            if (!TryParsePath(arg, "FROM:", out var sender, out var parameters)) return Reply("501 5.5.4 syntax: MAIL FROM:<address> [parameters]");
            var smtpUtf8 = false;
            foreach (var p in parameters.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                var eq = p.IndexOf('=');
                var key = (eq < 0 ? p : p[..eq]).ToUpperInvariant();
                var value = eq < 0 ? null : p[(eq + 1)..];
                var allowed = _esmtp && key switch
                {
                    "SIZE" => Advertised("SIZE"),
                    "BODY" => Advertised("8BITMIME") || Advertised("BINARYMIME"),
                    "SMTPUTF8" => Advertised("SMTPUTF8"),
                    "RET" or "ENVID" => Advertised("DSN"),
                    "AUTH" => Advertised("AUTH"),
                    "REQUIRETLS" => Advertised("REQUIRETLS"),
                    _ => false,
                };
                if (!allowed) return Reply($"555 5.5.4 MAIL parameter {key} not recognized");
                switch (key)
                {
                    case "SIZE":
                        if (value is null || !long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var size))
                            return Reply("501 5.5.4 bad SIZE value");
                        if (MaxSize() is { } max && size > max) return Reply("552 5.3.4 message size exceeds fixed maximum message size");
                        break;
                    case "BODY":
                        var body = value?.ToUpperInvariant();
                        if (!(body == "7BIT" || body == "8BITMIME" && Advertised("8BITMIME") || body == "BINARYMIME" && Advertised("BINARYMIME")))
                            return Reply("501 5.5.4 bad BODY value");
                        break;
                    case "SMTPUTF8":
                        if (value is not null) return Reply("501 5.5.4 SMTPUTF8 takes no value");
                        smtpUtf8 = true;
                        break;
                }
            }
            if (!smtpUtf8 && !IsAscii(sender)) return Reply("553 5.6.7 non-ASCII address needs SMTPUTF8");

            if (!await StallAsync(StallAt.Mail)) return false;
            var reply = B.OnMail?.Invoke(sender) ?? "250 2.1.0 ok";
            if (IsPositive(reply))
            {
                _sender = sender;
                _mailParameters = parameters;
                _smtpUtf8 = smtpUtf8;
            }
            return Reply(reply);
        }

        private async Task<bool> RcptAsync(string arg)
        {
            if (_sender is null) return Reply("503 5.5.1 need MAIL before RCPT");
            if (!TryParsePath(arg, "TO:", out var recipient, out var parameters) || recipient.Length == 0)
                return Reply("501 5.5.4 syntax: RCPT TO:<address> [parameters]");
            foreach (var p in parameters.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                var eq = p.IndexOf('=');
                var key = (eq < 0 ? p : p[..eq]).ToUpperInvariant();
                if (!(_esmtp && key is "NOTIFY" or "ORCPT" && Advertised("DSN"))) return Reply($"555 5.5.4 RCPT parameter {key} not recognized");
            }
            if (!_smtpUtf8 && !IsAscii(recipient)) return Reply("553 5.6.7 non-ASCII address needs SMTPUTF8");

            if (!await StallAsync(StallAt.Rcpt)) return false;
            var reply = B.OnRcpt?.Invoke(recipient) ?? "250 2.1.5 ok";
            if (IsPositive(reply)) _recipients.Add(recipient);
            return Reply(reply);
        }

        private async Task<bool> DataAsync(string arg)
        {
            if (arg.Length > 0) return Reply("501 5.5.4 DATA takes no arguments");
            if (_sender is null) return Reply("503 5.5.1 need MAIL before DATA");
            if (_recipients.Count == 0) return Reply("554 5.5.1 no valid recipients");
            if (!await StallAsync(StallAt.Data)) return false;
            if (!Reply("354 end data with <CR><LF>.<CR><LF>")) return false;

            if (B.DropConnectionDuringData)
            {
                // Read some content, then vanish without a reply.
                if (_end == _start)
                {
                    await FlushAsync();
                    if (!await FillAsync()) return false;
                }
                _abort = true;
                return false;
            }

            var data = new MemoryStream();
            var max = MaxSize();
            var tooBig = false;
            while (true)
            {
                var line = await ReadLineAsync(MaxDataLine);
                if (line is null) return false; // connection lost mid-message: nothing is kept
                if (line is [(byte)'.']) break;
                var skip = line is [(byte)'.', ..] ? 1 : 0; // dot-unstuffing (RFC 5321 4.5.2)
                if (!tooBig)
                {
                    data.Write(line, skip, line.Length - skip);
                    data.Write("\r\n"u8);
                    if (max is { } m && data.Length > m)
                    {
                        tooBig = true;
                        data.SetLength(0);
                    }
                }
            }

            var message = new ReceivedMessage
            {
                ConnectionId = _id,
                Sender = _sender,
                Recipients = _recipients.ToArray(),
                MailParameters = _mailParameters,
                Data = data.ToArray(),
                Tls = _tls,
                TlsServerName = _tlsServerName,
            };
            ResetTransaction();
            if (tooBig) return Reply("552 5.3.4 message size exceeds fixed maximum message size");
            if (!await StallAsync(StallAt.DataEnd)) return false;

            string reply;
            var n = Interlocked.Increment(ref _server._dataEnds);
            if (B.FailFirstNTransactions is { } fail && n <= fail) reply = "451 4.3.0 try later";
            else reply = B.OnDataEnd?.Invoke(message) ?? $"250 2.0.0 ok queued as FAKE{_id}X{n}";
            if (IsPositive(reply))
            {
                lock (_server._gate) _server._messages.Add(message);
            }
            if (!Reply(reply)) return false;
            // Ending the session flushes the reply before the FIN (CloseAsync).
            return B.CloseAfterDataEnd?.Invoke(message) != true;
        }

        /// <summary>RFC 3207: 220, then the handshake on the same connection, then back to the state before EHLO.</summary>
        private async Task<bool> StartTlsAsync(string arg)
        {
            if (arg.Length > 0) return Reply("501 5.5.4 STARTTLS takes no arguments");
            if (_ssl is not null) return Reply("503 5.5.1 TLS already active");
            if (!_esmtp) return Reply("503 5.5.1 send EHLO first");
            if (_sender is not null) return Reply("503 5.5.1 MAIL transaction in progress");
            var certificate = B.TlsCertificate;
            if (certificate is null) return Reply("500 5.5.2 command not recognized");
            if (B.StartTlsReply is { } refusal) return Reply(refusal);

            Reply("220 2.0.0 Ready to start TLS");
            await FlushAsync();
            // Anything the client sent after STARTTLS in plain text is dropped, never executed inside TLS
            // (the STARTTLS command injection of CVE-2011-0411).
            _start = _end = 0;
            if (!await HandshakeAsync(certificate)) return false;
            _greeted = false;
            _esmtp = false;
            ResetTransaction();
            return true;
        }

        /// <summary>Server side of a TLS handshake on the connection; false (counted, and the connection is dropped) when it fails.</summary>
        private async Task<bool> HandshakeAsync(X509Certificate2 certificate)
        {
            var ssl = new SslStream(_network, leaveInnerStreamOpen: true);
            try
            {
                await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
                {
                    ServerCertificateContext = _server.CertificateContext(certificate),
                    EnabledSslProtocols = B.TlsProtocols,
                    ClientCertificateRequired = false,
                    CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                }, _ct);
            }
            catch (Exception e)
            {
                // Whatever went wrong (AuthenticationException, IOException, EOF, ...), the client is just disconnected.
                ssl.Dispose();
                if (!_ct.IsCancellationRequested) _server.TlsFailed("handshake failed: " + Describe(e));
                _abort = true; // nothing more to say, in plain text or otherwise
                return false;
            }
            _ssl = ssl;
            _stream = ssl;
            _tls = $"{ssl.SslProtocol} {ssl.NegotiatedCipherSuite}";
            _tlsServerName = string.IsNullOrEmpty(ssl.TargetHostName) ? null : ssl.TargetHostName;
            _tlsUnconfirmed = true; // counted as established at the first bytes received over it (FillAsync)
            return true;
        }

        private void ResetTransaction()
        {
            _sender = null;
            _mailParameters = "";
            _smtpUtf8 = false;
            _recipients.Clear();
        }

        private bool Advertised(string keyword) =>
            B.Extensions.Any(x => x.Split(' ')[0].Equals(keyword, StringComparison.OrdinalIgnoreCase));

        private long? MaxSize()
        {
            var size = B.Extensions.FirstOrDefault(x => x.Split(' ')[0].Equals("SIZE", StringComparison.OrdinalIgnoreCase));
            var parts = size?.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return parts is [_, var n] && long.TryParse(n, CultureInfo.InvariantCulture, out var max) && max > 0 ? max : null;
        }

        private static bool IsAscii(string s) => s.All(char.IsAscii);

        private static bool IsPositive(string reply) => reply.Length > 0 && reply[0] == '2';

        /// <summary>"FROM:&lt;a@b&gt; SIZE=1" → "a@b", "SIZE=1". Tolerates a space after the colon; drops a source route.</summary>
        private static bool TryParsePath(string arg, string prefix, out string address, out string parameters)
        {
            address = "";
            parameters = "";
            if (!arg.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)) return false;
            var rest = arg[prefix.Length..].TrimStart(' ');
            if (rest.Length == 0 || rest[0] != '<') return false;
            var quoted = false;
            var close = -1;
            for (var i = 1; i < rest.Length; i++)
            {
                var c = rest[i];
                if (c == '\\' && quoted) i++;
                else if (c == '"') quoted = !quoted;
                else if (c == '>' && !quoted)
                {
                    close = i;
                    break;
                }
            }
            if (close < 0) return false;
            var path = rest[1..close];
            if (path.StartsWith('@'))
            {
                var colon = path.IndexOf(':');
                if (colon < 0) return false;
                path = path[(colon + 1)..];
            }
            var after = rest[(close + 1)..];
            if (after.Length > 0 && after[0] != ' ') return false;
            address = path;
            parameters = after.Trim(' ');
            return true;
        }

        /// <summary>Queues a reply (validated, multi-line joined); false when it was a 421 (the session ends).</summary>
        private bool Reply(string reply)
        {
            var lines = reply.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
            var code = lines[0].Length >= 3 ? lines[0][..3] : "";
            if (code.Length != 3 || !code.All(char.IsAsciiDigit) || code[0] is < '2' or > '5')
                throw new FormatException($"not an SMTP reply: '{reply}'");
            var text = new StringBuilder();
            for (var i = 0; i < lines.Length; i++)
            {
                var line = lines[i];
                if (!line.StartsWith(code, StringComparison.Ordinal)) throw new FormatException($"reply lines must all start with {code}: '{reply}'");
                var rest = line.Length > 3 ? line[4..] : "";
                text.Append(code).Append(i < lines.Length - 1 ? '-' : ' ').Append(rest).Append("\r\n");
            }
            _out.Write(Encoding.UTF8.GetBytes(text.ToString()));
            return code != "421";
        }

        private async Task FlushAsync()
        {
            if (_out.Length == 0) return;
            await _stream.WriteAsync(_out.GetBuffer().AsMemory(0, (int)_out.Length), _ct);
            _out.SetLength(0);
        }

        /// <summary>Waits per <see cref="FakeSmtpBehavior.StallBeforeReply"/> when <paramref name="stage"/> is the stall stage;
        /// false when stalled forever (until the client leaves or the server stops).</summary>
        private async Task<bool> StallAsync(StallAt stage)
        {
            if (B.StallAt != stage || stage == StallAt.None) return true;
            await FlushAsync();
            if (B.StallBeforeReply is { } delay)
            {
                await Task.Delay(delay, _ct);
                return true;
            }
            // Never answer; keep reading (and dropping) so a client that gives up is noticed.
            while (await FillAsync()) _start = _end;
            return false;
        }

        /// <summary>One line without its CRLF (only CRLF ends a line; a bare CR or LF stays in it); null at EOF.
        /// Queued replies are flushed before blocking, so pipelined commands get their replies in one write.</summary>
        private async Task<byte[]?> ReadLineAsync(int maxLine)
        {
            var scanFrom = _start;
            while (true)
            {
                for (var i = Math.Max(scanFrom, _start); i < _end - 1; i++)
                {
                    if (_in[i] != '\r' || _in[i + 1] != '\n') continue;
                    if (i - _start > maxLine) throw new LineTooLongException();
                    var line = _in.AsSpan(_start, i - _start).ToArray();
                    _start = i + 2;
                    return line;
                }
                scanFrom = Math.Max(_start, _end - 1);
                if (_end - _start > maxLine) throw new LineTooLongException();
                await FlushAsync();
                var before = _start;
                if (!await FillAsync()) return null;
                scanFrom -= before - _start; // FillAsync may have moved the buffered bytes to the front
            }
        }

        /// <summary>Reads more bytes into the buffer (compacting or growing it); false at EOF.</summary>
        private async Task<bool> FillAsync()
        {
            if (_start > 0 && _start == _end) _start = _end = 0;
            if (_end == _in.Length)
            {
                if (_start > 0)
                {
                    Buffer.BlockCopy(_in, _start, _in, 0, _end - _start);
                    _end -= _start;
                    _start = 0;
                }
                else Array.Resize(ref _in, _in.Length * 2);
            }
            var n = await _stream.ReadAsync(_in.AsMemory(_end), _ct);
            if (n == 0) return false;
            _end += n;
            if (_tlsUnconfirmed)
            {
                _tlsUnconfirmed = false;
                _server.TlsNegotiated(_id, _tls!);
            }
            return true;
        }
    }
}
