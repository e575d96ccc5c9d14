using RelayMta.Engine.Hosting;
using RelayMta.Engine.Local;
using RelayMta.Protocol.Mail;

namespace RelayMta.Engine.Queue;

/// <summary>Where a recipient's mail goes: local delivery, or which outbound destination.</summary>
public static class Routing
{
    /// <summary>Destination keys of the smarthost start with this.</summary>
    public const string SmarthostPrefix = "smarthost:";

    /// <summary>Whether the recipient's domain is one of ours.</summary>
    public static bool IsLocal(string address, RelayMtaSettings settings) =>
        settings.Local.Domains.Contains(DomainName.Normalize(MailboxPaths.Split(address).Domain));

    /// <summary>
    /// The destination of a non-local recipient: the smarthost when one is set, otherwise the
    /// recipient's domain (A-labels, lower-case) or address literal.
    /// </summary>
    public static string DestinationOf(string address, RelayMtaSettings settings) =>
        settings.Relay.Smarthost is { } smarthost
            ? SmarthostPrefix + smarthost
            : DomainName.Normalize(MailboxPaths.Split(address).Domain);
}
