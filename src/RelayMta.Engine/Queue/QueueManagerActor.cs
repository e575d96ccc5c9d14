using System.Collections.Immutable;
using System.Globalization;
using Akka.Actor;
using Microsoft.Extensions.Logging;
using RelayMta.Engine.Hosting;
using RelayMta.Engine.Local;
using RelayMta.Engine.Spool;
using RelayMta.Protocol.Mail;

namespace RelayMta.Engine.Queue;

/// <summary>
/// Owns the queued messages (Postfix's qmgr): takes each committed message (from sessions, and
/// from the spool at start), routes its recipients to local delivery or onward, records every
/// per-recipient result in the spool, and removes the message once every recipient is final.
/// The truth lives on disk, so after a restart <see cref="PreStart"/> picks everything up again.
/// </summary>
internal sealed class QueueManagerActor : ReceiveActor, IWithTimers
{
    private readonly RelayMtaSettings _settings;
    private readonly Spool.Spool _spool;
    private readonly IActorRef _localDelivery;
    private readonly RetrySchedule _schedule;
    private readonly ILogger _log;
    private readonly Dictionary<QueueId, Tracked> _messages = new();
    private readonly List<IActorRef> _quiesceWaiters = new();
    private bool _quiescing;

    public QueueManagerActor(RelayMtaSettings settings, Spool.Spool spool, IActorRef localDelivery, ILoggerFactory loggers)
    {
        _settings = settings;
        _spool = spool;
        _localDelivery = localDelivery;
        _schedule = new RetrySchedule(settings.Outbound.RetryIntervals, settings.Outbound.MaxQueueLifetime);
        _log = loggers.CreateLogger("RelayMta.Queue");

        Receive<QueueProtocol.Enqueued>(e =>
        {
            Track(e.Entry);
            Dispatch(e.Entry.Id);
        });
        Receive<QueueProtocol.RecipientResults>(Apply);
        Receive<RetryLocal>(r => Dispatch(r.Id));
        Receive<QueueProtocol.GetStatus>(_ => Sender.Tell(new QueueProtocol.QueueStatus(_messages.Count,
            _messages.Values.Sum(m => m.State.Recipients.Count(r => !r.IsFinal)))));
        Receive<QueueProtocol.Quiesce>(q =>
        {
            _quiescing = true;
            _quiesceWaiters.Add(Sender);
            if (InFlight() == 0) ReleaseQuiesce();
            else Timers.StartSingleTimer("quiesce", QuiesceTimeout.Instance, q.Timeout);
        });
        Receive<QuiesceTimeout>(_ => ReleaseQuiesce());
    }

    public ITimerScheduler Timers { get; set; } = null!;

    protected override void PreStart()
    {
        foreach (var entry in _spool.Recovered)
        {
            if (!_spool.Contains(entry.Id)) continue;
            Track(entry);
        }
        foreach (var id in _messages.Keys.ToList()) Dispatch(id);
    }

    private void Track(SpoolEntry entry) => _messages[entry.Id] = new Tracked(entry.Envelope, entry.State);

    private bool IsLocal(string address)
    {
        var (_, domain) = MailboxPaths.Split(address);
        return _settings.Local.Domains.Contains(DomainName.Normalize(domain));
    }

    private void Dispatch(QueueId id)
    {
        if (_quiescing || !_messages.TryGetValue(id, out var m) || m.State.Held) return;
        var local = ImmutableArray.CreateBuilder<int>();
        for (var i = 0; i < m.Envelope.Recipients.Length; i++)
        {
            if (m.State.Recipients[i].IsFinal || m.InFlight.Contains(i)) continue;
            if (IsLocal(m.Envelope.Recipients[i])) local.Add(i);
            // Non-local recipients wait here for the outbound queue.
        }
        if (local.Count == 0) return;
        foreach (var i in local) m.InFlight.Add(i);
        _localDelivery.Tell(new LocalProtocol.DeliverLocal(m.Envelope, local.ToImmutable()));
    }

    private void Apply(QueueProtocol.RecipientResults results)
    {
        if (!_messages.TryGetValue(results.Id, out var m)) return;
        var now = DateTimeOffset.UtcNow;
        var statuses = m.State.Recipients.ToBuilder();
        var deferred = false;
        foreach (var r in results.Results)
        {
            m.InFlight.Remove(r.Index);
            var outcome = r.Outcome;
            if (outcome is DeliveryOutcome.TempFailure && _schedule.HasExpired(m.Envelope.ReceivedAt, now))
                outcome = new DeliveryOutcome.PermFailure("5.4.7", "delivery time expired: " + outcome.Diagnostic, outcome.RemoteMta);
            var state = outcome switch
            {
                DeliveryOutcome.Delivered => RecipientState.Delivered,
                DeliveryOutcome.PermFailure => RecipientState.Failed,
                _ => RecipientState.Pending,
            };
            deferred |= state == RecipientState.Pending;
            statuses[r.Index] = new RecipientStatus(state, outcome.Status, outcome.Diagnostic, outcome.RemoteMta, now);
            LogResult(m, r.Index, outcome, now);
        }

        var attempts = m.State.Attempts + (deferred ? 1 : 0);
        var next = deferred ? results.NextAttemptAt ?? now + _schedule.DelayAfter(attempts) : m.State.NextAttemptAt;
        m.State = m.State with { Recipients = statuses.MoveToImmutable(), Attempts = attempts, NextAttemptAt = next };

        if (m.State.IsComplete && m.InFlight.Count == 0)
        {
            Finish(m);
        }
        else
        {
            Persist(m.State);
            if (deferred && results.NextAttemptAt is null)
                Timers.StartSingleTimer(("retry-local", m.Envelope.Id), new RetryLocal(m.Envelope.Id), next!.Value - now);
        }
        if (_quiescing && InFlight() == 0) ReleaseQuiesce();
    }

    private void Finish(Tracked m)
    {
        _messages.Remove(m.Envelope.Id);
        var id = m.Envelope.Id;
        _spool.CompleteAsync(id).ContinueWith(t =>
        {
            if (t.IsFaulted) _log.LogError(t.Exception, "{QueueId}: could not record completion; it will be looked at again after restart", id);
        }, TaskContinuationOptions.ExecuteSynchronously);
        _log.LogInformation("{QueueId}: removed", id);
    }

    private void Persist(MessageState state)
    {
        _spool.UpdateAsync(state).ContinueWith(t =>
        {
            if (t.IsFaulted) _log.LogError(t.Exception, "{QueueId}: could not record delivery progress", state.Id);
        }, TaskContinuationOptions.ExecuteSynchronously);
    }

    private void LogResult(Tracked m, int index, DeliveryOutcome outcome, DateTimeOffset now)
    {
        var status = outcome switch
        {
            DeliveryOutcome.Delivered => "sent",
            DeliveryOutcome.PermFailure => "bounced",
            _ => "deferred",
        };
        var delay = (now - m.Envelope.ReceivedAt).TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture);
        _log.LogInformation("{QueueId}: to=<{Recipient}>, relay={Relay}, delay={Delay}, dsn={Dsn}, status={Status} ({Diagnostic})",
            m.Envelope.Id, m.Envelope.Recipients[index], outcome.RemoteMta ?? "local", delay, outcome.Status, status, outcome.Diagnostic);
    }

    private int InFlight() => _messages.Values.Sum(m => m.InFlight.Count);

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
        public HashSet<int> InFlight { get; } = new();
    }

    private sealed record RetryLocal(QueueId Id);

    private sealed record QuiesceTimeout
    {
        public static readonly QuiesceTimeout Instance = new();
    }
}
