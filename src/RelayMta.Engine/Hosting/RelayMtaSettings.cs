using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using RelayMta.Engine.Security;
using RelayMta.Protocol.Mail;

namespace RelayMta.Engine.Hosting;

/// <summary>Who may get a local recipient accepted.</summary>
public enum LocalRecipientPolicy
{
    /// <summary>Every local-part; the mailbox is made on first delivery.</summary>
    Any,
    /// <summary>Only local-parts whose mailbox directory exists.</summary>
    Existing,
}

/// <summary>All of RelayMta's settings, checked and immutable. Built once by <see cref="Create"/>.</summary>
public sealed record RelayMtaSettings
{
    /// <summary>Our host name (banner, EHLO, Received).</summary>
    public required string Hostname { get; init; }

    /// <summary>SMTP listeners.</summary>
    public required IReadOnlyList<IPEndPoint> Listen { get; init; }

    /// <summary>Submission listeners (AUTH required before MAIL).</summary>
    public IReadOnlyList<IPEndPoint> SubmissionListen { get; init; } = [];

    /// <summary>Implicit-TLS listeners.</summary>
    public IReadOnlyList<IPEndPoint> TlsListen { get; init; } = [];

    /// <summary><c>relay-mta.tls</c>: the server certificate, or null for no TLS.</summary>
    public X509Certificate2? TlsCertificate { get; init; }

    /// <summary><c>relay-mta.auth</c>.</summary>
    public AuthSettings Auth { get; init; } = new();

    /// <summary>The spool directory.</summary>
    public required string SpoolDir { get; init; }

    /// <summary><c>relay-mta.local</c>.</summary>
    public required LocalSettings Local { get; init; }

    /// <summary><c>relay-mta.relay</c>.</summary>
    public required RelaySettings Relay { get; init; }

    /// <summary><c>relay-mta.dns</c>.</summary>
    public required DnsSettings Dns { get; init; }

    /// <summary><c>relay-mta.outbound</c>.</summary>
    public required OutboundSettings Outbound { get; init; }

    /// <summary><c>relay-mta.limits</c>.</summary>
    public required LimitSettings Limits { get; init; }

    /// <summary><c>relay-mta.admin</c>.</summary>
    public AdminSettings Admin { get; init; } = new();

    /// <summary><c>relay-mta.log</c>.</summary>
    public LogSettings Log { get; init; } = new();

    /// <summary><c>relay-mta.shutdown.drain-timeout</c>.</summary>
    public required TimeSpan DrainTimeout { get; init; }

    /// <summary>Reads and checks every key.</summary>
    public static RelayMtaSettings Create(SettingsReader r)
    {
        var hostname = r.String("hostname").Trim();
        if (!DomainName.IsValidHostName(hostname)) r.Error("hostname", $"'{hostname}' is not a host name").Throw();

        var listenText = r.StringList("listen");
        var listen = listenText.Select((t, i) => r.Endpoint($"listen[{i}]", t)).ToList();
        var submission = r.StringList("submission-listen").Select((t, i) => r.Endpoint($"submission-listen[{i}]", t)).ToList();
        var tlsListen = r.StringList("tls-listen").Select((t, i) => r.Endpoint($"tls-listen[{i}]", t)).ToList();
        var certificate = LoadCertificate(r);
        if (certificate is null && tlsListen.Count > 0) r.Error("tls-listen", "needs tls.certificate and tls.key").Throw();
        var auth = LoadAuth(r);

        var spoolDir = r.String("spool-dir");
        if (string.IsNullOrWhiteSpace(spoolDir)) r.Error("spool-dir", "must not be empty").Throw();

        var domains = r.StringList("local.domains");
        var domainSet = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < domains.Count; i++)
        {
            if (!DomainName.IsValidHostName(domains[i])) r.Error($"local.domains[{i}]", $"'{domains[i]}' is not a domain").Throw();
            domainSet.Add(DomainName.Normalize(domains[i]));
        }
        var mailboxRoot = r.String("local.mailbox-root");
        if (string.IsNullOrWhiteSpace(mailboxRoot)) r.Error("local.mailbox-root", "must not be empty").Throw();
        var policy = r.OneOf("local.recipients", "any", "existing") == "any" ? LocalRecipientPolicy.Any : LocalRecipientPolicy.Existing;

