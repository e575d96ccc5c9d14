using System.Text;
using System.Text.Unicode;
using RelayMta.Protocol.Mail;
using RelayMta.Protocol.Smtp;

namespace RelayMta.Protocol.Fuzzing;

/// <summary>
/// Target "command": the whole input is one command line (what LineReader hands the session, CRLF
/// removed, though here any byte may occur). ParseVerb runs on it; ParseMailFrom, ParseRcptTo and
/// TryParseHelo run on the argument ParseVerb returns and on the whole line (so the fuzzer reaches
/// the path grammar without having to find a verb first); SessionRules answers the verb in every state.
/// </summary>
internal static class CommandTarget
{
    private static readonly (byte[] Name, SmtpVerb Verb)[] Verbs =
    [
        ("HELO"u8.ToArray(), SmtpVerb.Helo), ("EHLO"u8.ToArray(), SmtpVerb.Ehlo), ("MAIL"u8.ToArray(), SmtpVerb.Mail),
        ("RCPT"u8.ToArray(), SmtpVerb.Rcpt), ("DATA"u8.ToArray(), SmtpVerb.Data), ("RSET"u8.ToArray(), SmtpVerb.Rset),
        ("NOOP"u8.ToArray(), SmtpVerb.Noop), ("QUIT"u8.ToArray(), SmtpVerb.Quit), ("VRFY"u8.ToArray(), SmtpVerb.Vrfy),
        ("EXPN"u8.ToArray(), SmtpVerb.Expn), ("HELP"u8.ToArray(), SmtpVerb.Help), ("AUTH"u8.ToArray(), SmtpVerb.Auth),
        ("BDAT"u8.ToArray(), SmtpVerb.Bdat), ("STARTTLS"u8.ToArray(), SmtpVerb.StartTls),
    ];

    /// <summary>Bytes put around the line to show that no parser reads past its span.</summary>
    private static readonly byte[] Guards = [0x00, (byte)' ', (byte)'>', (byte)'"', (byte)'\\', 0xff];

    public static void Run(ReadOnlySpan<byte> data)
    {
        var line = data.ToArray(); // exactly the line's size: nothing beyond it to read
        var verb = CommandParser.ParseVerb(line, out var argument);
        CheckVerb(line, verb, argument);
        foreach (var state in Enum.GetValues<SessionState>())
        {
            var refusal = SessionRules.Check(state, verb);
            if (refusal is not null) CheckRefusal(refusal, $"{verb} in state {state}");
        }

        var expected = Describe(line);
        foreach (var guard in Guards)
        {
            var padded = new byte[line.Length + 16];
            padded.AsSpan().Fill(guard);
            line.CopyTo(padded, 8);
            Invariant.Same(expected, Describe(padded.AsSpan(8, line.Length)), $"the same line inside bytes 0x{guard:x2}");
        }

        CheckArgument(argument);
        CheckArgument(line);
    }

    /// <summary>Everything the parsers say about <paramref name="line"/>, positions relative to it.</summary>
    private static string Describe(ReadOnlySpan<byte> line)
    {
        var sb = new StringBuilder();
        var verb = CommandParser.ParseVerb(line, out var argument);
        sb.Append("verb ").Append(verb).Append(' ').Append(Invariant.Where(line, argument, "ParseVerb's argument"));
        DescribeArgument(sb, line, argument, "argument");
        DescribeArgument(sb, line, line, "line");
        return sb.ToString();
    }

    private static void DescribeArgument(StringBuilder sb, ReadOnlySpan<byte> line, ReadOnlySpan<byte> argument, string what)
    {
        var mail = CommandParser.ParseMailFrom(argument, out var from, out var parameters);
        sb.Append("; MAIL(").Append(what).Append(") ").Append(mail?.ToString() ?? "accepted");
        if (mail is null)
        {
            sb.Append(' ').Append(Invariant.Where(line, from.LocalPart, "MAIL local part"))
                .Append(' ').Append(Invariant.Where(line, from.Domain, "MAIL domain"))
                .Append($" null={from.IsNull} 8bit={from.HasNonAscii} size={parameters.Size} body={parameters.Body} utf8={parameters.SmtpUtf8} auth={parameters.HasAuth}");
        }
        var rcpt = CommandParser.ParseRcptTo(argument, out var to);
        sb.Append("; RCPT ").Append(rcpt?.ToString() ?? "accepted");
        if (rcpt is null)
        {
            sb.Append(' ').Append(Invariant.Where(line, to.LocalPart, "RCPT local part"))
                .Append(' ').Append(Invariant.Where(line, to.Domain, "RCPT domain"))
                .Append($" postmaster={to.IsPostmaster} 8bit={to.HasNonAscii}");
        }
        var helo = CommandParser.TryParseHelo(argument, out var domain);
        sb.Append("; HELO ").Append(helo).Append(' ').Append(Invariant.Where(line, domain, "HELO domain"));
    }

