using System.Buffers;
using System.Text;
using RelayMta.Protocol.Smtp;

namespace RelayMta.Protocol.Fuzzing;

/// <summary>
/// Target "data": byte 0 picks the size limit, byte 1 seeds the segmentation, the rest is what the
/// client sends after 354. DataReader is fed through Feed (one sequence, separate reads), through
/// Process, and after a Reset, under every segmentation plan; each run must equal the model of
/// RFC 5321 4.5.2 computed on the whole input.
/// </summary>
internal static class DataTarget
{
    private static readonly long[] Limits = [0, 1, 2, 3, 4, 5, 7, 8, 13, 16, 32, 64, 100, 1000, long.MaxValue, long.MaxValue];

    public static void Run(ReadOnlySpan<byte> data)
    {
        var maxSize = Limits[Invariant.At(data, 0) & 15];
        var seed = Invariant.At(data, 1);
        var payload = Invariant.After(data, 2).ToArray();

        var expected = Model(payload, maxSize).ToString();
        foreach (var (name, chunks) in Chunking.Plans(payload, seed))
        {
            Invariant.Same(expected, OneSequence(chunks, maxSize), $"limit {maxSize}, {name}, one sequence");
            Invariant.Same(expected, SeparateReads(chunks, maxSize, new DataReader(maxSize)), $"limit {maxSize}, {name}, separate reads");
            Invariant.Same(expected, Spans(chunks, maxSize), $"limit {maxSize}, {name}, Process");
        }

        // A reader that has seen another message (finished or not) and is Reset behaves as new.
        var used = new DataReader(3);
        var scratch = new ArrayBufferWriter<byte>();
        var junk = new ReadOnlySequence<byte>("x\r\n..y\r\n.\r\n\r"u8.ToArray().AsMemory(0, 1 + seed % 12));
        used.Feed(ref junk, scratch);
        used.Reset(maxSize);
        Invariant.Same(expected, SeparateReads([payload], maxSize, used), $"limit {maxSize}, after Reset");
    }

    /// <summary>What a run shows: whether it finished, what the sink got, what was left, and the reader's counters.</summary>
    private sealed record Outcome(bool Finished, byte[] Output, byte[] Rest, DataFlags Flags, long Size, int LongestLine)
    {
        public override string ToString() =>
            $"finished={Finished} flags={Flags} size={Size} longest={LongestLine}\n output: {Invariant.Show(Output)}\n rest: {Invariant.Show(Rest)}";
    }

    private static string OneSequence(byte[][] chunks, long maxSize)
    {
        var reader = new DataReader(maxSize);
        var sink = new ArrayBufferWriter<byte>();
        var input = Chunking.Sequence(chunks);
        var total = input.Length;
        var finished = reader.Feed(ref input, sink);
        CheckStep(reader, sink, maxSize, finished, total, input.Length);
        return new Outcome(finished, sink.WrittenSpan.ToArray(), input.ToArray(), reader.Flags, reader.Size, reader.LongestLine).ToString();
    }

    private static string SeparateReads(byte[][] chunks, long maxSize, DataReader reader)
    {
        var sink = new ArrayBufferWriter<byte>();
        var finished = false;
        var rest = new List<byte>();
        foreach (var chunk in chunks)
        {
            if (finished)
            {
                rest.AddRange(chunk);
                continue;
            }
            var input = Chunking.Sequence([chunk]);
            finished = reader.Feed(ref input, sink);
            CheckStep(reader, sink, maxSize, finished, chunk.Length, input.Length);
            rest.AddRange(input.ToArray());
        }
        return new Outcome(finished, sink.WrittenSpan.ToArray(), rest.ToArray(), reader.Flags, reader.Size, reader.LongestLine).ToString();
    }

    private static string Spans(byte[][] chunks, long maxSize)
    {
        var reader = new DataReader(maxSize);
        var sink = new ArrayBufferWriter<byte>();
        var finished = false;
        var rest = new List<byte>();
        foreach (var chunk in chunks)
        {
            if (finished)
            {
                rest.AddRange(chunk);
                continue;
            }
            var used = reader.Process(chunk, sink, out finished);
            Invariant.That(used >= 0 && used <= chunk.Length, $"Process said it used {used} of {chunk.Length} bytes");
            CheckStep(reader, sink, maxSize, finished, chunk.Length, chunk.Length - used);
            rest.AddRange(chunk[used..]);
        }
        return new Outcome(finished, sink.WrittenSpan.ToArray(), rest.ToArray(), reader.Flags, reader.Size, reader.LongestLine).ToString();
    }