        var networksText = r.StringList("relay.allowed-networks");
        var networks = new List<IPNetwork>();
        for (var i = 0; i < networksText.Count; i++)
        {
            if (!IPNetwork.TryParse(networksText[i], out var net))
                r.Error($"relay.allowed-networks[{i}]", $"'{networksText[i]}' is not a CIDR network such as 192.0.2.0/24 (no bits set past the prefix)").Throw();
            networks.Add(net);
        }

        var smarthostText = r.String("relay.smarthost").Trim();
        HostPort? smarthost = null;
        if (smarthostText.Length > 0)
        {
            if (!HostPort.TryParse(smarthostText, 25, out var hp))
                r.Error("relay.smarthost", $"'{smarthostText}' is not \"host:port\"").Throw();
            smarthost = hp;
        }
        var smarthostTls = ParseTlsLevel(r, "relay.smarthost-tls");
        var smarthostUser = r.String("relay.smarthost-user");
        var smarthostPassword = r.String("relay.smarthost-password");
        var passwordFile = r.String("relay.smarthost-password-file");
        if (passwordFile.Length > 0)
        {
            if (smarthostPassword.Length > 0) r.Error("relay.smarthost-password-file", "give the password or a password file, not both").Throw();
            try
            {
                smarthostPassword = File.ReadLines(passwordFile).FirstOrDefault()?.TrimEnd('\r', '\n') ?? "";
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                r.Error("relay.smarthost-password-file", $"cannot read {passwordFile}: {e.Message}", e).Throw();
            }
        }
        if (smarthostUser.Length > 0 != smarthostPassword.Length > 0)
            r.Error("relay.smarthost-user", "give both the smarthost user and its password, or neither").Throw();
        if (smarthostUser.Length > 0 && smarthostTls == TlsLevel.None)
            r.Error("relay.smarthost-tls", "is none, but credentials are only ever sent over TLS").Throw();

        var dnsText = r.StringList("dns.servers");
        var dnsServers = dnsText.Select((t, i) => r.Endpoint($"dns.servers[{i}]", t)).ToList();

        var intervals = r.DurationList("outbound.retry-intervals");
        if (intervals.Count == 0) r.Error("outbound.retry-intervals", "must name at least one interval").Throw();
        var second = TimeSpan.FromSeconds(1);
        var outbound = new OutboundSettings
        {
            Port = r.Int("outbound.port", 1, 65535),
            RetryIntervals = intervals,
            MaxQueueLifetime = r.Duration("outbound.max-queue-lifetime", second),
            MaxConnections = r.Int("outbound.max-connections", 1, 100_000),
            MaxConnectionsPerDestination = r.Int("outbound.max-connections-per-destination", 1, 100_000),
            MaxMessagesPerConnection = r.Int("outbound.max-messages-per-connection", 1, 1_000_000),
            ConnectionIdleTimeout = r.Duration("outbound.connection-idle-timeout", TimeSpan.Zero),
            Timeouts = new ClientTimeouts
            {
                Connect = r.Duration("outbound.timeouts.connect", TimeSpan.FromMilliseconds(100)),
                Greeting = r.Duration("outbound.timeouts.greeting", TimeSpan.FromMilliseconds(100)),
                Command = r.Duration("outbound.timeouts.command", TimeSpan.FromMilliseconds(100)),
                Mail = r.Duration("outbound.timeouts.mail", TimeSpan.FromMilliseconds(100)),
                Rcpt = r.Duration("outbound.timeouts.rcpt", TimeSpan.FromMilliseconds(100)),
                DataInit = r.Duration("outbound.timeouts.data-init", TimeSpan.FromMilliseconds(100)),
                DataBlock = r.Duration("outbound.timeouts.data-block", TimeSpan.FromMilliseconds(100)),
                DataDone = r.Duration("outbound.timeouts.data-done", TimeSpan.FromMilliseconds(100)),
            },
            CircuitBreakerFailures = r.Int("outbound.circuit-breaker.failures", 2, 10_000),
            CircuitBreakerBreak = r.Duration("outbound.circuit-breaker.break", TimeSpan.FromMilliseconds(500)),
            Tls = ParseTlsLevel(r, "outbound.tls"),
            TlsPolicy = r.MapKeys("outbound.tls-policy").ToDictionary(k => DomainName.Normalize(k),
                k => ParseTlsLevel(r, $"outbound.tls-policy.\"{k}\""), StringComparer.Ordinal),
            TrustedCas = LoadCas(r, "outbound.tls-ca-file"),
        };

