using System.Net;
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

    /// <summary><c>relay-mta.shutdown.drain-timeout</c>.</summary>
    public required TimeSpan DrainTimeout { get; init; }

    /// <summary>Reads and checks every key.</summary>
    public static RelayMtaSettings Create(SettingsReader r)
    {
        var hostname = r.String("hostname").Trim();
        if (!DomainName.IsValidHostName(hostname)) r.Error("hostname", $"'{hostname}' is not a host name").Throw();

        var listenText = r.StringList("listen");
        var listen = listenText.Select((t, i) => r.Endpoint($"listen[{i}]", t)).ToList();

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
        };

        return new RelayMtaSettings
        {
            Hostname = hostname,
            Listen = listen,
            SpoolDir = spoolDir,
            Local = new LocalSettings { Domains = domainSet, MailboxRoot = mailboxRoot, Recipients = policy },
            Relay = new RelaySettings { AllowedNetworks = networks, Smarthost = smarthost },
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
