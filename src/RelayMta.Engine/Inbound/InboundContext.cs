using System.Net;
using System.Net.Security;
using System.Text;
using Akka.Actor;
using Microsoft.Extensions.Logging;
using RelayMta.Engine.Hosting;
using RelayMta.Engine.Local;
using RelayMta.Protocol.Mail;
using RelayMta.Protocol.Smtp;

namespace RelayMta.Engine.Inbound;

/// <summary>
/// What every session shares: settings (swapped whole on reload), the spool, the queue manager,
/// and replies prepared once from the settings. Thread-safe.
/// </summary>
internal sealed class InboundContext
{
    private volatile Prepared _prepared;
    private long _sessionIds;

    public InboundContext(RelayMtaSettings settings, Spool.Spool spool, IActorRef queueManager, ILoggerFactory loggers,
        Diagnostics.RelayMetrics? metrics = null)
    {
        Metrics = metrics ?? new Diagnostics.RelayMetrics();
        _prepared = new Prepared(settings);
        Spool = spool;
        QueueManager = queueManager;
        Log = loggers.CreateLogger("RelayMta.Smtpd");
        Limiter = new ClientLimiter(() => _prepared.Settings.Limits);
    }

    /// <summary>Metrics and recent activity.</summary>
    public Diagnostics.RelayMetrics Metrics { get; }

    /// <summary>The sweeper of session time-outs (resolution a quarter of a second).</summary>
    public SessionClock Clock { get; } = new(TimeSpan.FromMilliseconds(250));

    /// <summary>Per-address limits, shared by every listener and session.</summary>
    public ClientLimiter Limiter { get; }

    /// <summary>The server certificate, ready for handshakes; null when TLS is not configured.</summary>
    public SslStreamCertificateContext? TlsContext => _prepared.TlsContext;

    public RelayMtaSettings Settings => _prepared.Settings;

    public Spool.Spool Spool { get; }

    public IActorRef QueueManager { get; }

    public ILogger Log { get; }

    public SmtpReply Banner => _prepared.Banner;

    /// <summary>The EHLO reply, with STARTTLS and AUTH lines as the session allows.</summary>
    public SmtpReply EhloReply(bool offerStartTls, bool offerAuth) => _prepared.Ehlo[(offerStartTls ? 1 : 0) + (offerAuth ? 2 : 0)];

    public SmtpReply HeloReply => _prepared.Helo;

    public long NextSessionId() => Interlocked.Increment(ref _sessionIds);

    /// <summary>Puts new settings in force for commands from now on (reload).</summary>
    public void Update(RelayMtaSettings settings) => _prepared = new Prepared(settings);

    /// <summary>Whether a client at <paramref name="address"/> may relay to non-local domains.</summary>
    public bool MayRelay(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        foreach (var network in Settings.Relay.AllowedNetworks)
            if (network.Contains(address)) return true;
        return false;
    }

    /// <summary>
    /// Decides on one recipient. Returns null to accept, with the address to store and whether it is
    /// local; otherwise the reply to send.
    /// </summary>
    public SmtpReply? CheckRecipient(in MailPath path, bool mayRelay, out string address, out bool isLocal)
    {
        var settings = Settings;
        address = "";
        isLocal = false;
        string local;
        string domainKey;
        if (path.IsPostmaster)
        {
            // RFC 5321 4.5.1: <Postmaster> goes to the postmaster of our own domain.
            domainKey = settings.Local.Domains.Contains(settings.Hostname.ToLowerInvariant())
                ? settings.Hostname.ToLowerInvariant()
                : settings.Local.Domains.FirstOrDefault() ?? "";
            if (domainKey.Length == 0) return Replies.UserUnknown;
            local = "postmaster";
        }
        else
        {
            local = Encoding.UTF8.GetString(path.LocalPart);
            domainKey = DomainName.Normalize(Encoding.UTF8.GetString(path.Domain));
        }

        if (settings.Local.Domains.Contains(domainKey))
        {
            var mailbox = MailboxPaths.MailboxName(local);
            if (mailbox is null) return Replies.MailboxNameNotAllowed;
            if (settings.Local.Recipients == LocalRecipientPolicy.Existing &&
                !Directory.Exists(MailboxPaths.For(settings.Local.MailboxRoot, domainKey, mailbox)))
                return Replies.UserUnknown;
            isLocal = true;
            address = local + "@" + domainKey;
            return null;
        }

        if (!mayRelay) return Replies.RelayDenied;
        address = local + "@" + (path.HasNonAscii ? Encoding.UTF8.GetString(path.Domain).ToLowerInvariant() : domainKey);
        return null;
    }

    private sealed class Prepared
    {
        public Prepared(RelayMtaSettings settings)
        {
            Settings = settings;
            Banner = new SmtpReply(220, "", $"{settings.Hostname} ESMTP RelayMta");
            Helo = new SmtpReply(250, "", settings.Hostname);
            Ehlo = new SmtpReply[4];
            for (var variant = 0; variant < 4; variant++)
            {
                // RFC 5321 4.1.1.1: the first line names us; then one extension per line.
                var lines = new List<string>
                {
                    settings.Hostname,
                    "PIPELINING",
                    "SIZE " + settings.Limits.MaxMessageSize.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    "8BITMIME",
                    "ENHANCEDSTATUSCODES",
                    "SMTPUTF8",
                };
                if ((variant & 1) != 0) lines.Add("STARTTLS");         // RFC 3207
                if ((variant & 2) != 0) lines.Add("AUTH PLAIN LOGIN"); // RFC 4954
                Ehlo[variant] = new SmtpReply(250, "", string.Join('\n', lines));
            }
            if (settings.TlsCertificate is { } certificate)
                TlsContext = SslStreamCertificateContext.Create(certificate, additionalCertificates: null, offline: true);
        }

        public RelayMtaSettings Settings { get; }
        public SmtpReply Banner { get; }
        public SmtpReply Helo { get; }
        public SmtpReply[] Ehlo { get; }
        public SslStreamCertificateContext? TlsContext { get; }
    }
}
