using System.Net.Sockets;
using Akka.Actor;
using Microsoft.Extensions.Logging;

namespace RelayMta.Engine.Inbound;

/// <summary>
/// Accepts TCP connections on the bound listening sockets and gives each one its own
/// <see cref="SessionActor"/> child. On shutdown it stops accepting (<see cref="InboundProtocol.Unbind"/>),
/// then drains its sessions (<see cref="InboundProtocol.DrainSessions"/>). A failed session is
/// stopped, never restarted: its connection is gone.
/// </summary>
internal sealed class ListenerActor : ReceiveActor, IWithTimers
{
    private readonly IReadOnlyList<Socket> _listeners;
    private readonly InboundContext _context;
    private readonly ILogger _log;
    private readonly HashSet<IActorRef> _sessions = new();
    private readonly List<IActorRef> _drainWaiters = new();
    private long _total;
    private bool _accepting = true;

    public ListenerActor(IReadOnlyList<Socket> listeners, InboundContext context)
    {
        _listeners = listeners;
        _context = context;
        _log = context.Log;

        Receive<InboundProtocol.Accepted>(a =>
        {
            if (!_accepting)
            {
                a.Socket.Dispose();
                return;
            }
            var id = context.NextSessionId();
            var session = Context.ActorOf(Props.Create(() => new SessionActor(a.Socket, context, id)), "session-" + id);
            Context.Watch(session);
            _sessions.Add(session);
            _total++;
        });
        Receive<Terminated>(t =>
        {
            _sessions.Remove(t.ActorRef);
            if (_sessions.Count == 0) ReleaseDrainWaiters();
        });
        Receive<InboundProtocol.Unbind>(_ =>
        {
            StopAccepting();
            Sender.Tell(Akka.Done.Instance);
        });
        Receive<InboundProtocol.DrainSessions>(d =>
        {
            StopAccepting();
            _drainWaiters.Add(Sender);
            if (_sessions.Count == 0)
            {
                ReleaseDrainWaiters();
                return;
            }
            _log.LogInformation("draining {Count} SMTP sessions (deadline {Deadline})", _sessions.Count, d.Deadline);
            foreach (var s in _sessions) s.Tell(InboundProtocol.Drain.Instance);
            Timers.StartSingleTimer("drain-deadline", DrainDeadline.Instance, d.Deadline);
        });
        Receive<DrainDeadline>(_ =>
        {
            if (_sessions.Count == 0) return;
            _log.LogWarning("drain deadline passed: closing {Count} sessions with 421", _sessions.Count);
            foreach (var s in _sessions) s.Tell(InboundProtocol.ForceClose.Instance);
        });
        Receive<InboundProtocol.GetStatus>(_ => Sender.Tell(new InboundProtocol.ListenerStatus(_sessions.Count, _total, _accepting)));
    }

    public ITimerScheduler Timers { get; set; } = null!;

    protected override SupervisorStrategy SupervisorStrategy() => Akka.Actor.SupervisorStrategy.StoppingStrategy;

    protected override void PreStart()
    {
        var self = Self;
        for (var i = 0; i < _listeners.Count; i++)
        {
            var index = i;
            var socket = _listeners[i];
            _log.LogInformation("listening for SMTP on {Endpoint}", socket.LocalEndPoint);
            _ = Task.Run(async () =>
            {
                while (true)
                {
                    Socket client;
                    try
                    {
                        client = await socket.AcceptAsync().ConfigureAwait(false);
                    }
                    catch (ObjectDisposedException)
                    {
                        return; // unbound
                    }
                    catch (SocketException e) when (e.SocketErrorCode is SocketError.OperationAborted or SocketError.Interrupted or SocketError.InvalidArgument)
                    {
                        return;
                    }
                    catch (SocketException e)
                    {
                        // e.g. too many open files: keep the listener alive, back off a little
                        _log.LogWarning("accept on {Endpoint} failed: {Error}", socket.LocalEndPoint, e.SocketErrorCode);
                        await Task.Delay(50).ConfigureAwait(false);
                        continue;
                    }
                    client.NoDelay = true;
                    self.Tell(new InboundProtocol.Accepted(client, index));
                }
            });
        }
    }

    protected override void PostStop() => StopAccepting();

    private void StopAccepting()
    {
        if (!_accepting) return;
        _accepting = false;
        foreach (var socket in _listeners)
        {
            _log.LogInformation("no longer accepting connections on {Endpoint}", socket.LocalEndPoint);
            socket.Dispose();
        }
    }

    private void ReleaseDrainWaiters()
    {
        foreach (var w in _drainWaiters) w.Tell(Akka.Done.Instance);
        _drainWaiters.Clear();
    }

    private sealed record DrainDeadline
    {
        public static readonly DrainDeadline Instance = new();
    }
}