    /// <summary>Checks after every Feed/Process call, whatever the segmentation.</summary>
    private static void CheckStep(DataReader reader, ArrayBufferWriter<byte> sink, long maxSize, bool finished, long given, long left)
    {
        Invariant.That(sink.WrittenCount <= maxSize, $"the sink got {sink.WrittenCount} bytes, over the limit of {maxSize}");
        Invariant.That(reader.Size >= sink.WrittenCount, "Size is below what the sink got");
        Invariant.That(((reader.Flags & DataFlags.TooLarge) != 0) == reader.Size > maxSize, $"TooLarge={reader.Flags.HasFlag(DataFlags.TooLarge)} with size {reader.Size} and limit {maxSize}");
        if (!finished) Invariant.That(left == 0, "an unfinished Feed left input unconsumed (the session would stall)");
        else Invariant.That(left <= given - 1, "a finished Feed consumed nothing");
    }

    /// <summary>
    /// The content of <paramref name="input"/> per RFC 5321 4.5.2: it ends at the first CRLF "." CRLF
    /// (the DATA command's CRLF counts as the one before a dot on the first line); a dot that starts a
    /// line is removed; a bare CR or LF ends nothing. Until the end is seen, a line-start "." CR is
    /// held back, since it may yet be the end, and a final CR is not yet known to be bare.
    /// </summary>
    private static Outcome Model(byte[] input, long maxSize)
    {
        var wire = new byte[input.Length + 2];
        wire[0] = (byte)'\r';
        wire[1] = (byte)'\n';
        input.CopyTo(wire, 2);
        var end = wire.AsSpan().IndexOf("\r\n.\r\n"u8);
        var finished = end >= 0;
        var content = finished ? input.AsSpan(0, end) : input; // wire[end + 2] is input[end]: the CRLF before the dot is content
        var rest = finished ? input.AsSpan(end + 3).ToArray() : [];

        var unstuffed = new List<byte>(content.Length);
        for (var i = 0; i < content.Length; i++)
        {
            var lineStart = i == 0 || (i >= 2 && content[i - 1] == (byte)'\n' && content[i - 2] == (byte)'\r');
            if (lineStart && content[i] == (byte)'.') continue;
            unstuffed.Add(content[i]);
        }
        if (!finished && content.Length >= 2 && content[^1] == (byte)'\r' && content[^2] == (byte)'.')
        {
            var dotAt = content.Length - 2;
            if (dotAt == 0 || (dotAt >= 2 && content[dotAt - 1] == (byte)'\n' && content[dotAt - 2] == (byte)'\r'))
                unstuffed.RemoveAt(unstuffed.Count - 1); // ".\r" at a line start: the CR is held back
        }

        var u = unstuffed.ToArray();
        var flags = DataFlags.None;
        var longest = 0;
        var lineLength = 0;
        for (var i = 0; i < u.Length; i++)
        {
            var b = u[i];
            if (b >= 0x80) flags |= DataFlags.EightBit;
            if (b == (byte)'\r')
            {
                // A final CR is still pending: only what follows it tells whether it is bare.
                if (i + 1 < u.Length && u[i + 1] != (byte)'\n') flags |= DataFlags.BareCarriageReturn;
            }
            else if (b == (byte)'\n' && (i == 0 || u[i - 1] != (byte)'\r'))
            {
                flags |= DataFlags.BareLineFeed;
            }
            lineLength++;
            if (b == (byte)'\n' && i > 0 && u[i - 1] == (byte)'\r')
            {
                longest = Math.Max(longest, lineLength);
                lineLength = 0;
            }
        }
        if (u.Length > maxSize) flags |= DataFlags.TooLarge;
        var output = u.Length > maxSize ? u[..(int)maxSize] : u;
        return new Outcome(finished, output, rest, flags, u.Length, longest);
    }
}
