using System.Buffers.Binary;
using System.Text;
using System.Text.Unicode;

namespace RelayMta.Protocol.Smtp;

/// <summary>
/// Parses command lines (without their CRLF) into a verb and values that point into the line.
/// Nothing here allocates: callers turn the spans they keep into strings themselves.
/// </summary>
public static class CommandParser
{
    // Four ASCII letters read little-endian and lower-cased with | 0x20202020.
    private const uint Helo = 'h' | 'e' << 8 | 'l' << 16 | 'o' << 24;
    private const uint Ehlo = 'e' | 'h' << 8 | 'l' << 16 | 'o' << 24;
    private const uint Mail = 'm' | 'a' << 8 | 'i' << 16 | 'l' << 24;
    private const uint Rcpt = 'r' | 'c' << 8 | 'p' << 16 | 't' << 24;
    private const uint Data = 'd' | 'a' << 8 | 't' << 16 | 'a' << 24;
    private const uint Rset = 'r' | 's' << 8 | 'e' << 16 | 't' << 24;
    private const uint Noop = 'n' | 'o' << 8 | 'o' << 16 | 'p' << 24;
    private const uint Quit = 'q' | 'u' << 8 | 'i' << 16 | 't' << 24;
    private const uint Vrfy = 'v' | 'r' << 8 | 'f' << 16 | 'y' << 24;
    private const uint Expn = 'e' | 'x' << 8 | 'p' << 16 | 'n' << 24;
    private const uint Help = 'h' | 'e' << 8 | 'l' << 16 | 'p' << 24;
    private const uint Auth = 'a' | 'u' << 8 | 't' << 16 | 'h' << 24;
    private const uint Bdat = 'b' | 'd' << 8 | 'a' << 16 | 't' << 24;
    private const uint Star = 's' | 't' << 8 | 'a' << 16 | 'r' << 24;
    private const uint Ttls = 't' | 't' << 8 | 'l' << 16 | 's' << 24;
    private const uint LowerMask = 0x20202020;

    /// <summary>Maximum length of a reverse-path or forward-path including the angle brackets (RFC 5321 4.5.3.1.3).</summary>
    public const int MaxPathLength = 256;

    /// <summary>Maximum length of a local part (RFC 5321 4.5.3.1.1).</summary>
    public const int MaxLocalPartLength = 64;

    /// <summary>Maximum length of a domain (RFC 5321 4.5.3.1.2).</summary>
    public const int MaxDomainLength = 255;

    /// <summary>
    /// Reads the verb of <paramref name="line"/> and returns the argument after it, with the
    /// separating and trailing spaces removed. Verbs are case-insensitive (RFC 5321 2.4).
    /// </summary>
    public static SmtpVerb ParseVerb(ReadOnlySpan<byte> line, out ReadOnlySpan<byte> argument)
    {
        argument = default;
        if (line.Length < 4) return SmtpVerb.Unknown;
        var v = BinaryPrimitives.ReadUInt32LittleEndian(line) | LowerMask;
        int verbLength = 4;
        SmtpVerb verb;
        switch (v)
        {
            case Helo: verb = SmtpVerb.Helo; break;
            case Ehlo: verb = SmtpVerb.Ehlo; break;
            case Mail: verb = SmtpVerb.Mail; break;
            case Rcpt: verb = SmtpVerb.Rcpt; break;
            case Data: verb = SmtpVerb.Data; break;
            case Rset: verb = SmtpVerb.Rset; break;
            case Noop: verb = SmtpVerb.Noop; break;
            case Quit: verb = SmtpVerb.Quit; break;
            case Vrfy: verb = SmtpVerb.Vrfy; break;
            case Expn: verb = SmtpVerb.Expn; break;
            case Help: verb = SmtpVerb.Help; break;
            case Auth: verb = SmtpVerb.Auth; break;
            case Bdat: verb = SmtpVerb.Bdat; break;
            case Star when line.Length >= 8 && (BinaryPrimitives.ReadUInt32LittleEndian(line[4..]) | LowerMask) == Ttls:
                verb = SmtpVerb.StartTls;
                verbLength = 8;
                break;
            default: return SmtpVerb.Unknown;
        }
        if (line.Length == verbLength) return verb;
        if (line[verbLength] != (byte)' ') return SmtpVerb.Unknown;
        argument = Trim(line[(verbLength + 1)..]);
        return verb;
    }

