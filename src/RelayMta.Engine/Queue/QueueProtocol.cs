using System.Collections.Immutable;
using RelayMta.Engine.Spool;

namespace RelayMta.Engine.Queue;

/// <summary>How one delivery attempt for one recipient ended (a closed set: RFC 5321 4.2.1 reply classes).</summary>
public abstract record DeliveryOutcome(string Status, string Diagnostic, string? RemoteMta)
{
    /// <summary>Delivered; <see cref="DeliveryOutcome.Diagnostic"/> holds the accepting reply.</summary>
    public sealed record Delivered(string Status, string Diagnostic, string? RemoteMta) : DeliveryOutcome(Status, Diagnostic, RemoteMta);

    /// <summary>Try again later (4xx, connection or DNS trouble).</summary>
    public sealed record TempFailure(string Status, string Diagnostic, string? RemoteMta) : DeliveryOutcome(Status, Diagnostic, RemoteMta);

    /// <summary>Will never work (5xx, no such domain, null MX, expired).</summary>
    public sealed record PermFailure(string Status, string Diagnostic, string? RemoteMta) : DeliveryOutcome(Status, Diagnostic, RemoteMta);
}

/// <summary>One recipient's outcome, by its index in the envelope.</summary>
public sealed record RecipientResult(int Index, DeliveryOutcome Outcome);

/// <summary>Messages of the queue manager's conversation.</summary>
public static class QueueProtocol
{
    /// <summary>A message was committed to the spool: route and deliver it. Sent by sessions.</summary>
    public sealed record Enqueued(SpoolEntry Entry);

    /// <summary>
    /// Results of a delivery attempt. Sent by local delivery and destination actors. A destination
    /// sets <paramref name="NextAttemptAt"/> for the recipients it deferred and keeps them.
    /// </summary>
    public sealed record RecipientResults(QueueId Id, ImmutableArray<RecipientResult> Results, DateTimeOffset? NextAttemptAt = null)
    {
        /// <summary>"host[ip]:port" the attempt talked to, if any (for the log).</summary>
        public string? Relay { get; init; }

        /// <summary>TLS in use on that connection, if any (for the log).</summary>
        public string? Tls { get; init; }
    }

    /// <summary>New settings are in force (a reload): routing of local domains and limits.</summary>
    public sealed record Reload(Hosting.RelayMtaSettings Settings);

    /// <summary>A destination lost its state (it was restarted): hand it its recipients again.</summary>
    public sealed record Redispatch(string Destination);

    /// <summary>Stop starting deliveries and wait for those in flight (shutdown). Replies <see cref="Akka.Done"/>.</summary>
    public sealed record Quiesce(TimeSpan Timeout);

    /// <summary>Asks how many messages are queued. Replies <see cref="QueueStatus"/>.</summary>
    public sealed record GetStatus
    {
        /// <summary>The one instance.</summary>
        public static readonly GetStatus Instance = new();
    }

    /// <summary>Reply to <see cref="GetStatus"/>.</summary>
    public sealed record QueueStatus(int Messages, int PendingRecipients);
}

/// <summary>Messages to the local delivery actor.</summary>
public static class LocalProtocol
{
    /// <summary>Deliver the message to these (local) recipients, by envelope index.</summary>
    public sealed record DeliverLocal(MailEnvelope Envelope, ImmutableArray<int> Recipients);
}
