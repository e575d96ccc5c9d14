using System.Net.Sockets;
using Akka.Actor;

namespace RelayMta.Engine.Inbound;

/// <summary>
/// Owns one SMTP connection: runs its <see cref="SmtpSession"/> loop and handles its lifecycle
/// (drain on shutdown, forced close at the deadline, stop when the loop ends). Created by the
/// <see cref="ListenerActor"/> for each accepted connection. Commands and message bytes never pass
/// through this actor's mailbox: the control plane does, the data plane stays in the pipes.
/// </summary>
/// <remarks>
/// An <see cref="UntypedActor"/> with a switch: one of these is made per connection, and a
/// <see cref="ReceiveActor"/> builds its handler table on every construction.
/// </remarks>
internal sealed class SessionActor : UntypedActor, IWithTimers
{
    // A client that does not read our 421 cannot hold the session open past this.
    private static readonly TimeSpan HardStopAfter = TimeSpan.FromSeconds(5);

    private readonly SmtpSession _session;
    private readonly CancellationTokenSource _stop = new();

    private readonly InboundContext _context;
    private readonly System.Net.IPAddress _client;
    private readonly bool _exempt;
    private readonly long _id;

    public SessionActor(Socket socket, ListenerKind kind, System.Net.IPAddress client, bool exempt, InboundContext context, long id)
    {
        _context = context;
        _client = client;
        _exempt = exempt;
        _id = id;
        _session = new SmtpSession(socket, kind, exempt, context, id);
        context.Metrics.SessionsOpen.Inc();
        context.Metrics.SessionsTotal.Inc();
    }

    protected override void OnReceive(object message)
    {
        switch (message)
        {
            case InboundProtocol.Drain:
                _session.RequestDrain();
                break;
            case InboundProtocol.ForceClose:
                _session.RequestForceClose();
                Timers.StartSingleTimer("hard-stop", HardStop.Instance, HardStopAfter);
                break;
            case HardStop or InboundProtocol.Ended:
                Context.Stop(Self);
                break;
            case InboundProtocol.Faulted f:
                Microsoft.Extensions.Logging.LoggerExtensions.LogWarning(_context.Log, f.Cause, "session {Session} failed", _id);
                Context.Stop(Self);
                break;
            default:
                Unhandled(message);
                break;
        }
    }

    public ITimerScheduler Timers { get; set; } = null!;

    protected override void PreStart() =>
        _session.RunAsync(_stop.Token).PipeTo(Self,
            success: () => InboundProtocol.Ended.Instance,
            failure: ex => new InboundProtocol.Faulted(ex));

    protected override void PostStop()
    {
        _stop.Cancel();
        _session.Dispose();
        _stop.Dispose();
        _context.Limiter.Release(_client, _exempt);
        _context.Metrics.SessionsOpen.Dec();
    }

    private sealed record HardStop
    {
        public static readonly HardStop Instance = new();
    }
}