        var limits = new LimitSettings
        {
            MaxMessageSize = r.Size("limits.max-message-size", 1024),
            MaxRecipients = r.Int("limits.max-recipients", 1, 100_000),
            MaxErrors = r.Int("limits.max-errors", 1, 10_000),
            CommandTimeout = r.Duration("limits.command-timeout", TimeSpan.FromSeconds(1)),
            DataTimeout = r.Duration("limits.data-timeout", TimeSpan.FromSeconds(1)),
            MaxReceivedHeaders = r.Int("limits.max-received-headers", 1, 10_000),
            MaxHeaderSize = (int)Math.Min(int.MaxValue, r.Size("limits.max-header-size", 1024)),
            MaxLineLength = (int)Math.Min(int.MaxValue, r.Size("limits.max-line-length", 1000)),
            MaxSessions = r.Int("limits.max-sessions", 1, 10_000_000),
            MaxSessionsPerIp = r.Int("limits.max-sessions-per-ip", 1, 10_000_000),
            ConnectionsPerIpPerMinute = r.Int("limits.connections-per-ip-per-minute", 0, 100_000_000),
            MessagesPerIpPerMinute = r.Int("limits.messages-per-ip-per-minute", 0, 100_000_000),
            AuthFailuresPerIp = r.Int("limits.auth-failures-per-ip", 1, 100_000),
            AuthFailureWindow = r.Duration("limits.auth-failure-window", TimeSpan.FromSeconds(1)),
            MinDataRate = r.Int("limits.min-data-rate", 0, int.MaxValue),
            DataRateGrace = r.Duration("limits.data-rate-grace", TimeSpan.Zero),
            GreetDelay = r.Duration("limits.greet-delay", TimeSpan.Zero),
            TlsHandshakeTimeout = r.Duration("limits.tls-handshake-timeout", TimeSpan.FromMilliseconds(100)),
        };

        var adminText = r.String("admin.listen").Trim();
        IPEndPoint? adminEndpoint = adminText.Length == 0 ? null : r.Endpoint("admin.listen", adminText);
        var tokenFile = r.String("admin.token-file");
        string? token = null;
        if (tokenFile.Length > 0)
        {
            try
            {
                token = File.ReadLines(tokenFile).FirstOrDefault()?.Trim();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw r.Error("admin.token-file", $"cannot read {tokenFile}: {e.Message}", e);
            }
            if (string.IsNullOrEmpty(token)) r.Error("admin.token-file", $"{tokenFile} holds no token on its first line").Throw();
        }
        if (adminEndpoint is not null && !IPAddress.IsLoopback(adminEndpoint.Address) && token is null)
            r.Error("admin.listen", $"{adminEndpoint} is not a loopback address, so admin.token-file must be set").Throw();
        var logFormat = r.OneOf("log.format", "text", "json");
        var logFile = r.String("log.file");

