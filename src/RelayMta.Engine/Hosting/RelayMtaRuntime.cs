using System.Net;
using Akka.Actor;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using RelayMta.Engine.Inbound;
using RelayMta.Engine.Spool;

namespace RelayMta.Engine.Hosting;

/// <summary>
/// What must exist before the actors start, and can fail in ways an operator must see at once:
/// the spool (opened, locked, recovered) and the listening sockets (bound). Created by
/// <see cref="Start"/>, handed to <see cref="AkkaBuilderExtensions.AddRelayMta"/>.
/// </summary>
public sealed class RelayMtaRuntime : IDisposable
{
    private RelayMtaRuntime(RelayMtaSettings settings, Spool.Spool spool, IReadOnlyList<BoundListener> listeners, ILoggerFactory loggers)
    {
        Settings = settings;
        Spool = spool;
        Listeners = listeners;
        BoundEndpoints = listeners.Select(l => l.Endpoint).ToList();
        Loggers = loggers;
    }

    /// <summary>The settings in force at start.</summary>
    public RelayMtaSettings Settings { get; }

    /// <summary>The open spool.</summary>
    public Spool.Spool Spool { get; }

    /// <summary>Bound, listening sockets: <c>listen</c>, then <c>submission-listen</c>, then <c>tls-listen</c>.</summary>
    public IReadOnlyList<BoundListener> Listeners { get; }

    /// <summary>Where the listeners are bound, in the same order (port 0 in the settings becomes the real port here).</summary>
    public IReadOnlyList<IPEndPoint> BoundEndpoints { get; }

    /// <summary>The bound endpoints of one kind of listener.</summary>
    public IReadOnlyList<IPEndPoint> EndpointsOf(ListenerKind kind) => Listeners.Where(l => l.Kind == kind).Select(l => l.Endpoint).ToList();

    /// <summary>Logging.</summary>
    public ILoggerFactory Loggers { get; }

    /// <summary>The relay's metrics and recent activity.</summary>
    public Diagnostics.RelayMetrics Metrics { get; } = new();

    /// <summary>The configuration file given with --config (reloads read it again), or null for the defaults alone.</summary>
    public string? ConfigFile { get; init; }

    /// <summary>The settings in force now (reloads change them).</summary>
    public RelayMtaSettings CurrentSettings => Inbound?.Settings ?? Settings;

    internal InboundContext? Inbound { get; set; }

    internal Akka.Actor.IActorRef? QueueManager { get; set; }

    internal Akka.Actor.IActorRef? Listener { get; set; }

    /// <summary>
    /// Reads the configuration again (SIGHUP, or the admin API) and puts into force what can change
    /// without dropping a session: local domains and recipient policy, allowed networks, users,
    /// limits. A file that does not load is refused with the reason and the old settings stay.
    /// </summary>
    public Task<ReloadResult> ReloadAsync()
    {
        LoadedConfig loaded;
        try
        {
            loaded = ConfigLoader.Load(ConfigFile);
        }
        catch (ConfigException e)
        {
            Loggers.CreateLogger("RelayMta.Config").LogError("reload refused: {Error}", e.Message);
            return Task.FromResult(new ReloadResult(false, e.Message));
        }
        var current = CurrentSettings;
        var fresh = loaded.Settings;
        var restartNeeded = new List<string>();
        if (!fresh.Listen.SequenceEqual(current.Listen) || !fresh.SubmissionListen.SequenceEqual(current.SubmissionListen)
            || !fresh.TlsListen.SequenceEqual(current.TlsListen)) restartNeeded.Add("listeners");
        if (fresh.SpoolDir != current.SpoolDir) restartNeeded.Add("spool-dir");
        if (fresh.Hostname != current.Hostname) restartNeeded.Add("hostname");
        if (OutboundKey(fresh) != OutboundKey(current)) restartNeeded.Add("outbound, dns and smarthost settings");
        var applied = current with
        {
            Local = fresh.Local,
            Relay = current.Relay with { AllowedNetworks = fresh.Relay.AllowedNetworks },
            Auth = fresh.Auth,
            Limits = fresh.Limits,
        };
        Inbound?.Update(applied);
        QueueManager?.Tell(new Queue.QueueProtocol.Reload(applied), Akka.Actor.ActorRefs.NoSender);
        var message = "reloaded local domains, recipient policy, allowed networks, users and limits" +
                      (restartNeeded.Count == 0 ? "" : "; not applied until a restart: " + string.Join(", ", restartNeeded));
        Loggers.CreateLogger("RelayMta.Config").LogInformation("configuration {File}: {Message}", ConfigFile ?? ConfigLoader.DefaultsName, message);
        return Task.FromResult(new ReloadResult(true, message));
    }

