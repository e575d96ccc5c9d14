using System.Text;

namespace RelayMta.Protocol.Fuzzing;

/// <summary>One fuzz target: throws <see cref="FuzzFindingException"/> (or anything else) on a finding.</summary>
internal delegate void FuzzTarget(ReadOnlySpan<byte> input);

/// <summary>A target with the tokens that help a fuzzer (the AFL dictionary) and its seed inputs.</summary>
internal sealed record FuzzTargetInfo(string Name, FuzzTarget Run, string Description, byte[][] Tokens, byte[][] Seeds);

/// <summary>
/// The fuzz targets of the protocol library. The SharpFuzz harness (tests/RelayMta.Fuzz) runs them
/// under AFL; the test suite runs them on generated inputs and replays the findings kept in
/// Fuzz/Regressions. Strings below spell bytes: each char is one byte (Latin-1).
/// </summary>
internal static class FuzzTargets
{
    public static readonly IReadOnlyList<FuzzTargetInfo> All =
    [
        new("command", CommandTarget.Run,
            "ParseVerb, then ParseMailFrom/ParseRcptTo/TryParseHelo on the argument and on the whole line",
            Tokens("HELO ", "EHLO ", "MAIL ", "RCPT ", "DATA", "RSET", "NOOP", "QUIT", "VRFY ", "EXPN ", "HELP", "AUTH ", "BDAT ",
                "STARTTLS", "FROM:", "TO:", "<", ">", "<>", "@", ".", ",", ":", "\"", "\\", " ", "=", "SIZE=", "BODY=",
                "7BIT", "8BITMIME", "BINARYMIME", "SMTPUTF8", "AUTH=<>", "[", "]", "IPv6:", "[127.0.0.1]", "[IPv6:2001:db8::1]",
                "::ffff:", "%", "postmaster", "@a.example,@b.example:", "\"\"", "\\\"", "-", "xn--", "99999999999999999999",
                "\0", "\r", "\n", "\t", "\u007f", "\u00c3\u00a9", "\u00e2\u0082\u00ac", "\u00f0\u009f\u0098\u0080", "\u00ff", "\u00c0\u00af", "\u00ed\u00a0\u0080"),
            Seeds(
                "MAIL FROM:<a@b.example> SIZE=100 BODY=8BITMIME",
                "MAIL FROM:<>",
                "mail from: <\"john doe\"@[192.0.2.1]> AUTH=<> SMTPUTF8",
                "MAIL FROM:<@a.example,@b.example:u@c.example>",
                "RCPT TO:<postmaster>",
                "RCPT TO:<u\u00c3\u00bc@b\u00c3\u00bccher.example>",
                "RCPT TO:<u@[IPv6:2001:db8::1]>",
                "EHLO mx.example",
                "HELO [192.0.2.1]",
                "STARTTLS",
                "NOOP",
                "VRFY postmaster")),
        new("line", LineTarget.Run,
            "LineReader.TryReadLine/TrySkipLine as the session drives them; byte 0 = limit, byte 1 = segmentation seed",
            Tokens("\r\n", "\n", "\r", "\r\r\n", "\n\r", "\r\n\r\n", "\0", "EHLO x\r\n", "QUIT\r\n"),
            [
                Seed([14, 0], "EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"),
                Seed([4, 7], "abcdefgh\r\nx\ny\r\nlonger than eight\nz\r\n"),
                Seed([0, 3], "\r\n\n\r\r\n"),
                Seed([15, 1], new string('a', 1100) + "\r\nQUIT\r\n"),
            ]),
        new("data", DataTarget.Run,
            "DataReader (Feed and Process) against an RFC 5321 model; byte 0 = size limit, byte 1 = segmentation seed",
            Tokens("\r\n.\r\n", "\r\n..", "\r\n.", ".\r\n", "..", "\n.\n", "\r.\r", "\r\n.\n", "\n.\r\n", "\r\n", "\n", "\r", ".", "\u0080", "QUIT\r\n"),
            [
                Seed([14, 0], "Subject: hi\r\n\r\n..dot\r\nline\r\n.\r\nQUIT\r\n"),
                Seed([2, 3], "\n.\n\r.\r\r\n.\n.\r\n"),
                Seed([6, 9], ".\r\n"),
                Seed([10, 5], "a\r\n.\rb\r\n.\r\nMAIL FROM:<x@y>\r\n"),
                Seed([14, 1], "no end\r\n.."),
            ]),
        new("reply", ReplyTarget.Run,
            "ReplyReader as the client's read loop drives it, SmtpResponse and EhloCapabilities; byte 0 = segmentation seed",
            Tokens("250", "250-", "250 ", "220 ", "354 ", "421 ", "550 5.1.1 ", "\r\n", "\n", "PIPELINING", "SIZE ", "SIZE", "8BITMIME",
                "SMTPUTF8", "STARTTLS", "ENHANCEDSTATUSCODES", "CHUNKING", "DSN", "AUTH ", "AUTH=", "PLAIN", "LOGIN", "2.0.0",
                "5.1.1", "4.7.0", "199", "600", "999", "\u00c3\u00a9", "\u00ff"),
            [
                Seed([0], "250-mx.example hello\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250 AUTH PLAIN LOGIN\r\n"),
                Seed([1], "220 ready\r\n"),
                Seed([2], "550 5.1.1 no such user\r\n354\n"),
                Seed([3], "250-a\r\n251 b\r\n"),
            ]),
        new("stuff", StuffTarget.Run,
            "DotStuffer, then DataReader on its output must give back the CRLF-normalised content; bytes 0 and 1 = segmentation seeds",
            Tokens("\r\n.\r\n", "\r\n.", ".\r\n", "..", "\n.\n", "\r.\r", "\r\n", "\n", "\r", "."),
            [
                Seed([0, 0], "Subject: x\r\n\r\n.hidden\r\n..\n.\r\rx"),
                Seed([5, 9], "."),
                Seed([1, 2], "a\r"),
                Seed([3, 4], "line\r\n.\r\n"),
            ]),
        new("header", HeaderTarget.Run,
            "HeaderScanner.Scan against a model, ReceivedHeader.Build/ReturnPath/AddressLiteral/FormatDate on client words",
            Tokens("Received:", "received:", "\r\n", "\n", "\r\n\r\n", "\n\n", ": ", "\u00ff", "(", ")", "\t", "\0", "\r",
                "\u00f0\u009f\u0098\u0080", "\u00c3\u00a9", "\u007f"),
            [
                Seed([0x70, 192, 0, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0xde, 0, 0, 0, 0, 0, 0, 3, 0x48],
                    "Received: a\r\nreceived: b\r\nSubject: c\r\n\r\nbody\u00ffhelo.example\u00fftls\u00ffuser\u00ffrcpt@x.example\u00ffsender@x.example"),
                Seed([0x7d, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x08, 0xde, 0, 0, 0, 0, 0, 0, 0, 0],
                    "Received:\n\nx\u00ffh\u0000e(l)o\r\n\u00ff\u00ff\u00f0\u009f\u0098\u0080"),
                Seed([0x03], ""),
                // Long words (the sanitiser keeps 256 characters) with characters outside the BMP near the cut.
                Seed([0x70, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0xde, 0, 0, 0, 0, 0, 0, 3, 0x48],
                    "x\u00ffh\u00ff" + new string('t', 250) + "\u00f0\u009f\u0098\u0080\u00f0\u009f\u0098\u0080\u00ff"
                    + new string('u', 240) + "\u00c3\u00a9\u00ff" + new string('r', 200) + "\u00ff" + new string('s', 260)),
            ]),
    ];