    /// <summary>
    /// Parses the argument of MAIL (<c>FROM:&lt;path&gt; [params]</c>). Tolerates spaces after the
    /// colon, which common clients send. Returns null on success or the reply to send.
    /// </summary>
    public static SmtpReply? ParseMailFrom(ReadOnlySpan<byte> argument, out MailPath path, out MailParameters parameters)
    {
        parameters = default;
        path = default;
        if (!TryStripPrefix(argument, "from:"u8, out var rest)) return Replies.SyntaxError;
        var error = ParsePath(rest, isSender: true, out path, out var paramText);
        if (error is not null) return error;
        return ParseMailParameters(paramText, ref parameters);
    }

    /// <summary>Parses the argument of RCPT (<c>TO:&lt;path&gt; [params]</c>). Returns null on success.</summary>
    public static SmtpReply? ParseRcptTo(ReadOnlySpan<byte> argument, out MailPath path)
    {
        path = default;
        if (!TryStripPrefix(argument, "to:"u8, out var rest)) return Replies.SyntaxError;
        var error = ParsePath(rest, isSender: false, out path, out var paramText);
        if (error is not null) return error;
        // We do not advertise DSN (RFC 3461), so NOTIFY/ORCPT and every other RCPT parameter is unknown.
        return paramText.IsEmpty ? null : Replies.ParameterNotImplemented;
    }

    /// <summary>
    /// Checks a HELO/EHLO argument: a domain or an address literal, printable, one word. Returns
    /// the domain span (what follows it is ignored, as RFC 5321 4.1.1.1 allows no more).
    /// </summary>
    public static bool TryParseHelo(ReadOnlySpan<byte> argument, out ReadOnlySpan<byte> domain)
    {
        domain = default;
        if (argument.IsEmpty) return false;
        var end = argument.IndexOf((byte)' ');
        var word = end < 0 ? argument : argument[..end];
        // An argument that starts with a space has an empty first word: no domain.
        if (word.IsEmpty || word.Length > MaxDomainLength) return false;
        foreach (var b in word)
            if (b <= 0x20 || b == 0x7f) return false;
        domain = word;
        return true;
    }

    private static bool TryStripPrefix(ReadOnlySpan<byte> argument, ReadOnlySpan<byte> lowerPrefix, out ReadOnlySpan<byte> rest)
    {
        rest = default;
        if (argument.Length < lowerPrefix.Length) return false;
        for (var i = 0; i < lowerPrefix.Length; i++)
        {
            var b = argument[i];
            if (b is >= (byte)'A' and <= (byte)'Z') b |= 0x20;
            if (b != lowerPrefix[i]) return false;
        }
        rest = argument[lowerPrefix.Length..];
        // "MAIL FROM: <a@b>": RFC 5321 has no space here, but many clients send one.
        while (!rest.IsEmpty && rest[0] == (byte)' ') rest = rest[1..];
        return true;
    }

