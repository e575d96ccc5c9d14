using System.Buffers;
using System.Text;
using RelayMta.Protocol.Smtp;

namespace RelayMta.Protocol.Fuzzing;

/// <summary>
/// Target "reply": byte 0 seeds the segmentation, the rest is what a remote server sends.
/// ReplyReader is driven as the client's read loop drives it, over every segmentation plan, and
/// compared with a model; every complete reply is checked against the bytes it came from and
/// handed to SmtpResponse and EhloCapabilities.
/// </summary>
internal static class ReplyTarget
{
    public static void Run(ReadOnlySpan<byte> data)
    {
        var seed = Invariant.At(data, 0);
        var payload = Invariant.After(data, 1).ToArray();
        var expected = Model(payload);
        foreach (var (name, chunks) in Chunking.Plans(payload, seed))
        {
            Invariant.Same(expected, OneSequence(chunks), $"{name}, one sequence");
            Invariant.Same(expected, SeparateReads(chunks), $"{name}, separate reads");
        }
    }

    private static string OneSequence(byte[][] chunks)
    {
        var events = new StringBuilder();
        var buffer = Chunking.Sequence(chunks);
        if (!Drain(ref buffer, events)) events.Append("rest:").Append(Invariant.Show(buffer.ToArray()));
        return events.ToString();
    }

    private static string SeparateReads(byte[][] chunks)
    {
        var events = new StringBuilder();
        var pending = Array.Empty<byte>();
        foreach (var chunk in chunks)
        {
            var buffer = Chunking.Sequence([pending, chunk]);
            if (Drain(ref buffer, events)) return events.ToString();
            pending = buffer.ToArray();
        }
        return events.Append("rest:").Append(Invariant.Show(pending)).ToString();
    }

    /// <summary>Reads replies until NeedMore (false) or Invalid (true: the client drops the connection).</summary>
    private static bool Drain(ref ReadOnlySequence<byte> buffer, StringBuilder events)
    {
        while (true)
        {
            var before = buffer;
            var status = ReplyReader.TryRead(ref buffer, out var response);
            switch (status)
            {
                case ReplyStatus.Complete:
                    Invariant.That(response is not null, "Complete without a response");
                    var consumed = before.Slice(0, before.Length - buffer.Length).ToArray();
                    Invariant.That(consumed.Length > 0, "a complete reply consumed nothing (the client would loop)");
                    CheckResponse(response, consumed);
                    events.Append(response.Code).Append('|').Append(string.Join("|", response.Lines.Select(Invariant.Show))).Append('\n');
                    continue;
                case ReplyStatus.NeedMore:
                case ReplyStatus.Invalid:
                    Invariant.That(response is null, $"{status} came with a response");
                    Invariant.That(buffer.Start.Equals(before.Start) && buffer.Length == before.Length, $"{status} consumed bytes");
                    if (status == ReplyStatus.NeedMore)
                    {
                        // Never stall: past the line limit without a line end the reply is refused, not awaited.
                        var lastLf = LastLf(before);
                        Invariant.That(before.Length - lastLf - 1 <= ReplyReader.MaxLineLength, "NeedMore with an unterminated line past the limit");
                        return false;
                    }
                    events.Append("Invalid");
                    return true;
                default:
                    Invariant.Fail($"TryRead returned {(int)status}");
                    break;
            }
        }
    }

    private static long LastLf(in ReadOnlySequence<byte> buffer)
    {
        var bytes = buffer.ToArray();
        return Array.LastIndexOf(bytes, (byte)'\n');
    }

