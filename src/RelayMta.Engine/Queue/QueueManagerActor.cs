using System.Collections.Immutable;
using System.Globalization;
using Akka.Actor;
using Microsoft.Extensions.Logging;
using RelayMta.Engine.Hosting;
using RelayMta.Engine.Outbound;
using RelayMta.Engine.Spool;

namespace RelayMta.Engine.Queue;

/// <summary>
/// Owns the queued messages (Postfix's qmgr). Takes each committed message (from sessions, and from
/// the spool at start), routes each recipient to local delivery or to the outbound queue (its
/// child), records every per-recipient result in the spool, sends the sender one delivery status
/// notification for the recipients that failed, and removes the message once every recipient is
/// final. Recipients handed to the outbound queue belong to their destination until they are final:
/// the destination retries them on its own timer. The truth lives on disk, so after a restart
/// <see cref="PreStart"/> picks everything up again.
/// </summary>
internal sealed partial class QueueManagerActor : ReceiveActor, IWithTimers
{
    private static readonly TimeSpan BounceRetry = TimeSpan.FromMinutes(1);
    private const int AttemptHistory = 50;
    private readonly Diagnostics.RelayMetrics? _metrics;
    private RelayMtaSettings _settings;
    private readonly Spool.Spool _spool;
    private readonly IActorRef _localDelivery;
    private readonly Func<IActorRef, Props>? _outboundProps;
    private readonly RetrySchedule _schedule;
    private readonly ILogger _log;
    private readonly Dictionary<QueueId, Tracked> _messages = new();
    private readonly List<IActorRef> _quiesceWaiters = new();
    private IActorRef? _outbound;
    private bool _quiescing;
    private bool _outboundQuiet;

    public QueueManagerActor(RelayMtaSettings settings, Spool.Spool spool, IActorRef localDelivery, Func<IActorRef, Props>? outboundProps,
        ILoggerFactory loggers, Diagnostics.RelayMetrics? metrics = null)
    {
        _metrics = metrics;
        _settings = settings;
        _spool = spool;
        _localDelivery = localDelivery;
        _outboundProps = outboundProps;
        _schedule = new RetrySchedule(settings.Outbound.RetryIntervals, settings.Outbound.MaxQueueLifetime);
        _log = loggers.CreateLogger("RelayMta.Queue");

        Receive<QueueProtocol.Enqueued>(e =>
        {
            Track(e.Entry);
            Dispatch(e.Entry.Id);
        });
        Receive<QueueProtocol.RecipientResults>(Apply);
        Receive<RetryLocal>(r => Dispatch(r.Id));
        Receive<RetryBounce>(r =>
        {
            if (_messages.TryGetValue(r.Id, out var m)) Settle(m);
        });
        Receive<BounceCommitted>(OnBounceCommitted);
        Receive<BounceFailed>(f =>
        {
            if (!_messages.TryGetValue(f.Id, out var m)) return;
            m.BounceInProgress = false;
            _log.LogError(f.Cause, "{QueueId}: could not make the non-delivery notification; trying again in {Delay}", f.Id, BounceRetry);
            Timers.StartSingleTimer(("bounce", f.Id), new RetryBounce(f.Id), BounceRetry);
        });
        Receive<QueueProtocol.Redispatch>(r =>
        {
            foreach (var m in _messages.Values)
            {
                var lost = m.Outbound.Where(i => Routing.DestinationOf(m.Envelope.Recipients[i], _settings) == r.Destination).ToList();
                if (lost.Count == 0) continue;
                foreach (var i in lost) m.Outbound.Remove(i);
                Dispatch(m.Envelope.Id);
            }
        });
        Receive<QueueProtocol.GetStatus>(_ => Sender.Tell(new QueueProtocol.QueueStatus(_messages.Count,
            _messages.Values.Sum(m => m.State.Recipients.Count(r => !r.IsFinal)))));
        Receive<QueueProtocol.Quiesce>(q =>
        {
            _quiescing = true;
            _quiesceWaiters.Add(Sender);
            Timers.StartSingleTimer("quiesce", QuiesceTimeout.Instance, q.Timeout);
            if (_outbound is null)
            {
                _outboundQuiet = true;
            }
            else
            {
                // Transactions in flight finish (or time out) rather than being cut mid-DATA.
                _outbound.Ask<Akka.Done>(new OutboundProtocol.Quiesce(), q.Timeout)
                    .PipeTo(Self, success: _ => OutboundQuiet.Instance, failure: _ => OutboundQuiet.Instance);
            }
            if (_outboundQuiet && LocalInFlight() == 0) ReleaseQuiesce();
        });
        Receive<OutboundQuiet>(_ =>
        {
            _outboundQuiet = true;
            if (LocalInFlight() == 0) ReleaseQuiesce();
        });
        Receive<QuiesceTimeout>(_ => ReleaseQuiesce());
        Receive<QueueProtocol.Reload>(r =>
        {
            _settings = r.Settings;
            foreach (var id in _messages.Keys.ToList()) Dispatch(id); // recipients of a domain made local can go now
        });
        Receive<GaugeTick>(_ => UpdateGauges());
        ReceiveAdmin();
    }