    private static void CheckVerb(ReadOnlySpan<byte> line, SmtpVerb verb, ReadOnlySpan<byte> argument)
    {
        Invariant.That(Enum.IsDefined(verb), $"ParseVerb returned {(int)verb}, not an SmtpVerb");
        var expectedVerb = SmtpVerb.Unknown;
        ReadOnlySpan<byte> expectedArgument = default;
        foreach (var (name, v) in Verbs)
        {
            if (line.Length < name.Length || !EqualsIgnoreAsciiCase(line[..name.Length], name)) continue;
            if (line.Length > name.Length && line[name.Length] != (byte)' ') continue;
            expectedVerb = v;
            expectedArgument = line.Length > name.Length ? TrimSpaces(line[(name.Length + 1)..]) : default;
            break;
        }
        if (verb != expectedVerb) Invariant.Fail($"ParseVerb gave {verb}, the grammar says {expectedVerb}");
        if (!argument.SequenceEqual(expectedArgument))
            Invariant.Fail($"ParseVerb's argument is '{Invariant.Show(argument)}', expected '{Invariant.Show(expectedArgument)}'");
        if (verb == SmtpVerb.Unknown) Invariant.That(argument.IsEmpty, "an unknown verb comes with an argument");
    }

    private static void CheckArgument(ReadOnlySpan<byte> argument)
    {
        CheckMail(argument);
        CheckRcpt(argument);
        CheckHelo(argument);
    }

    private static void CheckMail(ReadOnlySpan<byte> argument)
    {
        var reply = CommandParser.ParseMailFrom(argument, out var path, out var p);
        if (reply is not null)
        {
            CheckRefusal(reply, "MAIL");
            return;
        }
        Invariant.That(!Invariant.HasControl(argument), "MAIL accepted an argument with a control byte (NUL, CR, LF, TAB, DEL...)");
        Invariant.That(Utf8.IsValid(argument), "MAIL accepted an argument that is not UTF-8");
        Invariant.That(p.Size >= -1, "MAIL: SIZE below -1");
        Invariant.That(Enum.IsDefined(p.Body), "MAIL: BODY out of range");
        Invariant.That(!path.IsPostmaster, "MAIL: a sender is never the bare Postmaster");
        // Without SMTPUTF8 an 8-bit byte may only sit where the session will refuse it (553 5.6.7).
        if (!p.SmtpUtf8 && Invariant.HasEightBit(argument))
            Invariant.That(path.HasNonAscii, "MAIL accepted 8-bit bytes without SMTPUTF8 and without flagging the path (the session would say 250)");
        if (path.IsNull)
        {
            Invariant.That(path.LocalPart.IsEmpty && path.Domain.IsEmpty && !path.HasNonAscii, "MAIL: the null path has parts");
            return;
        }
        CheckMailbox(path.LocalPart, path.Domain, path.HasNonAscii, Invariant.HasEightBit(argument), "MAIL");
    }

    private static void CheckRcpt(ReadOnlySpan<byte> argument)
    {
        var reply = CommandParser.ParseRcptTo(argument, out var path);
        if (reply is not null)
        {
            CheckRefusal(reply, "RCPT");
            return;
        }
        Invariant.That(!Invariant.HasControl(argument), "RCPT accepted an argument with a control byte (NUL, CR, LF, TAB, DEL...)");
        Invariant.That(Utf8.IsValid(argument), "RCPT accepted an argument that is not UTF-8");
        Invariant.That(!path.IsNull, "RCPT accepted the null path");
        if (Invariant.HasEightBit(argument))
            Invariant.That(path.HasNonAscii, "RCPT accepted 8-bit bytes without flagging the path (the session would accept them without SMTPUTF8)");
        if (path.IsPostmaster)
        {
            Invariant.That(EqualsIgnoreAsciiCase(path.LocalPart, "postmaster"u8) && path.Domain.IsEmpty,
                "RCPT: Postmaster without being \"postmaster\"");
            return;
        }
        CheckMailbox(path.LocalPart, path.Domain, path.HasNonAscii, Invariant.HasEightBit(argument), "RCPT");
    }

