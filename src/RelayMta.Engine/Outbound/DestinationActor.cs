using System.Collections.Immutable;
using Akka.Actor;
using RelayMta.Engine.Hosting;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.CircuitBreaker;
using RelayMta.Engine.Queue;
using RelayMta.Engine.Spool;

namespace RelayMta.Engine.Outbound;

/// <summary>How a destination is reached.</summary>
/// <param name="Key">The destination's name: a domain (A-labels), an address literal, or "smarthost:host:port".</param>
/// <param name="Host">For a smarthost, the host to resolve with no MX lookup; null to route by MX.</param>
internal sealed record DestinationRouting(string Key, string? Host, int Port, Hosting.TlsLevel Tls, Credentials? Credentials = null)
{
    public bool IsSmarthost => Host is not null;
}

/// <summary>
/// One destination (a domain, or the smarthost): owns its pending deliveries, its retry timer and
/// its connection budget. Jobs arrive from the queue manager (via the outbound queue); due jobs go
/// to <see cref="DeliveryAgentActor"/> children, up to <c>max-connections-per-destination</c> of them,
/// each connection granted by the outbound queue's global budget. Every attempt's results go to
/// the queue manager; recipients deferred are kept here and tried again after the retry interval
/// (from the message's attempt count), or failed with 5.4.7 past the queue lifetime. Repeated
/// connection failures open this destination's circuit (Polly): its mail then waits, untried,
/// until the break has passed.
/// </summary>
internal sealed class DestinationActor : ReceiveActor, IWithTimers
{
    private static readonly TimeSpan RouteLifetime = TimeSpan.FromSeconds(30);

    private readonly DestinationRouting _routing;
    private readonly OutboundContext _context;
    private readonly IActorRef _queueManager;
    private readonly ILogger _log;
    private readonly PriorityQueue<DeliveryJob, DateTimeOffset> _waiting = new();
    private readonly LinkedList<DeliveryJob> _ready = new();
    private readonly HashSet<IActorRef> _agents = new();
    private readonly Stack<IActorRef> _idle = new();
    private readonly Dictionary<IActorRef, DeliveryJob> _busy = new();
    private readonly CircuitBreakerStateProvider _circuitState = new();
    private readonly HashSet<(QueueId, int)> _held = new();
    private readonly Dictionary<QueueId, int> _crashes = new();
    private DateTimeOffset _openUntil;
    private readonly ResiliencePipeline _circuit;
    private IReadOnlyList<RemoteHost>? _route;
    private DateTimeOffset _routeExpires;
    private bool _resolving;
    private int _slotsRequested;
    private long _agentNumber;
    private string? _lastError;
    private bool _quiescing;
    private bool _suspended;
    private readonly List<IActorRef> _quiesceWaiters = new();

