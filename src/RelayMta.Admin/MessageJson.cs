using RelayMta.Engine.Queue;
using RelayMta.Engine.Spool;

namespace RelayMta.Admin;

/// <summary>
/// <see cref="AdminProtocol.MessageDetail"/> as the API shows it: the spool's envelope becomes a
/// plain object, the rest is the protocol's records as they are. Never the body.
/// </summary>
internal sealed record MessageJson(
    AdminProtocol.MessageSummary Summary,
    EnvelopeJson Envelope,
    IReadOnlyList<AdminProtocol.RecipientDetail> RecipientStatus,
    IReadOnlyList<AdminProtocol.AttemptRecord> Attempts,
    string Headers)
{
    public static MessageJson From(AdminProtocol.MessageDetail d) =>
        new(d.Summary, EnvelopeJson.From(d.Envelope), d.RecipientStatus, d.Attempts, d.Headers);
}

/// <summary>A message's envelope: who sent it to whom, from where, how, and how big.</summary>
internal sealed record EnvelopeJson(
    string Id,
    DateTimeOffset Received,
    string Sender,
    IReadOnlyList<string> Recipients,
    string Client,
    string Helo,
    string Protocol,
    string? AuthUser,
    IReadOnlyList<MessageFlags> Flags,
    long Size)
{
    public static EnvelopeJson From(MailEnvelope e) =>
        new(e.Id.Value, e.ReceivedAt, e.Sender, e.Recipients, e.ClientAddress, e.HeloName, e.Protocol, e.AuthUser,
            Enum.GetValues<MessageFlags>().Where(f => f != MessageFlags.None && e.Flags.HasFlag(f)).ToList(), e.BodyLength);
}