    /// <summary>
    /// An accepted mailbox is a mailbox on its own: it parses again, unchanged, from a plain path.
    /// HasNonAscii covers the address and any source route dropped in front of it.
    /// </summary>
    private static void CheckMailbox(ReadOnlySpan<byte> local, ReadOnlySpan<byte> domain, bool nonAscii, bool argumentEightBit, string verb)
    {
        Invariant.That(local.Length is >= 1 and <= CommandParser.MaxLocalPartLength, $"{verb}: local part of {local.Length} bytes");
        Invariant.That(domain.Length is >= 1 and <= CommandParser.MaxDomainLength, $"{verb}: domain of {domain.Length} bytes");
        Invariant.That(!Invariant.HasControl(local) && !Invariant.HasControl(domain), $"{verb}: control byte in an accepted address");
        var eightBit = Invariant.HasEightBit(local) || Invariant.HasEightBit(domain);
        Invariant.That(!eightBit || nonAscii, $"{verb}: 8-bit bytes in the address but HasNonAscii is false");
        Invariant.That(!nonAscii || argumentEightBit, $"{verb}: HasNonAscii for an all-ASCII command");
        if (eightBit) Invariant.That(Utf8.IsValid(local) && Utf8.IsValid(domain), $"{verb}: accepted an address that is not UTF-8");

        var plain = new List<byte>();
        plain.AddRange("TO:<"u8.ToArray());
        plain.AddRange(local.ToArray());
        plain.Add((byte)'@');
        plain.AddRange(domain.ToArray());
        plain.Add((byte)'>');
        var again = CommandParser.ParseRcptTo(plain.ToArray(), out var reparsed);
        if (again is not null)
            Invariant.Fail($"{verb}: accepted <{Invariant.Show(local)}@{Invariant.Show(domain)}> but refuses it as a plain path: {again}");
        Invariant.That(reparsed.LocalPart.SequenceEqual(local) && reparsed.Domain.SequenceEqual(domain) && reparsed.HasNonAscii == eightBit,
            $"{verb}: the plain path parses differently");

        // The relay keys domains by DomainName.Normalize: it must take whatever the parser accepts.
        var normalized = DomainName.Normalize(Encoding.UTF8.GetString(domain));
        Invariant.That(!normalized.Any(char.IsAsciiLetterUpper), $"{verb}: normalised domain '{Invariant.Show(normalized)}' has upper case");
    }

    private static void CheckHelo(ReadOnlySpan<byte> argument)
    {
        var ok = CommandParser.TryParseHelo(argument, out var domain);
        var space = argument.IndexOf((byte)' ');
        var word = space < 0 ? argument : argument[..space];
        var expected = word.Length is >= 1 and <= CommandParser.MaxDomainLength && !word.ContainsAnyInRange((byte)0, (byte)0x20) && !word.Contains((byte)0x7f);
        if (ok != expected) Invariant.Fail($"TryParseHelo said {ok} for the word '{Invariant.Show(word)}'");
        if (ok) Invariant.That(domain.SequenceEqual(word), "TryParseHelo's domain is not the first word");
    }

    /// <summary>A refusal is a permanent reply with an RFC 3463 enhanced code of the same class.</summary>
    internal static void CheckRefusal(SmtpReply reply, string what)
    {
        Invariant.That(reply.Code is >= 500 and <= 599, $"{what} refused with {reply.Code}, not a 5xx");
        Invariant.That(IsEnhancedCode(reply.Enhanced) && reply.Enhanced[0] == '5', $"{what} refused with '{reply}': no 5.x.y enhanced code");
        var wire = Encoding.UTF8.GetString(reply.Utf8.Span);
        Invariant.That(wire.StartsWith($"{reply.Code} {reply.Enhanced} ", StringComparison.Ordinal) && wire.EndsWith("\r\n", StringComparison.Ordinal),
            $"{what}: reply on the wire is '{Invariant.Show(wire)}'");
    }

    internal static bool IsEnhancedCode(string code)
    {
        var parts = code.Split('.');
        return parts.Length == 3 && parts[0] is "2" or "4" or "5"
               && parts[1].Length is >= 1 and <= 3 && parts[1].All(char.IsAsciiDigit)
               && parts[2].Length is >= 1 and <= 3 && parts[2].All(char.IsAsciiDigit);
    }

    private static bool EqualsIgnoreAsciiCase(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        if (a.Length != b.Length) return false;
        for (var i = 0; i < a.Length; i++)
        {
            var x = a[i] is >= (byte)'A' and <= (byte)'Z' ? (byte)(a[i] + 32) : a[i];
            var y = b[i] is >= (byte)'A' and <= (byte)'Z' ? (byte)(b[i] + 32) : b[i];
            if (x != y) return false;
        }
        return true;
    }

    private static ReadOnlySpan<byte> TrimSpaces(ReadOnlySpan<byte> s)
    {
        while (!s.IsEmpty && s[0] == (byte)' ') s = s[1..];
        while (!s.IsEmpty && s[^1] == (byte)' ') s = s[..^1];
        return s;
    }
}
