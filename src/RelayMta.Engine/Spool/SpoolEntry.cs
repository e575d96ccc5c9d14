using System.Collections.Immutable;

namespace RelayMta.Engine.Spool;

/// <summary>Facts about a message's content that delivery needs.</summary>
[Flags]
public enum MessageFlags
{
    /// <summary>Nothing special: 7-bit ASCII content.</summary>
    None = 0,
    /// <summary>The client declared BODY=8BITMIME.</summary>
    EightBitDeclared = 1,
    /// <summary>The content holds bytes above 127.</summary>
    EightBitContent = 2,
    /// <summary>The client asked for SMTPUTF8.</summary>
    SmtpUtf8 = 4,
    /// <summary>The envelope or the header section holds UTF-8: delivery needs SMTPUTF8 (RFC 6531).</summary>
    NeedsSmtpUtf8 = 8,
    /// <summary>A delivery status notification we made.</summary>
    Bounce = 16,
}

/// <summary>The never-changing part of a queued message, written once with its body.</summary>
public sealed record MailEnvelope(
    QueueId Id,
    DateTimeOffset ReceivedAt,
    string Sender,
    ImmutableArray<string> Recipients,
    string ClientAddress,
    string HeloName,
    string Protocol,
    string? AuthUser,
    MessageFlags Flags,
    long BodyLength)
{
    /// <summary>True for the null reverse-path (bounces); such messages are never bounced.</summary>
    public bool IsNullSender => Sender.Length == 0;
}

/// <summary>Where one recipient stands.</summary>
public enum RecipientState : byte
{
    /// <summary>Not delivered yet (never tried, or deferred).</summary>
    Pending = 0,
    /// <summary>Delivered: final.</summary>
    Delivered = 1,
    /// <summary>Failed permanently (or expired): final; a bounce is due unless the sender is null.</summary>
    Failed = 2,
    /// <summary>Failed, and the sender has been sent a delivery status notification for it.</summary>
    Bounced = 3,
}

/// <summary>
/// One recipient's progress. <paramref name="Status"/> is the RFC 3463 code of the last result and
/// <paramref name="Diagnostic"/> the remote reply or our reason; <paramref name="RemoteMta"/> who said it.
/// </summary>
public sealed record RecipientStatus(RecipientState State, string? Status = null, string? Diagnostic = null,
    string? RemoteMta = null, DateTimeOffset? At = null)
{
    /// <summary>A recipient not tried yet.</summary>
    public static readonly RecipientStatus Fresh = new(RecipientState.Pending);

    /// <summary>Delivered or failed: nothing more to do.</summary>
    public bool IsFinal => State != RecipientState.Pending;
}

/// <summary>The changing part of a queued message: per-recipient results and the retry schedule.</summary>
public sealed record MessageState(
    QueueId Id,
    ImmutableArray<RecipientStatus> Recipients,
    int Attempts,
    DateTimeOffset? NextAttemptAt,
    bool Held)
{
    /// <summary>The state of a message just accepted.</summary>
    public static MessageState New(QueueId id, int recipients) =>
        new(id, Enumerable.Repeat(RecipientStatus.Fresh, recipients).ToImmutableArray(), 0, null, false);

    /// <summary>True when every recipient is delivered or failed.</summary>
    public bool IsComplete => Recipients.All(r => r.IsFinal);
}

/// <summary>A queued message as the queue sees it: envelope plus current state.</summary>
public sealed record SpoolEntry(MailEnvelope Envelope, MessageState State)
{
    /// <summary>The queue id.</summary>
    public QueueId Id => Envelope.Id;
}
