using System.Net;
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

    /// <summary>Replaces the SMTP client (tests, benchmarks); null for the real one. Set before the host starts.</summary>
    public Outbound.IOutboundTransport? OutboundTransport { get; set; }

    /// <summary>Opens the spool and binds the listeners; throws <see cref="StartupException"/> with a clear message.</summary>
    public static RelayMtaRuntime Start(RelayMtaSettings settings, ILoggerFactory loggers, SpoolOptions? spoolOptions = null)
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
        return new RelayMtaRuntime(settings, spool, bound, loggers);
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

/// <summary>Start-up failed for a reason the operator must fix (spool in use, port taken).</summary>
public sealed class StartupException(string message, Exception? inner = null) : Exception(message, inner);
