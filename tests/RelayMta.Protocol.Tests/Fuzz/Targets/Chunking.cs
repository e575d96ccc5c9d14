using System.Buffers;

namespace RelayMta.Protocol.Fuzzing;

/// <summary>
/// Ways of cutting one input into the reads or segments a socket and a pipe could deliver. Every
/// target runs the same input under all of them and requires the same result: parsers must not
/// depend on where a read ended.
/// </summary>
internal static class Chunking
{
    /// <summary>Longest input that is also fed one byte per segment (that plan costs a segment per byte).</summary>
    private const int ByteAtATimeLimit = 16 * 1024;

    /// <summary>Inputs up to this length are also cut in two at every offset.</summary>
    private const int EveryOffsetLimit = 48;

    /// <summary>
    /// The plans for <paramref name="bytes"/>: whole; one byte per chunk; in two at every offset
    /// (small inputs) or at a few offsets; and cuts derived from <paramref name="seed"/>, with
    /// empty chunks among them. Deterministic, so a finding replays.
    /// </summary>
    public static IEnumerable<(string Name, byte[][] Chunks)> Plans(byte[] bytes, byte seed)
    {
        yield return ("whole", [bytes]);
        if (bytes.Length == 0)
        {
            yield return ("empty chunks", [[], []]);
            yield break;
        }
        if (bytes.Length <= ByteAtATimeLimit)
            yield return ("one byte at a time", bytes.Select(b => new[] { b }).ToArray());
        var random = new SplitMix(seed);
        if (bytes.Length <= EveryOffsetLimit)
        {
            for (var i = 0; i <= bytes.Length; i++)
                yield return ($"cut at {i}", Cut(bytes, [i]));
        }
        else
        {
            for (var k = 0; k < 6; k++)
            {
                var at = random.Next(bytes.Length + 1);
                yield return ($"cut at {at}", Cut(bytes, [at]));
            }
        }
        for (var k = 0; k < 3; k++)
        {
            var count = 1 + random.Next(Math.Min(bytes.Length, 12));
            var offsets = new int[count];
            for (var i = 0; i < count; i++) offsets[i] = random.Next(bytes.Length + 1);
            Array.Sort(offsets);
            yield return ($"cuts at {string.Join(",", offsets)}", Cut(bytes, offsets));
        }
    }

    /// <summary>Cuts at the given ascending offsets; repeated offsets give empty chunks.</summary>
    public static byte[][] Cut(byte[] bytes, int[] offsets)
    {
        var chunks = new List<byte[]>(offsets.Length + 1);
        var start = 0;
        foreach (var offset in offsets)
        {
            chunks.Add(bytes[start..offset]);
            start = offset;
        }
        chunks.Add(bytes[start..]);
        return chunks.ToArray();
    }

    /// <summary>One sequence whose segments are the chunks, each copied into its own memory.</summary>
    public static ReadOnlySequence<byte> Sequence(IReadOnlyList<byte[]> chunks)
    {
        if (chunks.Count == 0) return ReadOnlySequence<byte>.Empty;
        var first = new Segment(new TrackedMemory(chunks[0]), 0);
        var last = first;
        for (var i = 1; i < chunks.Count; i++) last = last.Append(new TrackedMemory(chunks[i]));
        return new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    /// <summary>Forgets which segments of <paramref name="sequence"/> were read.</summary>
    public static void ClearTouched(in ReadOnlySequence<byte> sequence)
    {
        for (var s = sequence.Start.GetObject() as Segment; s is not null; s = s.Next as Segment)
            s.Tracked.Touched = false;
    }

    /// <summary>
    /// The lowest offset, counted from the start of <paramref name="sequence"/>, at which a segment
    /// that was read begins, among the segments that begin past <paramref name="limit"/>; -1 when
    /// none was read. (A segment that begins exactly at the limit may be touched as an empty slice.)
    /// </summary>
    public static long TouchedBeyond(in ReadOnlySequence<byte> sequence, long limit)
    {
        if (sequence.Start.GetObject() is not Segment first) return -1;
        var origin = first.RunningIndex + sequence.Start.GetInteger();
        for (var s = first; s is not null; s = s.Next as Segment)
        {
            var offset = s.RunningIndex - origin;
            if (offset > limit && s.Tracked.Touched && s.Memory.Length > 0) return offset;
        }
        return -1;
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(TrackedMemory memory, long runningIndex)
        {
            Tracked = memory;
            Memory = memory.Memory;
            RunningIndex = runningIndex;
        }

        public TrackedMemory Tracked { get; }

        public Segment Append(TrackedMemory memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }

    /// <summary>Memory that notes when its bytes are looked at (any access goes through GetSpan).</summary>
    internal sealed class TrackedMemory(byte[] bytes) : MemoryManager<byte>
    {
        private readonly byte[] _bytes = bytes.ToArray();

        public bool Touched { get; set; }

        public override Span<byte> GetSpan()
        {
            Touched = true;
            return _bytes;
        }

        public override MemoryHandle Pin(int elementIndex = 0) => throw new NotSupportedException("the parsers under test must not pin");

        public override void Unpin()
        {
        }

        protected override void Dispose(bool disposing)
        {
        }
    }
}

/// <summary>A tiny deterministic generator (SplitMix64) so a plan depends only on the input.</summary>
internal struct SplitMix(ulong seed)
{
    private ulong _state = seed * 0x9E3779B97F4A7C15UL + 0x2545F4914F6CDD1DUL;

    public ulong NextULong()
    {
        var z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>0 ≤ result &lt; <paramref name="bound"/> (bound ≥ 1).</summary>
    public int Next(int bound) => (int)(NextULong() % (ulong)bound);
}