    private static SmtpReply? ParsePath(ReadOnlySpan<byte> text, bool isSender, out MailPath path, out ReadOnlySpan<byte> parameters)
    {
        path = default;
        parameters = default;
        var badSyntax = isSender ? Replies.BadSenderSyntax : Replies.BadRecipientSyntax;
        if (text.IsEmpty || text[0] != (byte)'<') return badSyntax;
        var close = FindClosingBracket(text);
        if (close < 0) return badSyntax;
        if (close + 1 > MaxPathLength) return badSyntax;
        var inner = text[1..close];
        var after = text[(close + 1)..];
        if (!after.IsEmpty)
        {
            if (after[0] != (byte)' ') return badSyntax;
            parameters = Trim(after);
        }

        if (inner.IsEmpty)
        {
            if (!isSender) return badSyntax;
            path = new MailPath(default, default, isNull: true, isPostmaster: false, hasNonAscii: false);
            return null;
        }

        // RFC 5321 4.1.2 / C: a source route ("@a,@b:") must be accepted and ignored. Its U-labels
        // still count as 8-bit bytes in the command: they need SMTPUTF8 like the mailbox's own.
        var nonAscii = false;
        if (inner[0] == (byte)'@')
        {
            var colon = inner.IndexOf((byte)':');
            if (colon < 0) return badSyntax;
            if (!IsValidSourceRoute(inner[..colon], ref nonAscii)) return badSyntax;
            inner = inner[(colon + 1)..];
            if (inner.IsEmpty) return badSyntax;
        }

        var at = LastAtOutsideQuotes(inner);
        if (at < 0)
        {
            // RFC 5321 4.5.1: "Postmaster" without a domain must be accepted as a recipient.
            if (!isSender && Ascii.EqualsIgnoreCase(inner, "postmaster"u8))
            {
                path = new MailPath(inner, default, isNull: false, isPostmaster: true, hasNonAscii: nonAscii);
                return null;
            }
            return badSyntax;
        }
        var local = inner[..at];
        var domain = inner[(at + 1)..];
        if (!IsValidLocalPart(local, ref nonAscii)) return badSyntax;
        if (!IsValidDomainOrLiteral(domain, ref nonAscii)) return badSyntax;
        path = new MailPath(local, domain, isNull: false, isPostmaster: false, hasNonAscii: nonAscii);
        return null;
    }

    private static int FindClosingBracket(ReadOnlySpan<byte> text)
    {
        var inQuote = false;
        for (var i = 1; i < text.Length; i++)
        {
            var b = text[i];
            if (inQuote)
            {
                if (b == (byte)'\\') i++;
                else if (b == (byte)'"') inQuote = false;
            }
            else if (b == (byte)'"') inQuote = true;
            else if (b == (byte)'>') return i;
            else if (b == (byte)'<') return -1;
        }
        return -1;
    }

    private static int LastAtOutsideQuotes(ReadOnlySpan<byte> inner)
    {
        var inQuote = false;
        var at = -1;
        for (var i = 0; i < inner.Length; i++)
        {
            var b = inner[i];
            if (inQuote)
            {
                if (b == (byte)'\\') i++;
                else if (b == (byte)'"') inQuote = false;
            }
            else if (b == (byte)'"') inQuote = true;
            else if (b == (byte)'@') at = i;
        }
        return inQuote ? -1 : at;
    }

    private static bool IsValidSourceRoute(ReadOnlySpan<byte> route, ref bool nonAscii)
    {
        // A-d-l = At-domain *( "," At-domain ); At-domain = "@" Domain
        while (!route.IsEmpty)
        {
            if (route[0] != (byte)'@') return false;
            var comma = route.IndexOf((byte)',');
            var domain = comma < 0 ? route[1..] : route[1..comma];
            if (!IsValidDomain(domain, ref nonAscii)) return false;
            route = comma < 0 ? default : route[(comma + 1)..];
            if (comma >= 0 && route.IsEmpty) return false;
        }
        return true;
    }

    /// <summary>Local-part = Dot-string / Quoted-string (RFC 5321 4.1.2), UTF-8 allowed per RFC 6531.</summary>
    internal static bool IsValidLocalPart(ReadOnlySpan<byte> local, ref bool nonAscii)
    {
        if (local.IsEmpty || local.Length > MaxLocalPartLength) return false;
        if (local[0] == (byte)'"')
        {
            if (local.Length < 2 || local[^1] != (byte)'"') return false;
            var q = local[1..^1];
            for (var i = 0; i < q.Length; i++)
            {
                var b = q[i];
                if (b == (byte)'\\')
                {
                    // quoted-pairSMTP = %d92 %d32-126
                    if (++i >= q.Length || q[i] < 32 || q[i] > 126) return false;
                }
                else if (b == (byte)'"') return false;
                else if (b >= 0x80) nonAscii = true;
                else if (b < 32 || b == 127) return false;
            }
            return !nonAscii || Utf8.IsValid(q);
        }

        var atomLength = 0;
        foreach (var b in local)
        {
            if (b == (byte)'.')
            {
                if (atomLength == 0) return false;
                atomLength = 0;
                continue;
            }
            if (b >= 0x80) nonAscii = true;
            else if (!IsAtext(b)) return false;
            atomLength++;
        }
        if (atomLength == 0) return false;
        return !nonAscii || Utf8.IsValid(local);
    }

