using System.Collections.Immutable;
using RelayMta.Engine.Spool;

namespace RelayMta.Engine.Outbound;

/// <summary>One message's recipients for one destination, as the destination actor holds it.</summary>
/// <param name="Attempts">Delivery attempts that ended in a deferral so far (drives the retry interval).</param>
/// <param name="NotBefore">Do not try before this time.</param>
public sealed record DeliveryJob(MailEnvelope Envelope, ImmutableArray<int> Recipients, int Attempts, DateTimeOffset NotBefore)
{
    /// <summary>The message's queue id.</summary>
    public QueueId Id => Envelope.Id;
}

/// <summary>Messages of the outbound queue's conversations.</summary>
public static class OutboundProtocol
{
    /// <summary>
    /// Queue manager → outbound: deliver these recipients (all for <paramref name="Destination"/>).
    /// The destination owns them until each is final, reporting every attempt's results.
    /// </summary>
    public sealed record Deliver(DeliveryJob Job, string Destination);

    /// <summary>Destination → outbound: may I open one more connection? Answered by <see cref="SlotGranted"/>.</summary>
    internal sealed record RequestSlot;

    /// <summary>Outbound → destination: one connection slot is yours.</summary>
    internal sealed record SlotGranted;

    /// <summary>Destination → outbound: a connection closed, its slot is free.</summary>
    internal sealed record ReleaseSlot;

    /// <summary>Destination → agent: deliver this job over your connection (opening one if needed).</summary>
    internal sealed record Work(DeliveryJob Job);

    /// <summary>Agent → destination: the job is done (or deferred, or failed), per recipient.</summary>
    internal sealed record WorkDone(DeliveryJob Job, ImmutableArray<Queue.RecipientResult> Results, bool ConnectionFailed, string? Error)
    {
        /// <summary>"host[ip]:port" of the session used, when one was open.</summary>
        public string? RemoteMta { get; init; }

        /// <summary>The session's TLS, when any.</summary>
        public string? Tls { get; init; }

        /// <summary>The circuit breaker refused to try: nothing was attempted, nothing is reported.</summary>
        public bool NotAttempted { get; init; }
    }

    /// <summary>Agent → destination: I am connected and idle; give me work or let me time out.</summary>
    internal sealed record AgentIdle;

    /// <summary>Agent → destination, from PreRestart: I crashed holding this job; it was not attempted to the end.</summary>
    internal sealed record AgentCrashed(DeliveryJob Job, Exception Cause);

    /// <summary>Queue manager → destinations: try these jobs now (one message, or every one when <paramref name="Id"/> is null).</summary>
    public sealed record RetryNow(QueueId? Id);

    /// <summary>Queue manager → destinations: drop what you hold of this message (held or deleted); an attempt in flight still reports.</summary>
    public sealed record Withdraw(QueueId Id);

    /// <summary>Queue manager → a destination: stop or restart starting deliveries. Answered by <see cref="Queue.AdminProtocol.ActionResult"/>.</summary>
    public sealed record SetSuspended(string Destination, bool Suspended);

    /// <summary>Shutdown: start no new transactions; reply <see cref="Akka.Done"/> once none is in flight.</summary>
    public sealed record Quiesce;

    /// <summary>Asks for the state of every destination. Replies <see cref="OutboundStatus"/>.</summary>
    public sealed record GetStatus
    {
        /// <summary>The one instance.</summary>
        public static readonly GetStatus Instance = new();
    }

    /// <summary>Asks a destination for its state. Replies <see cref="DestinationStatus"/>.</summary>
    internal sealed record GetDestinationStatus
    {
        public static readonly GetDestinationStatus Instance = new();
    }

    /// <summary>One destination's state.</summary>
    public sealed record DestinationStatus(string Destination, int Messages, int Recipients, int Connections,
        DateTimeOffset? OldestReceived, DateTimeOffset? NextAttempt, string? LastError, bool CircuitOpen, bool Suspended = false);

    /// <summary>Reply to <see cref="GetStatus"/>.</summary>
    public sealed record OutboundStatus(IReadOnlyList<DestinationStatus> Destinations, int ConnectionsInUse);
}
