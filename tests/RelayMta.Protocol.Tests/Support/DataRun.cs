using System.Buffers;
using RelayMta.Protocol.Smtp;

namespace RelayMta.Protocol.Tests.Support;

/// <summary>Everything observable after feeding a <see cref="DataReader"/>; strings are escaped for readable failures.</summary>
internal sealed record DataRun(bool Finished, string Output, string Rest, DataFlags Flags, long Size, int LongestLine)
{
    public static string Escape(string raw) => raw.Replace("\r", "\\r").Replace("\n", "\\n");

    private static DataRun Make(bool finished, ArrayBufferWriter<byte> sink, byte[] rest, DataReader reader) =>
        new(finished, Escape(Bytes.Show(sink.WrittenSpan)), Escape(Bytes.Show(rest)), reader.Flags, reader.Size, reader.LongestLine);

    /// <summary>All chunks as segments of one sequence, fed once.</summary>
    public static DataRun OneSequence(byte[][] chunks, long maxSize = long.MaxValue)
    {
        var reader = new DataReader(maxSize);
        var sink = new ArrayBufferWriter<byte>();
        var input = Segments.Sequence(chunks);
        var finished = reader.Feed(ref input, sink);
        return Make(finished, sink, input.ToArray(), reader);
    }

    /// <summary>One Feed per chunk, as successive reads deliver them; stops feeding at the terminator.</summary>
    public static DataRun SeparateReads(byte[][] chunks, long maxSize = long.MaxValue)
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
            var input = Segments.Sequence(chunk);
            finished = reader.Feed(ref input, sink);
            if (finished) rest.AddRange(input.ToArray());
            else Assert.True(input.IsEmpty, "an unfinished Feed must consume all of its input");
        }
        return Make(finished, sink, rest.ToArray(), reader);
    }

    /// <summary>The span API: one Process call per chunk.</summary>
    public static DataRun Spans(byte[][] chunks, long maxSize = long.MaxValue)
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
            if (finished) rest.AddRange(chunk[used..]);
            else Assert.Equal(chunk.Length, used);
        }
        return Make(finished, sink, rest.ToArray(), reader);
    }

    /// <summary>
    /// Runs <paramref name="input"/> whole and under every splitting with all three feeding styles,
    /// asserts they all agree and returns the common result.
    /// </summary>
    public static DataRun EverySplitting(byte[] input, long maxSize = long.MaxValue)
    {
        var reference = OneSequence([input], maxSize);
        foreach (var (how, chunks) in Segments.Splittings(input))
        {
            AssertSame(reference, OneSequence(chunks, maxSize), "one sequence, " + how);
            AssertSame(reference, SeparateReads(chunks, maxSize), "separate reads, " + how);
            AssertSame(reference, Spans(chunks, maxSize), "spans, " + how);
        }
        return reference;
    }

    public static void AssertSame(DataRun expected, DataRun actual, string how)
    {
        if (expected != actual) Assert.Fail($"{how}:\n expected {expected}\n   actual {actual}");
    }
}