    private static bool IsValidDomainOrLiteral(ReadOnlySpan<byte> domain, ref bool nonAscii)
    {
        if (domain.IsEmpty || domain.Length > MaxDomainLength) return false;
        if (domain[0] == (byte)'[') return IsValidAddressLiteral(domain);
        return IsValidDomain(domain, ref nonAscii);
    }

    /// <summary>
    /// Domain = sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str], or a U-label
    /// (UTF-8) when SMTPUTF8 is in use (RFC 6531 3.3).
    /// </summary>
    internal static bool IsValidDomain(ReadOnlySpan<byte> domain, ref bool nonAscii)
    {
        if (domain.IsEmpty || domain.Length > MaxDomainLength) return false;
        var labelLength = 0;
        byte previous = (byte)'.';
        foreach (var b in domain)
        {
            if (b == (byte)'.')
            {
                if (labelLength == 0 || previous == (byte)'-') return false;
                labelLength = 0;
                previous = b;
                continue;
            }
            if (b >= 0x80) nonAscii = true;
            else if (b == (byte)'-')
            {
                if (labelLength == 0) return false;
            }
            else if (!IsLetDig(b)) return false;
            if (++labelLength > 63) return false;
            previous = b;
        }
        if (labelLength == 0 || previous == (byte)'-') return false;
        return !nonAscii || Utf8.IsValid(domain);
    }

    private static bool IsValidAddressLiteral(ReadOnlySpan<byte> literal)
    {
        if (literal.Length < 3 || literal[^1] != (byte)']') return false;
        var inner = literal[1..^1];
        if (inner.Length > 6 && Ascii.EqualsIgnoreCase(inner[..5], "ipv6:"u8))
        {
            // No zone ids ("%eth0"): they mean nothing to another host.
            return inner.IndexOf((byte)'%') < 0 && System.Net.IPAddress.TryParse(inner[5..], out var v6)
                   && v6.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6;
        }
        // IPv4-address-literal = Snum 3("." Snum); IPAddress.TryParse also takes shorter forms, so
        // check the dotted-quad shape first.
        var dots = 0;
        var digits = 0;
        for (var i = 0; i < inner.Length; i++)
        {
            var b = inner[i];
            if (b == (byte)'.')
            {
                dots++;
                digits = 0;
            }
            else if (b is < (byte)'0' or > (byte)'9' || ++digits > 3) return false;
            // Snum is decimal: a leading zero ("010") would be read as octal by IPAddress.
            else if (digits == 1 && b == (byte)'0' && i + 1 < inner.Length && inner[i + 1] != (byte)'.') return false;
        }
        return dots == 3 && System.Net.IPAddress.TryParse(inner, out var v4)
                         && v4.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork;
    }

