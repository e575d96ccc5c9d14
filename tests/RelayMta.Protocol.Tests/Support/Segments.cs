using System.Buffers;
using System.Text;

namespace RelayMta.Protocol.Tests.Support;

/// <summary>A hand-made segment so tests can build multi-segment <see cref="ReadOnlySequence{T}"/>s.</summary>
internal sealed class TestSegment : ReadOnlySequenceSegment<byte>
{
    public TestSegment(ReadOnlyMemory<byte> memory, long runningIndex)
    {
        Memory = memory;
        RunningIndex = runningIndex;
    }

    public TestSegment Append(ReadOnlyMemory<byte> memory)
    {
        var next = new TestSegment(memory, RunningIndex + Memory.Length);
        Next = next;
        return next;
    }
}

internal static class Segments
{
    /// <summary>One sequence made of the given chunks, each in its own segment (empty chunks included).</summary>
    public static ReadOnlySequence<byte> Sequence(IReadOnlyList<byte[]> chunks)
    {
        if (chunks.Count == 0) return ReadOnlySequence<byte>.Empty;
        // Copy each chunk so a reader that peeks outside its segment would read garbage, not the neighbour.
        var first = new TestSegment(chunks[0].ToArray(), 0);
        var last = first;
        for (var i = 1; i < chunks.Count; i++) last = last.Append(chunks[i].ToArray());
        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    public static ReadOnlySequence<byte> Sequence(params byte[][] chunks) => Sequence((IReadOnlyList<byte[]>)chunks);

    /// <summary>Cuts <paramref name="bytes"/> at the given (ascending) offsets.</summary>
    public static byte[][] Cut(byte[] bytes, params int[] offsets)
    {
        var chunks = new List<byte[]>();
        var start = 0;
        foreach (var offset in offsets)
        {
            chunks.Add(bytes[start..offset]);
            start = offset;
        }
        chunks.Add(bytes[start..]);
        return chunks.ToArray();
    }

    /// <summary>
    /// Every way of cutting the input this suite cares about: whole, in two at every offset
    /// (0 and Length included, which give an empty segment), one byte per segment, and in three
    /// around every offset.
    /// </summary>
    public static IEnumerable<(string Name, byte[][] Chunks)> Splittings(byte[] bytes)
    {
        yield return ("whole", [bytes]);
        for (var i = 0; i <= bytes.Length; i++)
            yield return ($"split at {i}", Cut(bytes, i));
        for (var i = 1; i + 1 < bytes.Length; i++)
            yield return ($"split at {i - 1},{i + 1}", Cut(bytes, i - 1, i + 1));
        yield return ("one byte at a time", bytes.Select(b => new[] { b }).ToArray());
    }

    public static byte[] ToArray(in ReadOnlySequence<byte> sequence) => sequence.ToArray();
}

internal static class Bytes
{
    /// <summary>Each char becomes one byte (chars must be ≤ 0xFF): lets tables spell raw and invalid bytes.</summary>
    public static byte[] Raw(string text)
    {
        foreach (var c in text)
            if (c > 0xff) throw new ArgumentException($"'{c}' does not fit in a byte; use Utf8()", nameof(text));
        return Encoding.Latin1.GetBytes(text);
    }

    public static byte[] Utf8(string text) => Encoding.UTF8.GetBytes(text);

    /// <summary>Inverse of <see cref="Raw"/>, for readable assertion messages.</summary>
    public static string Show(ReadOnlySpan<byte> bytes) => Encoding.Latin1.GetString(bytes);
}
