using System.Buffers;
using System.Text;
using Akka.Actor;
using Microsoft.Extensions.Logging;
using RelayMta.Engine.Outbound;
using RelayMta.Engine.Spool;
using RelayMta.Protocol.Mail;

namespace RelayMta.Engine.Queue;

/// <summary>The queue manager's answers to operators (<see cref="AdminProtocol"/>).</summary>
internal sealed partial class QueueManagerActor
{
    private const string LocalDestination = "local";
    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(4);
    private bool _localSuspended;

    private void ReceiveAdmin()
    {
        Receive<AdminProtocol.GetSummary>(_ => Summary());
        Receive<AdminProtocol.ListMessages>(l => Sender.Tell(List(l)));
        Receive<AdminProtocol.GetMessage>(g => Detail(g.Id));
        Receive<AdminProtocol.Retry>(RetryNow);
        Receive<AdminProtocol.Hold>(h => Sender.Tell(SetHeld(h.Id, true)));
        Receive<AdminProtocol.Release>(r => Sender.Tell(SetHeld(r.Id, false)));
        Receive<AdminProtocol.Delete>(Delete);
        Receive<AdminProtocol.Suspend>(s => Suspend(s.Destination, true));
        Receive<AdminProtocol.Resume>(r => Suspend(r.Destination, false));
    }

    private string DestinationOfRecipient(string address) =>
        Routing.IsLocal(address, _settings) ? LocalDestination : Routing.DestinationOf(address, _settings);

    private IEnumerable<int> Pending(Tracked m) =>
        Enumerable.Range(0, m.Envelope.Recipients.Length).Where(i => !m.State.Recipients[i].IsFinal);

    private static string StateOf(Tracked m) =>
        m.State.Held ? "held" : m.State.Attempts > 0 ? "deferred" : "active";

    private AdminProtocol.MessageSummary SummaryOf(Tracked m)
    {
        var pending = Pending(m).ToList();
        var lastError = pending.Select(i => m.State.Recipients[i].Diagnostic).LastOrDefault(d => d is not null);
        return new AdminProtocol.MessageSummary(m.Envelope.Id.Value, m.Envelope.Sender, m.Envelope.Recipients.Length, pending.Count,
            m.Envelope.ReceivedAt, m.Envelope.BodyLength, StateOf(m), m.State.NextAttemptAt, m.State.Attempts,
            pending.Select(i => DestinationOfRecipient(m.Envelope.Recipients[i])).Distinct().OrderBy(d => d, StringComparer.Ordinal).ToList(),
            lastError);
    }

    /// <summary>What the queue holds per destination, joined with what each destination knows (connections, errors).</summary>
    private void Summary()
    {
        var groups = new Dictionary<string, (HashSet<QueueId> Messages, int Recipients, DateTimeOffset Oldest, string? Error, DateTimeOffset? Next)>(StringComparer.Ordinal);
        foreach (var m in _messages.Values)
        {
            foreach (var i in Pending(m))
            {
                var d = DestinationOfRecipient(m.Envelope.Recipients[i]);
                if (!groups.TryGetValue(d, out var g)) g = (new HashSet<QueueId>(), 0, m.Envelope.ReceivedAt, null, null);
                g.Messages.Add(m.Envelope.Id);
                g.Recipients++;
                if (m.Envelope.ReceivedAt < g.Oldest) g.Oldest = m.Envelope.ReceivedAt;
                g.Error = m.State.Recipients[i].Diagnostic ?? g.Error;
                if (m.State.NextAttemptAt is { } next && (g.Next is null || next < g.Next)) g.Next = next;
                groups[d] = g;
            }
        }
        var messages = _messages.Count;
        var recipients = _messages.Values.Sum(m => Pending(m).Count());
        DateTimeOffset? oldest = _messages.Count == 0 ? null : _messages.Values.Min(m => m.Envelope.ReceivedAt);
        var localSuspended = _localSuspended;
        var outboundStatus = _outbound is null
            ? Task.FromResult(new OutboundProtocol.OutboundStatus([], 0))
            : _outbound.Ask<OutboundProtocol.OutboundStatus>(OutboundProtocol.GetStatus.Instance, AskTimeout);
        outboundStatus.PipeTo(Sender, success: status =>
        {
            var live = status.Destinations.ToDictionary(d => d.Destination, StringComparer.Ordinal);
            var names = groups.Keys.Concat(live.Keys).Distinct(StringComparer.Ordinal).OrderBy(n => n, StringComparer.Ordinal);
            var rows = names.Select(name =>
            {
                groups.TryGetValue(name, out var g);
                live.TryGetValue(name, out var d);
                return new AdminProtocol.DestinationSummary(name, g.Messages?.Count ?? 0, g.Recipients,
                    g.Messages is null ? d?.OldestReceived : g.Oldest,
                    d?.LastError ?? g.Error, d?.NextAttempt ?? g.Next, d?.Connections ?? 0,
                    name == LocalDestination ? localSuspended : d?.Suspended ?? false, d?.CircuitOpen ?? false);
            }).ToList();
            return new AdminProtocol.Summary(messages, recipients, oldest, rows);
        });
    }

