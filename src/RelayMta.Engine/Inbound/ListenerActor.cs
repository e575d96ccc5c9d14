using System.Net;
using System.Net.Sockets;
using Akka.Actor;
using RelayMta.Engine.Hosting;
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
    private readonly IReadOnlyList<BoundListener> _listeners;
    private readonly InboundContext _context;
    private readonly ILogger _log;
    private readonly HashSet<IActorRef> _sessions = new();
    private readonly List<IActorRef> _drainWaiters = new();
    private long _total;
    private bool _accepting = true;

    public ListenerActor(IReadOnlyList<BoundListener> listeners, InboundContext context)
    {
        _listeners = listeners;
        _context = context;
        _log = context.Log;

        Receive<InboundProtocol.Accepted>(a =>
        {
            if (!_accepting)
            {
                context.Limiter.Release(a.Client, a.Exempt);
                a.Socket.Dispose();
                return;
            }
            var id = context.NextSessionId();
            var session = Context.ActorOf(FactoryProps.Create(() => new SessionActor(a.Socket, a.Kind, a.Client, a.Exempt, context, id)), "session-" + id);
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
        Receive<Prune>(_ => context.Limiter.Prune());
    }

    public ITimerScheduler Timers { get; set; } = null!;

    protected override SupervisorStrategy SupervisorStrategy() => Akka.Actor.SupervisorStrategy.StoppingStrategy;

    protected override void PreStart()
    {
        Timers.StartPeriodicTimer("prune", Prune.Instance, TimeSpan.FromMinutes(1));
        var self = Self;
        var context = _context;
        foreach (var listener in _listeners)
        {
            var socket = listener.Socket;
            var kind = listener.Kind;
            _log.LogInformation("listening for {Kind} on {Endpoint}", kind switch
            {
                ListenerKind.Submission => "submission",
                ListenerKind.ImplicitTls => "SMTP over TLS",
                _ => "SMTP",
            }, listener.Endpoint);
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
                    Admit(client, kind, context, self);
                }
            });
        }
    }

    protected override void PostStop() => StopAccepting();

    /// <summary>
    /// Runs on the accept loop, not in the actor: a client over a limit gets its 421 and is closed
    /// without a session actor ever being made for it.
    /// </summary>
    private static void Admit(Socket client, ListenerKind kind, InboundContext context, IActorRef listener)
    {
        var remote = ((IPEndPoint)client.RemoteEndPoint!).Address;
        if (remote.IsIPv4MappedToIPv6) remote = remote.MapToIPv4();
        var exempt = context.MayRelay(remote);
        var refusal = context.Limiter.TryAdmit(remote, exempt);
        if (refusal is null)
        {
            listener.Tell(new InboundProtocol.Accepted(client, kind, remote, exempt));
            return;
        }
        context.Log.LogInformation("refused connection from [{Client}]: {Reply}", remote, refusal.ToString());
        context.Metrics.ConnectionsRefused.WithLabels(refusal == ClientLimiter.TooManySessions ? "max-sessions"
            : refusal == ClientLimiter.ConnectionRate ? "connection-rate" : "max-sessions-per-ip").Inc();
        _ = RefuseAsync(client, refusal);
    }

    private static async Task RefuseAsync(Socket client, Protocol.Smtp.SmtpReply reply)
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await client.SendAsync(reply.Utf8, SocketFlags.None, cts.Token).ConfigureAwait(false);
            client.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
        finally
        {
            client.Dispose();
        }
    }

    private void StopAccepting()
    {
        if (!_accepting) return;
        _accepting = false;
        foreach (var listener in _listeners)
        {
            _log.LogInformation("no longer accepting connections on {Endpoint}", listener.Endpoint);
            listener.Socket.Dispose();
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

    private sealed record Prune
    {
        public static readonly Prune Instance = new();
    }
}