    private static SmtpReply? ParseMailParameters(ReadOnlySpan<byte> text, ref MailParameters p)
    {
        p.Size = -1;
        var eightBitValue = false;
        while (!text.IsEmpty)
        {
            var space = text.IndexOf((byte)' ');
            var item = space < 0 ? text : text[..space];
            text = space < 0 ? default : Trim(text[(space + 1)..]);
            var eq = item.IndexOf((byte)'=');
            var keyword = eq < 0 ? item : item[..eq];
            var value = eq < 0 ? default : item[(eq + 1)..];
            if (!IsValidKeyword(keyword) || (eq >= 0 && !IsValidParameterValue(value))) return Replies.SyntaxError;
            if (value.IndexOfAnyInRange((byte)0x80, (byte)0xff) >= 0)
            {
                // RFC 6531 3.3: UTF-8 in a value only under SMTPUTF8 (checked once all are read), and valid UTF-8.
                if (!Utf8.IsValid(value)) return Replies.SyntaxError;
                eightBitValue = true;
            }

            if (Ascii.EqualsIgnoreCase(keyword, "SIZE"u8))
            {
                // RFC 1870: size-value = 1*20DIGIT
                if (p.Size >= 0 || value.IsEmpty || value.Length > 20 || !TryParseDigits(value, out var size)) return Replies.SyntaxError;
                p.Size = size;
            }
            else if (Ascii.EqualsIgnoreCase(keyword, "BODY"u8))
            {
                if (p.Body != BodyType.NotSpecified || value.IsEmpty) return Replies.SyntaxError;
                if (Ascii.EqualsIgnoreCase(value, "7BIT"u8)) p.Body = BodyType.SevenBit;
                else if (Ascii.EqualsIgnoreCase(value, "8BITMIME"u8)) p.Body = BodyType.EightBitMime;
                else return Replies.ParameterNotImplemented; // BINARYMIME needs CHUNKING, which we do not offer
            }
            else if (Ascii.EqualsIgnoreCase(keyword, "SMTPUTF8"u8))
            {
                if (eq >= 0 || p.SmtpUtf8) return Replies.SyntaxError;
                p.SmtpUtf8 = true;
            }
            else if (Ascii.EqualsIgnoreCase(keyword, "AUTH"u8))
            {
                // RFC 4954 5: AUTH=<mailbox> or AUTH=<>; kept for the record only.
                if (value.IsEmpty || p.HasAuth) return Replies.SyntaxError;
                p.HasAuth = true;
            }
            else
            {
                return Replies.ParameterNotImplemented;
            }
        }
        // 8-bit bytes in a command without SMTPUTF8 get a 5xx (the path's own are refused by the session: 553 5.6.7).
        return eightBitValue && !p.SmtpUtf8 ? Replies.SyntaxError : null;
    }

    private static bool TryParseDigits(ReadOnlySpan<byte> value, out long result)
    {
        result = 0;
        foreach (var b in value)
        {
            if (b is < (byte)'0' or > (byte)'9') return false;
            if (result > (long.MaxValue - 9) / 10) { result = long.MaxValue; continue; } // saturate; over any limit anyway
            result = result * 10 + (b - '0');
        }
        return true;
    }

    // esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
    private static bool IsValidKeyword(ReadOnlySpan<byte> keyword)
    {
        if (keyword.IsEmpty || keyword[0] == (byte)'-') return false;
        foreach (var b in keyword)
            if (!IsLetDig(b) && b != (byte)'-') return false;
        return true;
    }

    // esmtp-value = 1*(%d33-60 / %d62-126), plus UTF-8 under SMTPUTF8 (RFC 6531 3.3)
    private static bool IsValidParameterValue(ReadOnlySpan<byte> value)
    {
        if (value.IsEmpty) return false;
        foreach (var b in value)
            if (b < 33 || b == (byte)'=' || b == 127) return false;
        return true;
    }

    private static bool IsLetDig(byte b) => (uint)((b | 0x20) - 'a') <= 'z' - 'a' || (uint)(b - '0') <= 9;

    // atext (RFC 5322 3.2.3)
    private static bool IsAtext(byte b) =>
        IsLetDig(b) || b is (byte)'!' or (byte)'#' or (byte)'$' or (byte)'%' or (byte)'&' or (byte)'\'' or (byte)'*'
            or (byte)'+' or (byte)'-' or (byte)'/' or (byte)'=' or (byte)'?' or (byte)'^' or (byte)'_' or (byte)'`'
            or (byte)'{' or (byte)'|' or (byte)'}' or (byte)'~';

    private static ReadOnlySpan<byte> Trim(ReadOnlySpan<byte> s)
    {
        var start = 0;
        while (start < s.Length && s[start] == (byte)' ') start++;
        var end = s.Length;
        while (end > start && s[end - 1] == (byte)' ') end--;
        return s[start..end];
    }
}
