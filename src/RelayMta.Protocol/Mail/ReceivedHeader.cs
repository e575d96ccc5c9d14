using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace RelayMta.Protocol.Mail;

/// <summary>Builds trace fields: <c>Received:</c> (RFC 5321 4.4) and <c>Return-Path:</c>.</summary>
public static class ReceivedHeader
{
    /// <summary>
    /// The <c>Received:</c> field, folded, CRLF-terminated. <paramref name="with"/> is the protocol
    /// name registered for the WITH clause (ESMTP, SMTP, ESMTPS, ESMTPSA, UTF8SMTP, ...).
    /// </summary>
    public static string Build(string helo, IPAddress client, string hostname, string with, string queueId,
        string? singleRecipient, DateTimeOffset when, string? tlsComment = null, string? authUser = null)
    {
        var sb = new StringBuilder(256);
        sb.Append("Received: from ").Append(Sanitize(helo, asciiOnly: true)).Append(" (").Append(AddressLiteral(client)).Append(')');
        sb.Append("\r\n\tby ").Append(hostname).Append(" (RelayMta)");
        if (tlsComment is not null) sb.Append("\r\n\t(").Append(Sanitize(tlsComment)).Append(')');
        if (authUser is not null) sb.Append("\r\n\t(Authenticated sender: ").Append(Sanitize(authUser)).Append(')');
        sb.Append(" with ").Append(with).Append(" id ").Append(queueId);
        // RFC 5321 7.2: name the recipient only when there is one, so a copy does not reveal the others.
        if (singleRecipient is not null) sb.Append("\r\n\tfor <").Append(Sanitize(singleRecipient)).Append('>');
        sb.Append("; ").Append(FormatDate(when)).Append("\r\n");
        return sb.ToString();
    }

    /// <summary>The <c>Return-Path:</c> field a final delivery adds (RFC 5321 4.4).</summary>
    public static string ReturnPath(string sender) => $"Return-Path: <{Sanitize(sender)}>\r\n";

    /// <summary>An address literal for a TCP-info clause: <c>[192.0.2.1]</c> or <c>[IPv6:2001:db8::1]</c>.</summary>
    public static string AddressLiteral(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        if (address.AddressFamily != AddressFamily.InterNetworkV6) return $"[{address}]";
        // A link-local client comes with a zone ("fe80::1%2"): no RFC 5321 address literal has one,
        // and the interface index means nothing to another host.
        if (address.ScopeId != 0) address = new IPAddress(address.GetAddressBytes());
        return $"[IPv6:{address}]";
    }

    /// <summary>RFC 5322 3.3 date-time: <c>Mon, 30 Nov 2026 02:32:33 +0000</c>.</summary>
    public static string FormatDate(DateTimeOffset when)
    {
        var offset = when.Offset;
        var sign = offset < TimeSpan.Zero ? '-' : '+';
        var abs = offset.Duration();
        return when.ToString("ddd, dd MMM yyyy HH:mm:ss ", CultureInfo.InvariantCulture)
               + sign + abs.Hours.ToString("00", CultureInfo.InvariantCulture) + abs.Minutes.ToString("00", CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Keeps client-supplied words from breaking the field: printable characters only, bounded
    /// length. The HELO name is ASCII-only (RFC 6531 wants A-labels there), so a client cannot put
    /// 8-bit bytes into the header of a message that was not sent with SMTPUTF8.
    /// </summary>
    internal static string Sanitize(string value, bool asciiOnly = false)
    {
        var sb = new StringBuilder(Math.Min(value.Length, 256));
        foreach (var c in value)
        {
            if (sb.Length >= 256) break;
            // Cut before a pair that would not fit whole: half a pair becomes U+FFFD (or worse) on the wire.
            if (sb.Length == 255 && char.IsHighSurrogate(c)) break;
            sb.Append(c < 0x20 || c == 0x7f || c == '(' || c == ')' || (asciiOnly && c > 0x7f) ? '?' : c);
        }
        return sb.ToString();
    }
}