    private AdminProtocol.MessageList List(AdminProtocol.ListMessages request)
    {
        var f = request.Filter;
        var now = DateTimeOffset.UtcNow;
        var destination = f.Destination is null ? null : DomainName.Normalize(f.Destination);
        var matching = _messages.Values
            .Where(m => f.State is null || StateOf(m) == f.State)
            .Where(m => f.Sender is null || m.Envelope.Sender.Contains(f.Sender, StringComparison.OrdinalIgnoreCase))
            .Where(m => f.Recipient is null || m.Envelope.Recipients.Any(r => r.Contains(f.Recipient, StringComparison.OrdinalIgnoreCase)))
            .Where(m => destination is null || Pending(m).Any(i => DestinationOfRecipient(m.Envelope.Recipients[i]) == destination))
            .Where(m => f.MinAge is null || now - m.Envelope.ReceivedAt >= f.MinAge)
            .Where(m => f.MaxAge is null || now - m.Envelope.ReceivedAt <= f.MaxAge)
            .OrderBy(m => m.Envelope.ReceivedAt).ThenBy(m => m.Envelope.Id.Value, StringComparer.Ordinal)
            .ToList();
        var page = Math.Max(1, request.Page);
        var size = Math.Clamp(request.PageSize, 1, 1000);
        var items = matching.Skip((page - 1) * size).Take(size).Select(SummaryOf).ToList();
        return new AdminProtocol.MessageList(matching.Count, page, size, items);
    }

    /// <summary>One message in full; its header section is read from the spool off the actor thread.</summary>
    private void Detail(QueueId id)
    {
        if (!_messages.TryGetValue(id, out var m))
        {
            Sender.Tell(new AdminProtocol.NotFound($"message {id}"));
            return;
        }
        var summary = SummaryOf(m);
        var recipients = Enumerable.Range(0, m.Envelope.Recipients.Length).Select(i =>
        {
            var s = m.State.Recipients[i];
            return new AdminProtocol.RecipientDetail(m.Envelope.Recipients[i], s.State.ToString().ToLowerInvariant(),
                DestinationOfRecipient(m.Envelope.Recipients[i]), s.Status, s.Diagnostic, s.RemoteMta, s.At);
        }).ToList();
        var attempts = m.Attempts.ToList();
        var envelope = m.Envelope;
        var spool = _spool;
        Task.Run(() => new AdminProtocol.MessageDetail(summary, envelope, recipients, attempts, ReadHeaders(spool, envelope.Id)))
            .PipeTo(Sender, failure: e => new AdminProtocol.NotFound($"message {id}: {e.Message}"));
    }