    public static FuzzTargetInfo? Find(string name) => All.FirstOrDefault(t => t.Name == name);

    /// <summary>Each char of <paramref name="text"/> is one byte (chars above 0xFF are not allowed).</summary>
    public static byte[] Latin1(string text)
    {
        foreach (var c in text)
            if (c > 0xff) throw new ArgumentException("one char per byte", nameof(text));
        return Encoding.Latin1.GetBytes(text);
    }

    private static byte[][] Tokens(params string[] tokens) => tokens.Select(Latin1).ToArray();

    private static byte[][] Seeds(params string[] seeds) => seeds.Select(Latin1).ToArray();

    private static byte[] Seed(byte[] header, string payload) => header.Concat(Latin1(payload)).ToArray();

    /// <summary>The tokens in AFL's dictionary format.</summary>
    public static string AflDictionary(FuzzTargetInfo target)
    {
        var sb = new StringBuilder();
        sb.Append("# ").Append(target.Name).Append(": ").Append(target.Description).Append('\n');
        for (var i = 0; i < target.Tokens.Length; i++)
        {
            sb.Append("t").Append(i).Append("=\"");
            foreach (var b in target.Tokens[i])
            {
                if (b is >= 0x20 and < 0x7f && b != (byte)'"' && b != (byte)'\\') sb.Append((char)b);
                else sb.Append("\\x").Append(b.ToString("x2"));
            }
            sb.Append("\"\n");
        }
        return sb.ToString();
    }

    /// <summary>
    /// A random input made of the target's tokens, random bytes and pieces of its seeds: what the
    /// property tests and the harness's --random mode feed the targets.
    /// </summary>
    public static byte[] RandomInput(FuzzTargetInfo target, Random random, int maxPieces = 24)
    {
        var bytes = new List<byte>();
        var seed = target.Seeds[random.Next(target.Seeds.Length)];
        // Keep the seed's header bytes (limit, segmentation) most of the time, randomise them sometimes.
        var header = target.Name switch { "command" => 0, "reply" => 1, "header" => 27, _ => 2 };
        for (var i = 0; i < header; i++) bytes.Add(i < seed.Length && random.Next(4) != 0 ? seed[i] : (byte)random.Next(256));
        var pieces = random.Next(maxPieces + 1);
        for (var p = 0; p < pieces; p++)
        {
            switch (random.Next(6))
            {
                case 0:
                case 1:
                case 2:
                    bytes.AddRange(target.Tokens[random.Next(target.Tokens.Length)]);
                    break;
                case 3:
                    bytes.Add((byte)random.Next(256));
                    break;
                case 4:
                    var s = target.Seeds[random.Next(target.Seeds.Length)];
                    if (s.Length > header)
                    {
                        var from = header + random.Next(s.Length - header);
                        bytes.AddRange(s.Skip(from).Take(1 + random.Next(16)));
                    }
                    break;
                default:
                    var letter = (byte)"aZ0.-_ "[random.Next(7)];
                    bytes.AddRange(Enumerable.Repeat(letter, 1 + random.Next(random.Next(8) == 0 ? 1200 : 12)));
                    break;
            }
        }
        return bytes.ToArray();
    }
}