    public ITimerScheduler Timers { get; set; } = null!;

    protected override void PreStart()
    {
        if (_metrics is not null) Timers.StartPeriodicTimer("gauges", GaugeTick.Instance, TimeSpan.FromSeconds(1));
        if (_outboundProps is not null) _outbound = Context.ActorOf(_outboundProps(Self), "outbound");
        // The spool's current view, not the snapshot taken at open: after a restart of this actor
        // that snapshot would be stale (recipients delivered since would be sent again).
        foreach (var entry in _spool.Snapshot()) Track(entry);
        foreach (var m in _messages.Values.ToList())
        {
            Settle(m); // finish, or bounce, whatever a crash interrupted
            Dispatch(m.Envelope.Id);
        }
    }

    // First sight wins: a message committed while this actor started is in the spool's snapshot
    // and arrives as Enqueued too; replacing it would forget what is in flight and send it twice.
    private void Track(SpoolEntry entry) => _messages.TryAdd(entry.Id, new Tracked(entry.Envelope, entry.State));

    private void Dispatch(QueueId id)
    {
        if (_quiescing || !_messages.TryGetValue(id, out var m) || m.State.Held) return;
        var local = ImmutableArray.CreateBuilder<int>();
        var remote = new Dictionary<string, ImmutableArray<int>.Builder>(StringComparer.Ordinal);
        for (var i = 0; i < m.Envelope.Recipients.Length; i++)
        {
            if (m.State.Recipients[i].IsFinal || m.InFlight.Contains(i) || m.Outbound.Contains(i)) continue;
            var address = m.Envelope.Recipients[i];
            if (Routing.IsLocal(address, _settings))
            {
                local.Add(i);
            }
            else if (_outbound is not null)
            {
                var destination = Routing.DestinationOf(address, _settings);
                if (!remote.TryGetValue(destination, out var list)) remote[destination] = list = ImmutableArray.CreateBuilder<int>();
                list.Add(i);
            }
        }
        if (local.Count > 0 && !_localSuspended)
        {
            foreach (var i in local) m.InFlight.Add(i);
            _localDelivery.Tell(new LocalProtocol.DeliverLocal(m.Envelope, local.ToImmutable()));
        }
        // RFC 5321 5.1-ish: one transaction per destination, all its recipients together.
        var notBefore = m.State.NextAttemptAt ?? DateTimeOffset.UtcNow;
        foreach (var (destination, indices) in remote)
        {
            foreach (var i in indices) m.Outbound.Add(i);
            _outbound!.Tell(new OutboundProtocol.Deliver(new DeliveryJob(m.Envelope, indices.ToImmutable(), m.State.Attempts, notBefore), destination));
        }
    }

    private void Apply(QueueProtocol.RecipientResults results)
    {
        if (!_messages.TryGetValue(results.Id, out var m)) return;
        var now = DateTimeOffset.UtcNow;
        var statuses = m.State.Recipients.ToBuilder();
        var deferredLocally = false;
        var deferred = false;
        foreach (var r in results.Results)
        {
            // A late or duplicate result never reopens a recipient that is already final.
            if (m.State.Recipients[r.Index].IsFinal) continue;
            var outbound = m.Outbound.Contains(r.Index);
            m.InFlight.Remove(r.Index);
            var outcome = r.Outcome;
            // Destinations expire their own recipients; local ones are expired here.
            if (!outbound && outcome is DeliveryOutcome.TempFailure && _schedule.HasExpired(m.Envelope.ReceivedAt, now))
                outcome = new DeliveryOutcome.PermFailure("5.4.7", "delivery time expired; last error: " + outcome.Diagnostic, outcome.RemoteMta);
            var state = outcome switch
            {
                DeliveryOutcome.Delivered => RecipientState.Delivered,
                DeliveryOutcome.PermFailure => RecipientState.Failed,
                _ => RecipientState.Pending,
            };
            if (state == RecipientState.Pending)
            {
                deferred = true;
                deferredLocally |= !outbound;
            }
            else
            {
                m.Outbound.Remove(r.Index);
            }
            statuses[r.Index] = new RecipientStatus(state, outcome.Status, outcome.Diagnostic, outcome.RemoteMta, now);
            LogResult(m, r.Index, outcome, results, now);
        }

        var attempts = m.State.Attempts + (deferred ? 1 : 0);
        var next = results.NextAttemptAt
                   ?? (deferredLocally ? now + _schedule.DelayAfter(attempts) : m.State.NextAttemptAt);
        m.State = m.State with { Recipients = statuses.MoveToImmutable(), Attempts = attempts, NextAttemptAt = next };
        if (deferredLocally)
            Timers.StartSingleTimer(("retry-local", m.Envelope.Id), new RetryLocal(m.Envelope.Id), next!.Value - now);
        Settle(m);
        if (_quiescing && _outboundQuiet && LocalInFlight() == 0) ReleaseQuiesce();
    }