        return new RelayMtaSettings
        {
            Admin = new AdminSettings { Listen = adminEndpoint, Token = token },
            Log = new LogSettings { Json = logFormat == "json", File = logFile.Length > 0 ? logFile : null },
            Hostname = hostname,
            Listen = listen,
            SubmissionListen = submission,
            TlsListen = tlsListen,
            TlsCertificate = certificate,
            Auth = auth,
            SpoolDir = spoolDir,
            Local = new LocalSettings { Domains = domainSet, MailboxRoot = mailboxRoot, Recipients = policy },
            Relay = new RelaySettings
            {
                AllowedNetworks = networks,
                Smarthost = smarthost,
                SmarthostTls = smarthostTls,
                SmarthostUser = smarthostUser.Length > 0 ? smarthostUser : null,
                SmarthostPassword = smarthostPassword.Length > 0 ? smarthostPassword : null,
            },
            Dns = new DnsSettings
            {
                Servers = dnsServers,
                Timeout = r.Duration("dns.timeout", TimeSpan.FromMilliseconds(100)),
                Retries = r.Int("dns.retries", 0, 10),
            },
            Outbound = outbound,
            Limits = limits,
            DrainTimeout = r.Duration("shutdown.drain-timeout", TimeSpan.Zero),
        };
    }

    private static X509Certificate2? LoadCertificate(SettingsReader r)
    {
        var certPath = r.String("tls.certificate");
        var keyPath = r.String("tls.key");
        if (certPath.Length == 0 && keyPath.Length == 0) return null;
        if (certPath.Length == 0) r.Error("tls.certificate", "is empty but tls.key is set").Throw();
        if (keyPath.Length == 0) r.Error("tls.key", "is empty but tls.certificate is set").Throw();
        try
        {
            return X509Certificate2.CreateFromPemFile(certPath, keyPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
        {
            throw r.Error("tls.certificate", $"cannot load {certPath} with key {keyPath}: {e.Message}", e);
        }
    }

    private static AuthSettings LoadAuth(SettingsReader r)
    {
        var path = r.String("auth.users-file");
        var users = UserStore.Empty;
        if (path.Length > 0)
        {
            try
            {
                users = UserStore.Load(path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or UserStoreException)
            {
                throw r.Error("auth.users-file", e.Message, e);
            }
        }
        return new AuthSettings { UsersFile = path, Users = users, AllowInsecure = r.Bool("auth.allow-insecure") };
    }

    private static TlsLevel ParseTlsLevel(SettingsReader r, string key) =>
        r.OneOf(key, "none", "may", "encrypt", "verify") switch
        {
            "none" => TlsLevel.None,
            "may" => TlsLevel.May,
            "encrypt" => TlsLevel.Encrypt,
            _ => TlsLevel.Verify,
        };

    private static X509Certificate2Collection? LoadCas(SettingsReader r, string key)
    {
        var path = r.String(key);
        if (path.Length == 0) return null;
        var cas = new X509Certificate2Collection();
        try
        {
            cas.ImportFromPemFile(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or CryptographicException)
        {
            throw r.Error(key, $"cannot read CA certificates from {path}: {e.Message}", e);
        }
        if (cas.Count == 0) r.Error(key, $"{path} holds no certificate").Throw();
        return cas;
    }
}

/// <summary>TLS levels for outbound delivery (Postfix's smtp_tls_security_level words).</summary>
public enum TlsLevel
{
    /// <summary>Never STARTTLS.</summary>
    None,
    /// <summary>Opportunistic: STARTTLS when offered, any certificate, plain text if it fails.</summary>
    May,
    /// <summary>TLS required; any certificate.</summary>
    Encrypt,
    /// <summary>TLS required; the chain must be trusted and the name must match.</summary>
    Verify,
}

/// <summary><c>relay-mta.auth</c>.</summary>
public sealed record AuthSettings
{
    /// <summary>The users file; empty for none.</summary>
    public string UsersFile { get; init; } = "";
    /// <summary>The users (empty when no file).</summary>
    public UserStore Users { get; init; } = UserStore.Empty;
    /// <summary>AUTH without TLS on loopback listeners.</summary>
    public bool AllowInsecure { get; init; }
    /// <summary>Whether AUTH can be offered at all.</summary>
    public bool Enabled => Users.Count > 0;
}

/// <summary><c>relay-mta.admin</c>.</summary>
public sealed record AdminSettings
{
    /// <summary>Where the admin HTTP listener binds, or null for none.</summary>
    public IPEndPoint? Listen { get; init; }
    /// <summary>The bearer token, or null when none is required.</summary>
    public string? Token { get; init; }
}

/// <summary><c>relay-mta.log</c>.</summary>
public sealed record LogSettings
{
    /// <summary>JSON lines rather than text.</summary>
    public bool Json { get; init; }
    /// <summary>A file to write the log to as well, or null.</summary>
    public string? File { get; init; }
}

/// <summary><c>relay-mta.local</c>.</summary>
public sealed record LocalSettings
{
    /// <summary>Normalised local domains.</summary>
    public required IReadOnlySet<string> Domains { get; init; }
    /// <summary>Maildir root.</summary>
    public required string MailboxRoot { get; init; }
    /// <summary>Recipient policy.</summary>
    public required LocalRecipientPolicy Recipients { get; init; }
}

/// <summary><c>relay-mta.relay</c>.</summary>
public sealed record RelaySettings
{
    /// <summary>Networks allowed to relay.</summary>
    public required IReadOnlyList<IPNetwork> AllowedNetworks { get; init; }
    /// <summary>The smarthost, or null to route by MX.</summary>
    public HostPort? Smarthost { get; init; }
    /// <summary>TLS towards the smarthost.</summary>
    public TlsLevel SmarthostTls { get; init; } = TlsLevel.May;
    /// <summary>AUTH user for the smarthost, or null.</summary>
    public string? SmarthostUser { get; init; }
    /// <summary>AUTH password for the smarthost, or null.</summary>
    public string? SmarthostPassword { get; init; }
}

/// <summary><c>relay-mta.dns</c>.</summary>
public sealed record DnsSettings
{
    /// <summary>Resolvers; empty for the system's.</summary>
    public required IReadOnlyList<IPEndPoint> Servers { get; init; }
    /// <summary>One query's time-out.</summary>
    public required TimeSpan Timeout { get; init; }
    /// <summary>Retries of a failed query.</summary>
    public required int Retries { get; init; }
}

/// <summary><c>relay-mta.outbound</c>.</summary>
public sealed record OutboundSettings
{
    /// <summary>Remote SMTP port.</summary>
    public required int Port { get; init; }
    /// <summary>Waits between attempts; the last repeats.</summary>
    public required IReadOnlyList<TimeSpan> RetryIntervals { get; init; }
    /// <summary>Bounce after this long in the queue.</summary>
    public required TimeSpan MaxQueueLifetime { get; init; }
    /// <summary>Outbound connections for the whole relay.</summary>
    public required int MaxConnections { get; init; }
    /// <summary>Outbound connections to one destination.</summary>
    public required int MaxConnectionsPerDestination { get; init; }
    /// <summary>Messages sent over one connection before it is closed.</summary>
    public required int MaxMessagesPerConnection { get; init; }
    /// <summary>Idle time before a connection is closed.</summary>
    public required TimeSpan ConnectionIdleTimeout { get; init; }
    /// <summary>SMTP client time-outs.</summary>
    public required ClientTimeouts Timeouts { get; init; }
    /// <summary>Connection failures in a row that open a destination's circuit.</summary>
    public required int CircuitBreakerFailures { get; init; }
    /// <summary>How long an open circuit stays open.</summary>
    public required TimeSpan CircuitBreakerBreak { get; init; }
    /// <summary>Default outbound TLS level.</summary>
    public TlsLevel Tls { get; init; } = TlsLevel.May;
    /// <summary>Per-destination TLS levels.</summary>
    public IReadOnlyDictionary<string, TlsLevel> TlsPolicy { get; init; } = new Dictionary<string, TlsLevel>();
    /// <summary>Extra trusted CAs for verify, or null.</summary>
    public X509Certificate2Collection? TrustedCas { get; init; }

    /// <summary>The TLS level for a destination key.</summary>
    public TlsLevel TlsFor(string destination) => TlsPolicy.TryGetValue(destination, out var level) ? level : Tls;
}

/// <summary>SMTP client time-outs (RFC 5321 4.5.3.2).</summary>
public sealed record ClientTimeouts
{
    /// <summary>TCP connect.</summary>
    public required TimeSpan Connect { get; init; }
    /// <summary>The 220 banner.</summary>
    public required TimeSpan Greeting { get; init; }
    /// <summary>EHLO, HELO, STARTTLS, RSET, QUIT.</summary>
    public required TimeSpan Command { get; init; }
    /// <summary>MAIL.</summary>
    public required TimeSpan Mail { get; init; }
    /// <summary>RCPT.</summary>
    public required TimeSpan Rcpt { get; init; }
    /// <summary>The 354 after DATA.</summary>
    public required TimeSpan DataInit { get; init; }
    /// <summary>Each write of content.</summary>
    public required TimeSpan DataBlock { get; init; }
    /// <summary>The reply after the final dot.</summary>
    public required TimeSpan DataDone { get; init; }
}

/// <summary><c>relay-mta.limits</c>.</summary>
public sealed record LimitSettings
{
    /// <summary>Largest message in bytes.</summary>
    public required long MaxMessageSize { get; init; }
    /// <summary>Recipients per transaction.</summary>
    public required int MaxRecipients { get; init; }
    /// <summary>Protocol errors before 421.</summary>
    public required int MaxErrors { get; init; }
    /// <summary>Wait for a command.</summary>
    public required TimeSpan CommandTimeout { get; init; }
    /// <summary>Wait for DATA content.</summary>
    public required TimeSpan DataTimeout { get; init; }
    /// <summary>Received fields before a loop is declared.</summary>
    public required int MaxReceivedHeaders { get; init; }
    /// <summary>Largest header section.</summary>
    public required int MaxHeaderSize { get; init; }
    /// <summary>Longest content line.</summary>
    public int MaxLineLength { get; init; } = 65536;
    /// <summary>Concurrent sessions overall.</summary>
    public int MaxSessions { get; init; } = 10000;
    /// <summary>Concurrent sessions per client address.</summary>
    public int MaxSessionsPerIp { get; init; } = 50;
    /// <summary>New connections per address per minute (0 = no limit).</summary>
    public int ConnectionsPerIpPerMinute { get; init; } = 300;
    /// <summary>Messages per address per minute (0 = no limit).</summary>
    public int MessagesPerIpPerMinute { get; init; } = 1200;
    /// <summary>Failed AUTH attempts per address per window.</summary>
    public int AuthFailuresPerIp { get; init; } = 5;
    /// <summary>The window for AUTH failures.</summary>
    public TimeSpan AuthFailureWindow { get; init; } = TimeSpan.FromMinutes(5);
    /// <summary>Minimum DATA rate in bytes/s after the grace period (0 = off).</summary>
    public int MinDataRate { get; init; } = 1024;
    /// <summary>Grace period before the DATA rate is checked.</summary>
    public TimeSpan DataRateGrace { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Early-talker wait before the banner (zero = off).</summary>
    public TimeSpan GreetDelay { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>TLS handshake time-out.</summary>
    public TimeSpan TlsHandshakeTimeout { get; init; } = TimeSpan.FromSeconds(30);
}

/// <summary>A host name or IP with a port, e.g. a smarthost.</summary>
public sealed record HostPort(string Host, int Port)
{
    /// <summary>Parses "host:port", "host" (default port), "[v6]:port" or "[v6]".</summary>
    public static bool TryParse(string text, int defaultPort, out HostPort result)
    {
        result = null!;
        string host;
        var port = defaultPort;
        if (text.StartsWith('['))
        {
            var close = text.IndexOf(']');
            if (close < 0) return false;
            host = text[1..close];
            var rest = text[(close + 1)..];
            if (rest.Length > 0 && (!rest.StartsWith(':') || !int.TryParse(rest[1..], out port))) return false;
            if (!IPAddress.TryParse(host, out _)) return false;
        }
        else
        {
            var colon = text.LastIndexOf(':');
            if (colon >= 0 && text.IndexOf(':') != colon) return false; // bare IPv6 needs brackets
            host = colon < 0 ? text : text[..colon];
            if (colon >= 0 && !int.TryParse(text[(colon + 1)..], out port)) return false;
            if (!IPAddress.TryParse(host, out _) && !DomainName.IsValidHostName(host)) return false;
        }
        if (port is < 1 or > 65535 || host.Length == 0) return false;
        result = new HostPort(host, port);
        return true;
    }

    /// <inheritdoc />
    public override string ToString() => Host.Contains(':') ? $"[{Host}]:{Port}" : $"{Host}:{Port}";
}

internal static class ConfigExceptionExtensions
{
    public static void Throw(this ConfigException e) => throw e;
}
