using System.Buffers;
using System.Text;
using RelayMta.Protocol.Smtp;

namespace RelayMta.Protocol.Fuzzing;

/// <summary>
/// Target "line": byte 0 picks the line limit, byte 1 seeds the segmentation, the rest is what the
/// client sends. LineReader is driven as the session drives it (TryReadLine until NeedMore,
/// TrySkipLine after TooLong), over every segmentation plan, and compared with a plain model.
/// </summary>
internal static class LineTarget
{
    /// <summary>Line limits, CRLF counted: tiny ones to reach the edges, and the RFC 5321 command and text limits.</summary>
    private static readonly int[] Limits = [2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 16, 32, 64, 100, 512, 1000];

    public static void Run(ReadOnlySpan<byte> data)
    {
        var maxLength = Limits[Invariant.At(data, 0) & 15];
        var seed = Invariant.At(data, 1);
        var payload = Invariant.After(data, 2).ToArray();

        var expected = Model(payload, maxLength);
        foreach (var (name, chunks) in Chunking.Plans(payload, seed))
        {
            Invariant.Same(expected, OneSequence(chunks, maxLength), $"limit {maxLength}, {name}, one sequence");
            Invariant.Same(expected, SeparateReads(chunks, maxLength), $"limit {maxLength}, {name}, separate reads");
        }
    }

    /// <summary>All chunks as the segments of one buffer, read until NeedMore.</summary>
    private static string OneSequence(byte[][] chunks, int maxLength)
    {
        var events = new StringBuilder();
        var buffer = Chunking.Sequence(chunks);
        var discarding = false;
        Drain(ref buffer, maxLength, ref discarding, events);
        return events.Append("rest:").Append(Invariant.Show(buffer.ToArray())).Append(discarding ? " discarding" : "").ToString();
    }

    /// <summary>One read per chunk; what a read left unconsumed stays in front of the next, as a pipe keeps it.</summary>
    private static string SeparateReads(byte[][] chunks, int maxLength)
    {
        var events = new StringBuilder();
        var pending = Array.Empty<byte>();
        var discarding = false;
        foreach (var chunk in chunks)
        {
            var buffer = Chunking.Sequence([pending, chunk]);
            Drain(ref buffer, maxLength, ref discarding, events);
            pending = buffer.ToArray();
        }
        return events.Append("rest:").Append(Invariant.Show(pending)).Append(discarding ? " discarding" : "").ToString();
    }

    private static void Drain(ref ReadOnlySequence<byte> buffer, int maxLength, ref bool discarding, StringBuilder events)
    {
        while (true)
        {
            var before = buffer;
            if (discarding)
            {
                var found = LineReader.TrySkipLine(ref buffer);
                var skipped = before.Slice(0, before.Length - buffer.Length);
                if (!found)
                {
                    Invariant.That(buffer.IsEmpty, "TrySkipLine returned false but left bytes");
                    Invariant.That(skipped.PositionOf((byte)'\n') is null, "TrySkipLine returned false after an LF");
                    return;
                }
                Invariant.That(skipped.Length >= 1, "TrySkipLine returned true without consuming");
                var lf = skipped.PositionOf((byte)'\n');
                Invariant.That(lf is not null && skipped.Slice(lf.Value).Length == 1, "TrySkipLine went past the first LF, or stopped before it");
                discarding = false;
                events.Append("TooLong\n");
                continue;
            }

            Chunking.ClearTouched(buffer);
            var status = LineReader.TryReadLine(ref buffer, maxLength, out var line);
            var peeked = Chunking.TouchedBeyond(before, maxLength);
            if (peeked >= 0) Invariant.Fail($"TryReadLine (limit {maxLength}) read a segment starting {peeked} bytes in");
            var consumed = before.Length - buffer.Length;
            Invariant.That(buffer.End.Equals(before.End), "TryReadLine moved the end of the buffer");
            switch (status)
            {
                case LineStatus.NeedMore:
                    Invariant.That(consumed == 0 && buffer.Start.Equals(before.Start), "NeedMore consumed bytes");
                    Invariant.That(line.IsEmpty, "NeedMore came with a line");
                    // Never stall: with a whole limit's worth of bytes there is a line or TooLong.
                    Invariant.That(before.Length < maxLength, $"NeedMore with {before.Length} bytes buffered (limit {maxLength}): the session would wait forever");
                    Invariant.That(before.PositionOf((byte)'\n') is null, "NeedMore with an LF in the buffer");
                    return;
                case LineStatus.TooLong:
                    Invariant.That(line.IsEmpty, "TooLong came with a line");
                    Invariant.That(consumed is >= 1 && consumed <= maxLength, $"TooLong consumed {consumed} bytes (limit {maxLength})");
                    Invariant.That(before.Slice(0, consumed).PositionOf((byte)'\n') is null, "TooLong swallowed a line end");
                    discarding = true;
                    continue;
                case LineStatus.Line:
                    Invariant.That(line.Length <= maxLength - 2, $"a line of {line.Length} bytes + CRLF passed the limit of {maxLength}");
                    Invariant.That(consumed == line.Length + 2, "Line: consumed bytes are not the line and its CRLF");
                    Invariant.That(line.PositionOf((byte)'\n') is null, "a line holds an LF");
                    events.Append("Line:").Append(Invariant.Show(line.ToArray())).Append('\n');
                    continue;
                case LineStatus.BareLineFeed:
                    Invariant.That(line.Length <= maxLength - 1, $"a bare-LF line of {line.Length} bytes + LF passed the limit of {maxLength}");
                    Invariant.That(consumed == line.Length + 1, "BareLineFeed: consumed bytes are not the line and its LF");
                    Invariant.That(line.PositionOf((byte)'\n') is null, "a line holds an LF");
                    Invariant.That(line.IsEmpty || line.Slice(line.Length - 1).FirstSpan[0] != (byte)'\r', "BareLineFeed for a CRLF line");
                    events.Append("BareLF:").Append(Invariant.Show(line.ToArray())).Append('\n');
                    continue;
                default:
                    Invariant.Fail($"TryReadLine returned {(int)status}");
                    break;
            }
        }
    }

    /// <summary>RFC 5321 as the session applies it, on the whole input at once.</summary>
    private static string Model(byte[] input, int maxLength)
    {
        var events = new StringBuilder();
        var pos = 0;
        var discarding = false;
        while (true)
        {
            var lf = Array.IndexOf(input, (byte)'\n', pos);
            if (discarding)
            {
                if (lf < 0)
                {
                    pos = input.Length;
                    break;
                }
                pos = lf + 1;
                discarding = false;
                events.Append("TooLong\n");
                continue;
            }
            if (lf < 0 || lf - pos >= maxLength)
            {
                // No LF among the next maxLength bytes: the line is too long once that many are here.
                if (input.Length - pos < maxLength) break;
                pos += maxLength;
                discarding = true;
                continue;
            }
            var content = input.AsSpan(pos, lf - pos);
            pos = lf + 1;
            if (content.Length > 0 && content[^1] == (byte)'\r')
                events.Append("Line:").Append(Invariant.Show(content[..^1])).Append('\n');
            else
                events.Append("BareLF:").Append(Invariant.Show(content)).Append('\n');
        }
        return events.Append("rest:").Append(Invariant.Show(input.AsSpan(pos))).Append(discarding ? " discarding" : "").ToString();
    }
}