    public DestinationActor(DestinationRouting routing, OutboundContext context, IActorRef queueManager)
    {
        _routing = routing;
        _context = context;
        _queueManager = queueManager;
        _log = context.Log;
        var settings = context.Settings.Outbound;
        // Built once per destination: consecutive connection failures open the circuit for a while.
        _circuit = new ResiliencePipelineBuilder()
            .AddCircuitBreaker(new CircuitBreakerStrategyOptions
            {
                FailureRatio = 1.0,
                MinimumThroughput = settings.CircuitBreakerFailures,
                SamplingDuration = TimeSpan.FromMinutes(10),
                BreakDuration = settings.CircuitBreakerBreak,
                StateProvider = _circuitState,
                ShouldHandle = new PredicateBuilder().Handle<OutboundConnectException>(),
            })
            .Build();

        Receive<OutboundProtocol.Deliver>(d =>
        {
            Add(d.Job);
            Dispatch();
        });
        Receive<Wake>(_ => Dispatch());
        Receive<RouteResolved>(OnRoute);
        Receive<OutboundProtocol.SlotGranted>(_ => OnSlot());
        Receive<OutboundProtocol.AgentIdle>(_ =>
        {
            _busy.Remove(Sender);
            if (!_agents.Contains(Sender)) return;
            if (!_idle.Contains(Sender)) _idle.Push(Sender);
            Dispatch();
        });
        Receive<OutboundProtocol.WorkDone>(OnWorkDone);
        Receive<OutboundProtocol.AgentCrashed>(c =>
        {
            _log.LogWarning(c.Cause, "{Destination}: delivery agent crashed; its job for {QueueId} goes back in the queue", _routing.Key, c.Job.Id);
            _busy.Remove(Sender);
            Requeue(c.Job, c.Cause.Message);
        });
        Receive<Terminated>(t =>
        {
            if (!_agents.Remove(t.ActorRef)) return;
            if (_busy.Remove(t.ActorRef, out var lost)) Requeue(lost, "delivery agent stopped"); // stopped mid-job: try again
            var idle = _idle.Where(a => !a.Equals(t.ActorRef)).Reverse().ToList();
            _idle.Clear();
            foreach (var a in idle) _idle.Push(a);
            Context.Parent.Tell(new OutboundProtocol.ReleaseSlot());
            Dispatch();
        });
        Receive<OutboundProtocol.GetDestinationStatus>(_ => Sender.Tell(Status()));
        Receive<OutboundProtocol.RetryNow>(r =>
        {
            // Jobs waiting for their retry time become due now; nothing else changes.
            var waiting = _waiting.UnorderedItems.Select(x => x.Element).ToList();
            _waiting.Clear();
            foreach (var job in waiting)
            {
                if (r.Id is null || job.Id == r.Id) _ready.AddLast(job with { NotBefore = DateTimeOffset.UtcNow });
                else _waiting.Enqueue(job, job.NotBefore);
            }
            if (r.Id is null) _openUntil = DateTimeOffset.MinValue; // an operator's retry also ends a circuit break
            Dispatch();
        });
        Receive<OutboundProtocol.Withdraw>(w =>
        {
            var waiting = _waiting.UnorderedItems.Select(x => x.Element).Where(j => j.Id != w.Id).ToList();
            _waiting.Clear();
            foreach (var job in waiting) _waiting.Enqueue(job, job.NotBefore);
            for (var node = _ready.First; node is not null;)
            {
                var next = node.Next;
                if (node.Value.Id == w.Id) _ready.Remove(node);
                node = next;
            }
            var inFlight = _busy.Values.Where(j => j.Id == w.Id).SelectMany(j => j.Recipients).ToHashSet();
            _held.RemoveWhere(h => h.Item1 == w.Id && !inFlight.Contains(h.Item2));
            ScheduleWake();
        });
        Receive<OutboundProtocol.SetSuspended>(s =>
        {
            _suspended = s.Suspended;
            _log.LogInformation("{Destination}: deliveries {State} by the administrator", _routing.Key, s.Suspended ? "suspended" : "resumed");
            Sender.Tell(new Queue.AdminProtocol.ActionResult(true, 0, $"{_routing.Key} {(s.Suspended ? "suspended" : "resumed")}"));
            Dispatch();
        });
        Receive<OutboundProtocol.Quiesce>(_ =>
        {
            _quiescing = true;
            _quiesceWaiters.Add(Sender);
            ReleaseQuiesceIfIdle();
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    // A crashed agent is restarted; the job it held came back through AgentCrashed.
    protected override SupervisorStrategy SupervisorStrategy() =>
        new OneForOneStrategy(maxNrOfRetries: 10, withinTimeRange: TimeSpan.FromMinutes(1), localOnlyDecider: _ => Directive.Restart);

    /// <summary>
    /// Takes a job, minus any recipient this destination already holds: after a restart the
    /// queue manager hands everything over again, and a Deliver may also still be in the mailbox.
    /// </summary>
    private void Add(DeliveryJob job)
    {
        var fresh = job.Recipients.Where(i => _held.Add((job.Id, i))).ToImmutableArray();
        if (fresh.Length == 0) return;
        if (fresh.Length != job.Recipients.Length) job = job with { Recipients = fresh };
        if (job.NotBefore <= DateTimeOffset.UtcNow) _ready.AddLast(job);
        else _waiting.Enqueue(job, job.NotBefore);
    }

    /// <summary>
    /// A job whose agent crashed goes back to the front of the queue, not counted as an attempt;
    /// after a few crashes it is deferred like any failure, so a job that always crashes its agent
    /// follows the retry schedule and expires instead of looping.
    /// </summary>
    private void Requeue(DeliveryJob job, string cause)
    {
        var crashes = _crashes.GetValueOrDefault(job.Id) + 1;
        if (crashes < 3)
        {
            _crashes[job.Id] = crashes;
            _ready.AddFirst(job);
            return;
        }
        _crashes.Remove(job.Id);
        var failure = new DeliveryOutcome.TempFailure("4.3.0", "internal error while delivering: " + cause, null);
        Report(job, job.Recipients.Select(i => new RecipientResult(i, failure)).ToImmutableArray(), null, null);
    }

    private DeliveryJob? TakeReady()
    {
        Promote();
        if (_ready.Count == 0 || _suspended || CircuitOpen || (Probing && _busy.Count > 0)) return null;
        var job = _ready.First!.Value;
        _ready.RemoveFirst();
        return job;
    }

    /// <summary>
    /// Open and within its break. Polly only moves an open circuit on when something runs through
    /// it, so the break is timed here; after it, one connection at a time probes the host.
    /// </summary>
    private bool CircuitOpen => _circuitState.CircuitState == CircuitState.Open && DateTimeOffset.UtcNow < _openUntil;

    private bool Probing => _circuitState.CircuitState != CircuitState.Closed;

    private void NoteCircuit()
    {
        if (_circuitState.CircuitState == CircuitState.Open && _openUntil <= DateTimeOffset.UtcNow)
            _openUntil = DateTimeOffset.UtcNow + _context.Settings.Outbound.CircuitBreakerBreak;
    }

    private void Promote()
    {
        var now = DateTimeOffset.UtcNow;
        while (_waiting.TryPeek(out _, out var at) && at <= now) _ready.AddLast(_waiting.Dequeue());
    }

    private void ReleaseQuiesceIfIdle()
    {
        if (!_quiescing || _busy.Count > 0) return;
        foreach (var w in _quiesceWaiters) w.Tell(Akka.Done.Instance);
        _quiesceWaiters.Clear();
    }

    private void Dispatch()
    {
        if (_quiescing)
        {
            ReleaseQuiesceIfIdle();
            return;
        }
        Promote();
        ScheduleWake();
        if (_ready.Count == 0 || _suspended) return;
        if (CircuitOpen)
        {
            Timers.StartSingleTimer("wake", Wake.Instance, _openUntil - DateTimeOffset.UtcNow);
            return;
        }
        if (_route is null || DateTimeOffset.UtcNow >= _routeExpires)
        {
            Resolve();
            return;
        }
        while (_idle.Count > 0 && TakeReady() is { } job) GiveWork(_idle.Pop(), job);

        var limit = Probing ? 1 : _context.Settings.Outbound.MaxConnectionsPerDestination;
        if (Probing && _busy.Count > 0) return;
        var wanted = Math.Min(Probing ? 1 : _ready.Count, limit - _agents.Count - _slotsRequested);
        for (var i = 0; i < wanted; i++)
        {
            _slotsRequested++;
            Context.Parent.Tell(new OutboundProtocol.RequestSlot());
        }
    }

    private void ScheduleWake()
    {
        if (_waiting.TryPeek(out _, out var at))
        {
            var delay = at - DateTimeOffset.UtcNow;
            Timers.StartSingleTimer("wake", Wake.Instance, delay < TimeSpan.Zero ? TimeSpan.Zero : delay);
        }
    }

    private void Resolve()
    {
        if (_resolving) return;
        _resolving = true;
        var resolver = _context.Resolver;
        var routing = _routing;
        (routing.IsSmarthost
                ? resolver.ResolveHostAsync(routing.Host!, CancellationToken.None)
                : resolver.ResolveMxAsync(routing.Key, CancellationToken.None))
            .PipeTo(Self, success: r => new RouteResolved(r),
                failure: e => new RouteResolved(new RouteResult.Failure(false, "4.4.3", "route lookup failed: " + e.Message)));
    }

    private void OnRoute(RouteResolved resolved)
    {
        _resolving = false;
        switch (resolved.Result)
        {
            case RouteResult.Hosts hosts:
                _route = hosts.List;
                _routeExpires = DateTimeOffset.UtcNow + RouteLifetime;
                Dispatch();
                break;
            case RouteResult.Failure failure:
                _lastError = failure.Diagnostic;
                _log.LogInformation("{Destination}: {Error}", _routing.Key, failure.Diagnostic);
                Promote();
                var due = _ready.ToList();
                _ready.Clear();
                DeliveryOutcome outcome = failure.Permanent
                    ? new DeliveryOutcome.PermFailure(failure.Status, failure.Diagnostic, null)
                    : new DeliveryOutcome.TempFailure(failure.Status, failure.Diagnostic, null);
                foreach (var job in due) Report(job, job.Recipients.Select(i => new RecipientResult(i, outcome)).ToImmutableArray(), null, null);
                ScheduleWake();
                break;
        }
    }

    protected override void PostStop()
    {
        // The agents stop with this instance (a restart, or for good): give their slots back.
        foreach (var _ in _agents) Context.Parent.Tell(new OutboundProtocol.ReleaseSlot());
        _agents.Clear();
    }

    protected override void PostRestart(Exception reason)
    {
        base.PostRestart(reason);
        // Whatever this destination held in memory is gone; the queue manager has it all.
        _queueManager.Tell(new QueueProtocol.Redispatch(_routing.Key));
    }

    private void OnSlot()
    {
        _slotsRequested = Math.Max(0, _slotsRequested - 1);
        if (_quiescing)
        {
            Context.Parent.Tell(new OutboundProtocol.ReleaseSlot());
            return;
        }
        var job = TakeReady();
        if (job is null || _route is null || _agents.Count >= _context.Settings.Outbound.MaxConnectionsPerDestination)
        {
            if (job is not null) _ready.AddFirst(job);
            Context.Parent.Tell(new OutboundProtocol.ReleaseSlot());
            return;
        }
        var agentContext = new AgentContext(_routing.Key, _route, _routing.Port, _routing.Tls, _routing.Credentials,
            _context.Transport, _circuit, _context.Settings.Outbound, _log, _context.Metrics);
        var agent = Context.ActorOf(FactoryProps.Create(() => new DeliveryAgentActor(agentContext)), "agent-" + ++_agentNumber);
        Context.Watch(agent);
        _agents.Add(agent);
        GiveWork(agent, job);
    }

    private void GiveWork(IActorRef agent, DeliveryJob job)
    {
        _busy[agent] = job;
        agent.Tell(new OutboundProtocol.Work(job));
    }

    private void OnWorkDone(OutboundProtocol.WorkDone done)
    {
        _busy.Remove(Sender);
        _crashes.Remove(done.Job.Id);
        if (done.ConnectionFailed)
        {
            _lastError = done.Error ?? _lastError;
            _route = null; // look the destination up again before the next try
            NoteCircuit();
        }
        if (done.NotAttempted)
        {
            // The circuit refused to even try: the job waits out the break, not counted as an attempt.
            _ready.AddFirst(done.Job);
        }
        else
        {
            Report(done.Job, done.Results, done.RemoteMta, done.Tls);
        }
        Dispatch();
    }

    /// <summary>
    /// Sends the attempt's results to the queue manager. Deferred recipients stay here, due again
    /// after the next retry interval, or fail with 5.4.7 once the message has outlived the queue lifetime.
    /// </summary>
    private void Report(DeliveryJob job, ImmutableArray<RecipientResult> results, string? remoteMta, string? tls)
    {
        var now = DateTimeOffset.UtcNow;
        var schedule = _context.Schedule;
        var deferred = results.Where(r => r.Outcome is DeliveryOutcome.TempFailure).ToList();
        foreach (var r in results)
            if (r.Outcome is not DeliveryOutcome.TempFailure) _held.Remove((job.Id, r.Index));
        DateTimeOffset? next = null;
        if (deferred.Count > 0)
        {
            if (schedule.HasExpired(job.Envelope.ReceivedAt, now))
            {
                foreach (var r in deferred) _held.Remove((job.Id, r.Index));
                results = results.Select(r => r.Outcome is DeliveryOutcome.TempFailure t
                    ? new RecipientResult(r.Index, new DeliveryOutcome.PermFailure("5.4.7", "delivery time expired; last error: " + t.Diagnostic, t.RemoteMta))
                    : r).ToImmutableArray();
            }
            else
            {
                var attempts = job.Attempts + 1;
                next = now + schedule.DelayAfter(attempts);
                _waiting.Enqueue(job with { Recipients = deferred.Select(r => r.Index).ToImmutableArray(), Attempts = attempts, NotBefore = next.Value }, next.Value);
                _lastError = deferred[0].Outcome.Diagnostic;
            }
        }
        _queueManager.Tell(new QueueProtocol.RecipientResults(job.Id, results, next) { Relay = remoteMta, Tls = tls });
    }

    private OutboundProtocol.DestinationStatus Status()
    {
        var jobs = _ready.Concat(_waiting.UnorderedItems.Select(x => x.Element)).Concat(_busy.Values).ToList();
        DateTimeOffset? next = _waiting.TryPeek(out _, out var at) ? at : null;
        return new OutboundProtocol.DestinationStatus(_routing.Key, jobs.Select(j => j.Id).Distinct().Count(), jobs.Sum(j => j.Recipients.Length),
            _agents.Count, jobs.Count == 0 ? null : jobs.Min(j => j.Envelope.ReceivedAt), _ready.Count > 0 ? DateTimeOffset.UtcNow : next,
            _lastError, CircuitOpen, _suspended);
    }

    private sealed record Wake
    {
        public static readonly Wake Instance = new();
    }

    private sealed record RouteResolved(RouteResult Result);
}

/// <summary>What destinations share: settings, the resolver, the transport, the retry schedule.</summary>
internal sealed record OutboundContext(
    Hosting.RelayMtaSettings Settings,
    MxResolver Resolver,
    IOutboundTransport Transport,
    RetrySchedule Schedule,
    ILogger Log,
    Diagnostics.RelayMetrics? Metrics = null);