    /// <summary>After a change: bounce what newly failed, remove the message if it is done, else record its state.</summary>
    private void Settle(Tracked m)
    {
        var failed = Enumerable.Range(0, m.State.Recipients.Length).Where(i => m.State.Recipients[i].State == RecipientState.Failed).ToList();
        if (failed.Count > 0 && !m.Envelope.IsNullSender)
        {
            // One notice for what fails in the first round: wait for local deliveries in flight and
            // for recipients not yet tried at all, so their failures go into the same DSN.
            var untried = m.State.Recipients.Any(r => r.State == RecipientState.Pending && r.Status is null);
            if (m.InFlight.Count == 0 && !untried && !m.BounceInProgress) StartBounce(m, failed);
            else Persist(m.State);
            return;
        }
        if (m.State.IsComplete && m.InFlight.Count == 0 && !m.BounceInProgress)
        {
            Finish(m);
            return;
        }
        Persist(m.State);
    }

    /// <summary>
    /// RFC 3464: one DSN to the envelope sender naming every recipient that failed, from the null
    /// sender (so it can never bounce itself). Built off the actor thread; committed to the spool like
    /// any message before the failures are marked as reported.
    /// </summary>
    private void StartBounce(Tracked m, List<int> failed)
    {
        m.BounceInProgress = true;
        Persist(m.State); // the failures are on disk before the notice is made
        var spool = _spool;
        var hostname = _settings.Hostname;
        var original = m.Envelope;
        var state = m.State;
        Task.Run(async () =>
        {
            var now = DateTimeOffset.UtcNow;
            var failures = failed.Select(i =>
            {
                var s = state.Recipients[i];
                var smtp = s.Diagnostic is { Length: > 3 } d && char.IsAsciiDigit(d[0]) && char.IsAsciiDigit(d[1]) && char.IsAsciiDigit(d[2]);
                return new FailedRecipient(original.Recipients[i], s.Status ?? "5.0.0", s.Diagnostic ?? "delivery failed",
                    smtp ? "smtp" : "x-relaymta", s.RemoteMta, s.At);
            }).ToList();
            byte[] bytes;
            using (var body = spool.OpenBody(original.Id))
            using (var stream = body.AsStream())
            {
                bytes = DsnBuilder.Build(hostname, original, failures, stream, now);
            }
            var flags = MessageFlags.Bounce | (original.Flags & (MessageFlags.SmtpUtf8 | MessageFlags.NeedsSmtpUtf8));
            if (bytes.AsSpan().IndexOfAnyInRange((byte)0x80, (byte)0xff) >= 0) flags |= MessageFlags.EightBitContent;
            if (original.Sender.Any(c => c > 0x7f)) flags |= MessageFlags.SmtpUtf8 | MessageFlags.NeedsSmtpUtf8;
            var envelope = new MailEnvelope(spool.Ids.Next(), now, "", [original.Sender], "", hostname, "DSN", null, flags, bytes.Length);
            return await spool.CommitAsync(envelope, bytes).ConfigureAwait(false);
        }).PipeTo(Self, success: entry => new BounceCommitted(original.Id, failed, entry), failure: e => new BounceFailed(original.Id, e));
    }

