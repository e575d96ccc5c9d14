using RelayMta.Engine.Spool;

namespace RelayMta.Engine.Queue;

/// <summary>
/// What operators can ask of and do to the queue. Every request goes to the queue manager, which
/// owns the messages (and forwards destination matters to the outbound queue), so no action ever
/// touches the spool behind the actors' backs. Each request is answered with the record named.
/// </summary>
public static class AdminProtocol
{
    /// <summary>Per destination: what is queued and how it goes. Answered by <see cref="Summary"/>.</summary>
    public sealed record GetSummary
    {
        /// <summary>The one instance.</summary>
        public static readonly GetSummary Instance = new();
    }

    /// <summary>The queue by destination (local delivery shows as "local").</summary>
    public sealed record Summary(int Messages, int Recipients, DateTimeOffset? Oldest, IReadOnlyList<DestinationSummary> Destinations);

    /// <summary>One destination's queue.</summary>
    public sealed record DestinationSummary(
        string Destination,
        int Messages,
        int Recipients,
        DateTimeOffset? Oldest,
        string? LastError,
        DateTimeOffset? NextAttempt,
        int Connections,
        bool Suspended,
        bool CircuitOpen);

    /// <summary>Filters for <see cref="ListMessages"/>; null means any.</summary>
    /// <param name="State">"active", "deferred" or "held".</param>
    public sealed record MessageFilter(
        string? Destination = null,
        string? Sender = null,
        string? Recipient = null,
        string? State = null,
        TimeSpan? MinAge = null,
        TimeSpan? MaxAge = null);

    /// <summary>A page of messages, oldest first. Answered by <see cref="MessageList"/>.</summary>
    public sealed record ListMessages(MessageFilter Filter, int Page = 1, int PageSize = 50);

    /// <summary>One page of messages and how many match in all.</summary>
    public sealed record MessageList(int Total, int Page, int PageSize, IReadOnlyList<MessageSummary> Items);

    /// <summary>A queued message in brief.</summary>
    public sealed record MessageSummary(
        string Id,
        string Sender,
        int Recipients,
        int Pending,
        DateTimeOffset Received,
        long Size,
        string State,
        DateTimeOffset? NextAttempt,
        int Attempts,
        IReadOnlyList<string> Destinations,
        string? LastError);

    /// <summary>One message in full. Answered by <see cref="MessageDetail"/> or <see cref="NotFound"/>.</summary>
    public sealed record GetMessage(QueueId Id);

    /// <summary>A message: envelope, each recipient's status, the attempts made, and its header section.</summary>
    public sealed record MessageDetail(MessageSummary Summary, MailEnvelope Envelope, IReadOnlyList<RecipientDetail> RecipientStatus,
        IReadOnlyList<AttemptRecord> Attempts, string Headers);

    /// <summary>One recipient's state.</summary>
    public sealed record RecipientDetail(string Address, string State, string Destination, string? Status, string? Diagnostic, string? RemoteMta,
        DateTimeOffset? At);

    /// <summary>One delivery attempt for one recipient, as logged.</summary>
    public sealed record AttemptRecord(DateTimeOffset At, string Recipient, string Relay, string? Tls, string Status, string Result, string Diagnostic);

    /// <summary>The message is not in the queue.</summary>
    public sealed record NotFound(string What);

    /// <summary>
    /// Try again now: one message (<paramref name="Id"/>), every message of one destination, or all
    /// (<paramref name="All"/>). Answered by <see cref="ActionResult"/>.
    /// </summary>
    public sealed record Retry(QueueId? Id = null, string? Destination = null, bool All = false);

    /// <summary>Keep the message, do not try it, until released. Answered by <see cref="ActionResult"/>.</summary>
    public sealed record Hold(QueueId Id);

    /// <summary>Undo <see cref="Hold"/>: the message is tried again now. Answered by <see cref="ActionResult"/>.</summary>
    public sealed record Release(QueueId Id);

    /// <summary>
    /// Remove the message; with <paramref name="Bounce"/>, the sender gets a DSN for every recipient
    /// not yet delivered (5.3.0, deleted by the administrator). Answered by <see cref="ActionResult"/>.
    /// </summary>
    public sealed record Delete(QueueId Id, bool Bounce);

    /// <summary>Stop starting deliveries to a destination (mail waits). Answered by <see cref="ActionResult"/>.</summary>
    public sealed record Suspend(string Destination);

    /// <summary>Undo <see cref="Suspend"/>. Answered by <see cref="ActionResult"/>.</summary>
    public sealed record Resume(string Destination);

    /// <summary>What an action did: found anything, how many messages it touched.</summary>
    public sealed record ActionResult(bool Found, int Affected, string Message);
}