    private static string ReadHeaders(Spool.Spool spool, QueueId id)
    {
        using var body = spool.OpenBody(id);
        var length = (int)Math.Min(body.Length, 256 * 1024);
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(length, 1));
        try
        {
            var read = 0;
            while (read < length)
            {
                var n = body.Read(buffer.AsSpan(read, length - read), read);
                if (n <= 0) break;
                read += n;
            }
            var info = HeaderScanner.Scan(buffer.AsSpan(0, read), complete: read == body.Length);
            var end = info.HeaderLength < 0 ? read : info.HeaderLength;
            return Encoding.UTF8.GetString(buffer, 0, end);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Try now: the message's next attempt time becomes now, for local and remote recipients alike.</summary>
    private void RetryNow(AdminProtocol.Retry retry)
    {
        IEnumerable<Tracked> targets;
        string what;
        if (retry.Id is { } id)
        {
            if (!_messages.TryGetValue(id, out var one))
            {
                Sender.Tell(new AdminProtocol.ActionResult(false, 0, $"message {id} is not in the queue"));
                return;
            }
            targets = [one];
            what = $"message {id}";
        }
        else if (retry.Destination is { } named)
        {
            var destination = DomainName.Normalize(named);
            targets = _messages.Values.Where(m => Pending(m).Any(i => DestinationOfRecipient(m.Envelope.Recipients[i]) == destination)).ToList();
            what = $"destination {destination}";
        }
        else
        {
            targets = _messages.Values.ToList();
            what = "all messages";
        }
        var count = 0;
        foreach (var m in targets)
        {
            if (m.State.Held) continue;
            count++;
            m.State = m.State with { NextAttemptAt = DateTimeOffset.UtcNow };
            Persist(m.State);
            Timers.Cancel(("retry-local", m.Envelope.Id));
            _outbound?.Tell(new OutboundProtocol.RetryNow(m.Envelope.Id));
            Dispatch(m.Envelope.Id);
        }
        _log.LogInformation("admin: retry {What}: {Count} messages", what, count);
        Sender.Tell(new AdminProtocol.ActionResult(true, count, count == 1 ? "queued 1 message for retry" : $"queued {count} messages for retry"));
    }

    private AdminProtocol.ActionResult SetHeld(QueueId id, bool held)
    {
        if (!_messages.TryGetValue(id, out var m)) return new AdminProtocol.ActionResult(false, 0, $"message {id} is not in the queue");
        if (m.State.Held == held) return new AdminProtocol.ActionResult(true, 0, $"message {id} is already {(held ? "held" : "released")}");
        m.State = m.State with { Held = held, NextAttemptAt = held ? m.State.NextAttemptAt : DateTimeOffset.UtcNow };
        Persist(m.State);
        if (held)
        {
            // Destinations let go of it; an attempt already under way still reports its result.
            _outbound?.Tell(new OutboundProtocol.Withdraw(id));
            m.Outbound.Clear();
        }
        else
        {
            Dispatch(id);
        }
        _log.LogInformation("admin: {Action} {QueueId}", held ? "hold" : "release", id);
        return new AdminProtocol.ActionResult(true, 1, $"message {id} {(held ? "held" : "released")}");
    }

    /// <summary>
    /// Removes a message. With a bounce, every recipient not yet delivered is failed (5.3.0) and
    /// the usual single DSN goes to the sender before the message goes.
    /// </summary>
    private void Delete(AdminProtocol.Delete delete)
    {
        if (!_messages.TryGetValue(delete.Id, out var m))
        {
            Sender.Tell(new AdminProtocol.ActionResult(false, 0, $"message {delete.Id} is not in the queue"));
            return;
        }
        _outbound?.Tell(new OutboundProtocol.Withdraw(delete.Id));
        m.Outbound.Clear();
        Timers.Cancel(("retry-local", m.Envelope.Id));
        var now = DateTimeOffset.UtcNow;
        var statuses = m.State.Recipients.ToBuilder();
        var failed = 0;
        foreach (var i in Pending(m).ToList())
        {
            statuses[i] = new RecipientStatus(delete.Bounce ? RecipientState.Failed : RecipientState.Bounced, "5.3.0",
                "message deleted by the administrator", null, now);
            failed++;
        }
        m.State = m.State with { Recipients = statuses.MoveToImmutable(), Held = false };
        m.InFlight.Clear();
        _log.LogInformation("admin: delete {QueueId} ({Recipients} recipients not delivered, {Bounce})", delete.Id, failed,
            delete.Bounce && !m.Envelope.IsNullSender ? "sender notified" : "no notice");
        Settle(m); // with a bounce: the DSN first, then removal; without: removal now
        Sender.Tell(new AdminProtocol.ActionResult(true, 1, $"message {delete.Id} deleted" + (delete.Bounce ? " with a bounce to the sender" : "")));
    }

    private void Suspend(string destination, bool suspend)
    {
        destination = DomainName.Normalize(destination);
        if (destination == LocalDestination)
        {
            _localSuspended = suspend;
            if (!suspend) foreach (var id in _messages.Keys.ToList()) Dispatch(id);
            _log.LogInformation("admin: local delivery {State}", suspend ? "suspended" : "resumed");
            Sender.Tell(new AdminProtocol.ActionResult(true, 0, $"local delivery {(suspend ? "suspended" : "resumed")}"));
            return;
        }
        if (_outbound is null)
        {
            Sender.Tell(new AdminProtocol.ActionResult(false, 0, "no outbound queue"));
            return;
        }
        _log.LogInformation("admin: {Action} destination {Destination}", suspend ? "suspend" : "resume", destination);
        _outbound.Forward(new OutboundProtocol.SetSuspended(destination, suspend));
    }

    private void UpdateGauges()
    {
        if (_metrics is null) return;
        _metrics.QueueMessages.Set(_messages.Count);
        _metrics.QueueRecipients.Set(_messages.Values.Sum(m => Pending(m).Count()));
        _metrics.QueueOldestAge.Set(_messages.Count == 0 ? 0 : (DateTimeOffset.UtcNow - _messages.Values.Min(m => m.Envelope.ReceivedAt)).TotalSeconds);
    }
}