    /// <summary>A complete reply agrees with its bytes: one code on every line, '-' on all lines but the last.</summary>
    private static void CheckResponse(SmtpResponse response, byte[] consumed)
    {
        Invariant.That(response.Code is >= 200 and <= 599, $"reply code {response.Code}");
        Invariant.That(consumed[^1] == (byte)'\n', "a complete reply does not end with its line end");
        var rawLines = Encoding.Latin1.GetString(consumed, 0, consumed.Length - 1).Split('\n');
        Invariant.That(rawLines.Length == response.Lines.Count, $"{rawLines.Length} lines on the wire, {response.Lines.Count} in the response");
        var code = response.Code.ToString(System.Globalization.CultureInfo.InvariantCulture);
        for (var i = 0; i < rawLines.Length; i++)
        {
            var raw = rawLines[i];
            Invariant.That(raw.Length <= ReplyReader.MaxLineLength, "a reply line past the limit was accepted");
            Invariant.That(raw.StartsWith(code, StringComparison.Ordinal), $"mixed codes accepted: line {i} is '{Invariant.Show(raw)}' in a {code} reply");
            var body = raw.EndsWith('\r') ? raw[..^1] : raw;
            var last = i == rawLines.Length - 1;
            var separator = body.Length > 3 ? body[3] : ' ';
            Invariant.That(last ? separator == ' ' : separator == '-', $"line {i} of {rawLines.Length} has separator '{separator}'");
        }
        Invariant.That(response.Lines.Count <= 1001, $"{response.Lines.Count} lines in one reply");

        // What the client does with a reply must not throw either.
        _ = response.Text;
        _ = response.ToString();
        var enhanced = response.Enhanced;
        if (enhanced is not null)
            Invariant.That(enhanced[0] - '0' == response.Code / 100, $"enhanced code {enhanced} in a {response.Code} reply");
        // RFC 3463 has classes 2, 4 and 5 only; a 3xx reply is never a final status to record.
        if (response.Code / 100 != 3)
            Invariant.That(CommandTarget.IsEnhancedCode(response.StatusOrDefault) && response.StatusOrDefault[0] - '0' == response.Code / 100,
                $"StatusOrDefault '{response.StatusOrDefault}' for {response.Code}");
        var caps = EhloCapabilities.Parse(response);
        Invariant.That(caps.MaxSize is null or > 0, "EHLO SIZE parsed to a non-positive maximum");
        Invariant.That(caps.MaxSize is null || caps.Size, "a SIZE maximum without SIZE");
        Invariant.That(caps.AuthMechanisms.All(m => m.Length > 0 && m == m.ToUpperInvariant()), "AUTH mechanisms not upper-case");
    }

    /// <summary>RFC 5321 4.2 with the reader's documented leniency, on the whole input at once.</summary>
    private static string Model(byte[] input)
    {
        var events = new StringBuilder();
        var pos = 0;
        while (true)
        {
            var lines = new List<string>();
            var code = -1;
            var p = pos;
            while (true)
            {
                var lf = Array.IndexOf(input, (byte)'\n', p);
                if (lf < 0)
                {
                    if (input.Length - p > ReplyReader.MaxLineLength) return events.Append("Invalid").ToString();
                    return events.Append("rest:").Append(Invariant.Show(input.AsSpan(pos))).ToString();
                }
                if (lf - p > ReplyReader.MaxLineLength) return events.Append("Invalid").ToString();
                var line = input.AsSpan(p, lf - p);
                if (!line.IsEmpty && line[^1] == (byte)'\r') line = line[..^1];
                if (line.Length < 3 || !char.IsAsciiDigit((char)line[0]) || !char.IsAsciiDigit((char)line[1]) || !char.IsAsciiDigit((char)line[2]))
                    return events.Append("Invalid").ToString();
                var lineCode = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
                if (lineCode is < 200 or > 599 || (code >= 0 && lineCode != code)) return events.Append("Invalid").ToString();
                code = lineCode;
                var last = line.Length == 3 || line[3] == (byte)' ';
                if (!last && line[3] != (byte)'-') return events.Append("Invalid").ToString();
                lines.Add(line.Length > 4 ? Encoding.UTF8.GetString(line[4..]) : "");
                p = lf + 1;
                if (last) break;
                if (lines.Count > 1000) return events.Append("Invalid").ToString();
            }
            events.Append(code).Append('|').Append(string.Join("|", lines.Select(Invariant.Show))).Append('\n');
            pos = p;
        }
    }
}