    private void OnBounceCommitted(BounceCommitted b)
    {
        _log.LogInformation("{QueueId}: sender non-delivery notification: {BounceId}", b.Id, b.Bounce.Id);
        _metrics?.Bounces.Inc();
        Track(b.Bounce);
        Dispatch(b.Bounce.Id);
        if (!_messages.TryGetValue(b.Id, out var m)) return;
        m.BounceInProgress = false;
        var statuses = m.State.Recipients.ToBuilder();
        foreach (var i in b.Indices) statuses[i] = statuses[i] with { State = RecipientState.Bounced };
        m.State = m.State with { Recipients = statuses.MoveToImmutable() };
        Settle(m);
    }

    private void Finish(Tracked m)
    {
        _messages.Remove(m.Envelope.Id);
        var id = m.Envelope.Id;
        _spool.CompleteAsync(id).ContinueWith(t =>
        {
            if (t.IsFaulted) _log.LogError(t.Exception, "{QueueId}: could not record completion; it will be looked at again after restart", id);
        }, TaskContinuationOptions.ExecuteSynchronously);
        Diagnostics.Log.Removed(_log, id.Value);
    }

    private void Persist(MessageState state)
    {
        _spool.UpdateAsync(state).ContinueWith(t =>
        {
            if (t.IsFaulted) _log.LogError(t.Exception, "{QueueId}: could not record delivery progress", state.Id);
        }, TaskContinuationOptions.ExecuteSynchronously);
    }

    private void LogResult(Tracked m, int index, DeliveryOutcome outcome, QueueProtocol.RecipientResults attempt, DateTimeOffset now)
    {
        var status = outcome switch
        {
            DeliveryOutcome.Delivered => "sent",
            DeliveryOutcome.PermFailure => "bounced",
            _ => "deferred",
        };
        var isLocal = Routing.IsLocal(m.Envelope.Recipients[index], _settings);
        var relay = attempt.Relay ?? (isLocal ? "local" : "none");
        var delay = (now - m.Envelope.ReceivedAt).TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture);
        var record = new AdminProtocol.AttemptRecord(now, m.Envelope.Recipients[index], relay, attempt.Tls, outcome.Status, status, outcome.Diagnostic);
        m.Attempts.Add(record);
        if (m.Attempts.Count > AttemptHistory) m.Attempts.RemoveAt(0);
        if (_metrics is not null)
        {
            var kind = isLocal ? "local" : "remote";
            _metrics.Deliveries.WithLabels(status, kind).Inc();
            if (status == "sent") _metrics.DeliveryLatency.WithLabels(kind).Observe((now - m.Envelope.ReceivedAt).TotalSeconds);
            _metrics.Activity.Delivery(new Diagnostics.DeliveryRecord(now, m.Envelope.Id.Value, record.Recipient, relay, attempt.Tls,
                outcome.Status, status, outcome.Diagnostic));
        }
        Diagnostics.Log.Delivery(_log, m.Envelope.Id.Value, m.Envelope.Recipients[index], relay, attempt.Tls ?? "none", delay, outcome.Status,
            status, outcome.Diagnostic);
    }

    private int LocalInFlight() => _messages.Values.Sum(m => m.InFlight.Count);

    private void ReleaseQuiesce()
    {
        foreach (var w in _quiesceWaiters) w.Tell(Akka.Done.Instance);
        _quiesceWaiters.Clear();
        Timers.Cancel("quiesce");
    }

    private sealed class Tracked(MailEnvelope envelope, MessageState state)
    {
        public MailEnvelope Envelope { get; } = envelope;
        public MessageState State { get; set; } = state;
        /// <summary>Local recipients being delivered right now.</summary>
        public HashSet<int> InFlight { get; } = new();
        /// <summary>Recipients handed to the outbound queue, not yet final.</summary>
        public HashSet<int> Outbound { get; } = new();
        public bool BounceInProgress { get; set; }
        /// <summary>The last attempts, per recipient, for the admin API (kept in memory only).</summary>
        public List<AdminProtocol.AttemptRecord> Attempts { get; } = new();
    }

    private sealed record GaugeTick
    {
        public static readonly GaugeTick Instance = new();
    }

    private sealed record RetryLocal(QueueId Id);

    private sealed record RetryBounce(QueueId Id);

    private sealed record BounceCommitted(QueueId Id, List<int> Indices, SpoolEntry Bounce);

    private sealed record BounceFailed(QueueId Id, Exception Cause);

    private sealed record QuiesceTimeout
    {
        public static readonly QuiesceTimeout Instance = new();
    }

    private sealed record OutboundQuiet
    {
        public static readonly OutboundQuiet Instance = new();
    }
}
