using Akka.Actor;
using RelayMta.Engine.Hosting;
using Microsoft.Extensions.Logging;

namespace RelayMta.Engine.Outbound;

/// <summary>
/// The outbound queue: supervises one <see cref="DestinationActor"/> per destination (created on
/// first use) and holds the relay-wide connection budget (<c>outbound.max-connections</c>), granting
/// slots to destinations first come, first served so no destination can take them all. Child of
/// the queue manager, which sends it <see cref="OutboundProtocol.Deliver"/>.
/// </summary>
internal sealed class OutboundActor : ReceiveActor
{
    private readonly OutboundContext _context;
    private readonly IActorRef _queueManager;
    private readonly Dictionary<string, IActorRef> _destinations = new(StringComparer.Ordinal);
    private readonly Queue<IActorRef> _waiting = new();
    private readonly Dictionary<IActorRef, int> _granted = new();
    private int _inUse;

    public OutboundActor(OutboundContext context, IActorRef queueManager)
    {
        _context = context;
        _queueManager = queueManager;

        Receive<OutboundProtocol.Deliver>(d => Destination(d.Destination).Forward(d));
        Receive<OutboundProtocol.RequestSlot>(_ =>
        {
            if (_inUse < _context.Settings.Outbound.MaxConnections) Grant(Sender);
            else _waiting.Enqueue(Sender);
        });
        Receive<OutboundProtocol.ReleaseSlot>(_ => Release(Sender, 1));
        Receive<OutboundProtocol.GetStatus>(_ =>
        {
            var inUse = _inUse;
            var asks = _destinations.Values.Select(d => d.Ask<OutboundProtocol.DestinationStatus>(
                OutboundProtocol.GetDestinationStatus.Instance, TimeSpan.FromSeconds(5))).ToList();
            Task.WhenAll(asks).PipeTo(Sender, success: all => new OutboundProtocol.OutboundStatus(
                all.Where(s => s.Messages > 0 || s.Connections > 0 || s.Suspended).OrderBy(s => s.Destination, StringComparer.Ordinal).ToList(), inUse));
        });
        Receive<OutboundProtocol.RetryNow>(r =>
        {
            foreach (var d in _destinations.Values) d.Tell(r);
        });
        Receive<OutboundProtocol.Withdraw>(w =>
        {
            foreach (var d in _destinations.Values) d.Tell(w);
        });
        Receive<OutboundProtocol.SetSuspended>(s => Destination(s.Destination).Forward(s));
        Receive<OutboundProtocol.Quiesce>(q =>
        {
            var asks = _destinations.Values.Select(d => d.Ask<Akka.Done>(q, TimeSpan.FromMinutes(10))).ToList();
            Task.WhenAll(asks).PipeTo(Sender, success: _ => Akka.Done.Instance);
        });
        Receive<Terminated>(t =>
        {
            // A destination stopped for good: its slots come back, and its recipients go to a new one.
            var key = _destinations.FirstOrDefault(kv => kv.Value.Equals(t.ActorRef)).Key;
            if (key is not null) _destinations.Remove(key);
            var remaining = _waiting.Where(w => !w.Equals(t.ActorRef)).ToList();
            _waiting.Clear();
            foreach (var w in remaining) _waiting.Enqueue(w);
            if (_granted.Remove(t.ActorRef, out var held)) Release(null, held);
            if (key is not null) _queueManager.Tell(new Queue.QueueProtocol.Redispatch(key));
        });
    }

    /// <summary>
    /// A destination that fails is restarted; what it held in memory is lost, so it asks the queue
    /// manager (from PostRestart) to hand its recipients over again. The spool is the truth.
    /// </summary>
    protected override SupervisorStrategy SupervisorStrategy() =>
        new OneForOneStrategy(maxNrOfRetries: 10, withinTimeRange: TimeSpan.FromMinutes(1), localOnlyDecider: e =>
        {
            _context.Log.LogError(e, "an outbound destination failed; restarting it");
            return Directive.Restart;
        });

    private void Grant(IActorRef destination)
    {
        _inUse++;
        _granted[destination] = _granted.GetValueOrDefault(destination) + 1;
        destination.Tell(new OutboundProtocol.SlotGranted());
    }

    /// <summary>Slots come back; waiting destinations get them first come, first served.</summary>
    private void Release(IActorRef? from, int count)
    {
        if (from is not null && _granted.TryGetValue(from, out var held))
        {
            if (held <= 1) _granted.Remove(from);
            else _granted[from] = held - 1;
        }
        _inUse -= count;
        while (_inUse < _context.Settings.Outbound.MaxConnections && _waiting.TryDequeue(out var next)) Grant(next);
    }

    private IActorRef Destination(string key)
    {
        if (_destinations.TryGetValue(key, out var existing)) return existing;
        var smarthost = _context.Settings.Relay.Smarthost;
        var relay = _context.Settings.Relay;
        var routing = key.StartsWith(Queue.Routing.SmarthostPrefix, StringComparison.Ordinal) && smarthost is not null
            ? new DestinationRouting(key, smarthost.Host, smarthost.Port, relay.SmarthostTls,
                relay.SmarthostUser is null ? null : new Credentials(relay.SmarthostUser, relay.SmarthostPassword!))
            : new DestinationRouting(key, null, _context.Settings.Outbound.Port, _context.Settings.Outbound.TlsFor(key));
        var actor = Context.ActorOf(FactoryProps.Create(() => new DestinationActor(routing, _context, _queueManager)),
            "dest-" + Uri.EscapeDataString(key));
        Context.Watch(actor);
        _destinations[key] = actor;
        return actor;
    }
}
