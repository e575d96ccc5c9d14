using System.Buffers;

namespace RelayMta.Benchmarks.Infrastructure;

/// <summary>
/// A sink that takes bytes and keeps none: every write lands in the same scratch buffer, so the
/// copy is paid (as it is into the spool body) but nothing is allocated per call.
/// </summary>
internal sealed class DiscardingBufferWriter : IBufferWriter<byte>
{
    private byte[] _scratch;

    public DiscardingBufferWriter(int scratchSize = 128 * 1024) => _scratch = new byte[scratchSize];

    /// <summary>Bytes written since the last <see cref="Reset"/>.</summary>
    public long Written { get; private set; }

    public void Reset() => Written = 0;

    public void Advance(int count) => Written += count;

    public Memory<byte> GetMemory(int sizeHint = 0) => Scratch(sizeHint);

    public Span<byte> GetSpan(int sizeHint = 0) => Scratch(sizeHint);

    private byte[] Scratch(int sizeHint)
    {
        if (sizeHint > _scratch.Length) _scratch = new byte[sizeHint]; // only ever grows once, in warm-up
        return _scratch;
    }
}

/// <summary>Builds <see cref="ReadOnlySequence{T}"/>s out of fixed-size pieces, as a socket read loop produces them.</summary>
internal static class Segments
{
    /// <summary>Cuts <paramref name="data"/> into pieces of <paramref name="size"/> bytes (the last may be shorter).</summary>
    public static ReadOnlyMemory<byte>[] Split(byte[] data, int size)
    {
        var pieces = new List<ReadOnlyMemory<byte>>(data.Length / size + 1);
        for (var offset = 0; offset < data.Length; offset += size)
            pieces.Add(data.AsMemory(offset, Math.Min(size, data.Length - offset)));
        return pieces.ToArray();
    }

    /// <summary>One sequence over all <paramref name="pieces"/>, each its own segment.</summary>
    public static ReadOnlySequence<byte> Chain(IReadOnlyList<ReadOnlyMemory<byte>> pieces)
    {
        if (pieces.Count == 1) return new ReadOnlySequence<byte>(pieces[0]);
        var first = new Segment(pieces[0], 0);
        var last = first;
        for (var i = 1; i < pieces.Count; i++) last = last.Append(pieces[i]);
        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