    /// <summary>
    /// The outbound, DNS and smarthost settings as one comparable string: the records hold lists
    /// and dictionaries, whose equality is by reference, so two loads of one file would differ.
    /// </summary>
    private static string OutboundKey(RelayMtaSettings s)
    {
        var o = s.Outbound;
        var t = o.Timeouts;
        return string.Join('|',
            o.Port, string.Join(',', o.RetryIntervals), o.MaxQueueLifetime, o.MaxConnections, o.MaxConnectionsPerDestination,
            o.MaxMessagesPerConnection, o.ConnectionIdleTimeout, t, o.CircuitBreakerFailures, o.CircuitBreakerBreak, o.Tls,
            string.Join(',', o.TlsPolicy.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Key + "=" + p.Value)),
            o.TrustedCas is null ? "" : string.Join(',', o.TrustedCas.Select(c => c.Thumbprint)),
            string.Join(',', s.Dns.Servers), s.Dns.Timeout, s.Dns.Retries,
            s.Relay.Smarthost, s.Relay.SmarthostTls, s.Relay.SmarthostUser, s.Relay.SmarthostPassword);
    }

    /// <summary>Ready: the listeners accept and the spool can be written.</summary>
    public async Task<Readiness> ReadinessAsync()
    {
        var listening = false;
        if (Listener is { } listener)
        {
            try
            {
                var status = await listener.Ask<InboundProtocol.ListenerStatus>(InboundProtocol.GetStatus.Instance, TimeSpan.FromSeconds(2))
                    .ConfigureAwait(false);
                listening = status.Accepting;
            }
            catch (Exception e) when (e is TaskCanceledException or Akka.Actor.AskTimeoutException)
            {
                listening = false;
            }
        }
        return new Readiness(listening, Spool.IsWritable());
    }

    /// <summary>Replaces the SMTP client (tests, benchmarks); null for the real one. Set before the host starts.</summary>
    public Outbound.IOutboundTransport? OutboundTransport { get; set; }

    /// <summary>Opens the spool and binds the listeners; throws <see cref="StartupException"/> with a clear message.</summary>
    public static RelayMtaRuntime Start(RelayMtaSettings settings, ILoggerFactory loggers, SpoolOptions? spoolOptions = null, string? configFile = null)
    {
        Spool.Spool spool;
        try
        {
            spool = RelayMta.Engine.Spool.Spool.Open(settings.SpoolDir, spoolOptions ?? new SpoolOptions(), loggers.CreateLogger("RelayMta.Spool"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            throw new StartupException($"cannot open the spool {settings.SpoolDir}: {e.Message}", e);
        }

        var wanted = settings.Listen.Select(e => (e, ListenerKind.Smtp))
            .Concat(settings.SubmissionListen.Select(e => (e, ListenerKind.Submission)))
            .Concat(settings.TlsListen.Select(e => (e, ListenerKind.ImplicitTls))).ToList();
        var bound = new List<BoundListener>();
        try
        {
            foreach (var (endpoint, kind) in wanted) bound.Add(new BoundListener(Bind(endpoint), kind));
        }
        catch (SocketException e)
        {
            foreach (var l in bound) l.Socket.Dispose();
            spool.Dispose();
            throw new StartupException($"cannot listen on {wanted[bound.Count].Item1}: {e.Message}", e);
        }
        return new RelayMtaRuntime(settings, spool, bound, loggers) { ConfigFile = configFile };
    }

    /// <summary>Closes listeners that are still open and the spool.</summary>
    public void Dispose()
    {
        foreach (var l in Listeners) l.Socket.Dispose();
        Spool.Dispose();
    }

    private static Socket Bind(IPEndPoint endpoint)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (endpoint.AddressFamily == AddressFamily.InterNetworkV6) socket.DualMode = false;
            // Lets a restarted server bind while old connections sit in TIME_WAIT; on Linux it
            // does not let two listeners share the port.
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            socket.Bind(endpoint);
            socket.Listen(4096);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}

/// <summary>What a reload did.</summary>
public sealed record ReloadResult(bool Ok, string Message);

/// <summary>What readiness found.</summary>
public sealed record Readiness(bool Listening, bool SpoolWritable)
{
    /// <summary>Both.</summary>
    public bool Ready => Listening && SpoolWritable;
}

/// <summary>Start-up failed for a reason the operator must fix (spool in use, port taken).</summary>
public sealed class StartupException(string message, Exception? inner = null) : Exception(message, inner);
