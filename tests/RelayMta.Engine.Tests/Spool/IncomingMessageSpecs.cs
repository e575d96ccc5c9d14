using System.Buffers;
using RelayMta.Engine.Spool;

namespace RelayMta.Engine.Tests.Spooling;

public sealed class IncomingMessageSpecs : IDisposable
{
    // Chunks are 4 KiB, 16 KiB, then 64 KiB: these offsets sit on and around their edges.
    private static readonly long[] Offsets = [0, 1, 4095, 4096, 4097, 20_479, 20_480, 20_481, 86_015, 86_016, 86_017, 99_999, 100_000, 150_000];
    private static readonly int[] Lengths = [1, 2, 100, 4096, 17_000, 70_000, 200_000];

    private readonly string _bodies = Path.Combine(Path.GetTempPath(), "relaymta-incoming-" + Guid.NewGuid().ToString("N")[..12]);
    private readonly QueueId _id = new QueueIdGenerator().Next();

    public IncomingMessageSpecs() => System.IO.Directory.CreateDirectory(_bodies);

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(_bodies, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private string SpillFile => Path.Combine(_bodies, _id.Value);

    private static byte[] Content(int length)
    {
        var bytes = new byte[length];
        new Random(length).NextBytes(bytes);
        return bytes;
    }

    /// <summary>Writes <paramref name="content"/> in uneven pieces, as a network reader would.</summary>
    private static void WriteInPieces(IncomingMessage message, byte[] content)
    {
        int[] sizes = [1, 7, 1000, 4095, 13, 5000, 65_536, 3];
        for (int done = 0, i = 0; done < content.Length; i++)
        {
            var n = Math.Min(sizes[i % sizes.Length], content.Length - done);
            message.Write(content.AsSpan(done, n));
            done += n;
        }
    }

    private static void AssertEveryRangeReadsBack(IncomingMessage message, byte[] content)
    {
        foreach (var offset in Offsets)
        foreach (var length in Lengths)
        {
            var destination = new byte[length];
            var copied = message.CopyTo(offset, destination);

            var expected = (int)Math.Clamp(content.Length - offset, 0, length);
            Assert.True(expected == copied, $"offset {offset} length {length}: copied {copied}, expected {expected}");
            if (!content.AsSpan((int)Math.Min(offset, content.Length), expected).SequenceEqual(destination.AsSpan(0, expected)))
                Assert.Fail($"offset {offset} length {length}: wrong bytes");
        }
    }

    [Fact]
    public void CopyTo_reads_any_range_of_a_body_held_in_memory_across_chunk_edges()
    {
        var content = Content(100_000);
        using var message = new IncomingMessage(_id, _bodies, 1024 * 1024);

        WriteInPieces(message, content);

        Assert.False(message.IsSpilled);
        Assert.Equal(content.Length, message.Length);
        Assert.False(File.Exists(SpillFile));
        AssertEveryRangeReadsBack(message, content);
    }

    [Fact]
    public void CopyTo_reads_any_range_of_a_body_spilled_to_its_file()
    {
        var content = Content(100_000);
        using var message = new IncomingMessage(_id, _bodies, 10_000);

        WriteInPieces(message, content);

        Assert.True(message.IsSpilled);
        Assert.True(File.Exists(SpillFile));
        Assert.Equal(content.Length, message.Length);
        AssertEveryRangeReadsBack(message, content);
    }

    [Fact]
    public void CopyTo_in_the_middle_of_writing_sees_everything_written_so_far_and_writing_goes_on()
    {
        var content = Content(60_000);
        using var message = new IncomingMessage(_id, _bodies, 10_000);
        var probe = new byte[64];

        for (var done = 0; done < content.Length; done += 1_500)
        {
            message.Write(content.AsSpan(done, 1_500));
            var copied = message.CopyTo(done + 1_500 - 64, probe);
            Assert.Equal(64, copied);
            Assert.Equal(content.AsSpan(done + 1_500 - 64, 64).ToArray(), probe);
        }

        Assert.True(message.IsSpilled);
        AssertEveryRangeReadsBack(message, content);
    }

    [Fact]
    public void The_body_spills_only_once_it_grows_past_the_inline_limit()
    {
        using var message = new IncomingMessage(_id, _bodies, 5_000);

        message.Write(Content(5_000));
        Assert.False(message.IsSpilled);
        Assert.False(File.Exists(SpillFile));

        message.Write(new byte[] { 1 });
        Assert.True(message.IsSpilled);
        Assert.True(File.Exists(SpillFile));
    }

    [Fact]
    public void Size_hints_larger_than_the_room_left_leave_no_gap_in_the_body()
    {
        var expected = new List<byte>();
        using var message = new IncomingMessage(_id, _bodies, 1024 * 1024);
        var random = new Random(3);

        for (var i = 0; i < 60; i++)
        {
            var want = random.Next(1, 6000);
            var memory = message.GetMemory(want);
            Assert.True(memory.Length >= want);
            var used = random.Next(0, want + 1);
            var piece = Content(used);
            piece.CopyTo(memory);
            message.Advance(used);
            expected.AddRange(piece);
        }

        Assert.Equal(expected.Count, message.Length);
        var copy = new byte[expected.Count];
        Assert.Equal(copy.Length, message.CopyTo(0, copy));
        Assert.Equal(expected.ToArray(), copy);
        Assert.Equal(expected.ToArray(), message.Segments().SelectMany(s => s.ToArray()).ToArray());
    }

    [Fact]
    public void The_prefix_is_counted_and_must_come_first()
    {
        using var message = new IncomingMessage(_id, _bodies, 1024 * 1024);
        var prefix = "Received: from client.example.test\r\n"u8.ToArray();

        message.WritePrefix(prefix);
        message.Write("Subject: hi\r\n\r\nbody\r\n"u8);

        Assert.Equal(prefix.Length, message.PrefixLength);
        Assert.Equal(prefix.Length + 21, message.Length);
        var head = new byte[prefix.Length];
        message.CopyTo(0, head);
        Assert.Equal(prefix, head);
        var content = new byte[7];
        message.CopyTo(message.PrefixLength, content);
        Assert.Equal("Subject"u8.ToArray(), content);
        Assert.Throws<InvalidOperationException>(() => message.WritePrefix("X: y\r\n"u8));
    }

    [Fact]
    public void A_prefix_larger_than_the_inline_limit_spills_and_is_still_counted()
    {
        using var message = new IncomingMessage(_id, _bodies, 100);
        var prefix = Content(300);

        message.WritePrefix(prefix);

        Assert.True(message.IsSpilled);
        Assert.Equal(300, message.PrefixLength);
        Assert.Equal(prefix, File.ReadAllBytes(SpillFile));
    }

    [Fact]
    public void Dispose_deletes_the_spill_file_and_refuses_further_writes()
    {
        var message = new IncomingMessage(_id, _bodies, 1_000);
        message.Write(Content(5_000));
        Assert.True(File.Exists(SpillFile));

        message.Dispose();

        Assert.False(File.Exists(SpillFile));
        Assert.Throws<ObjectDisposedException>(() => message.GetSpan(1));
        message.Dispose(); // twice is harmless
    }

    [Fact]
    public void Dispose_of_a_body_kept_in_memory_touches_no_file()
    {
        var message = new IncomingMessage(_id, _bodies, 1_000_000);
        message.Write(Content(5_000));

        message.Dispose();

        Assert.Empty(System.IO.Directory.GetFiles(_bodies));
        Assert.Throws<ObjectDisposedException>(() => message.GetMemory());
    }

    [Fact]
    public void Advance_past_the_buffer_handed_out_is_refused()
    {
        using var message = new IncomingMessage(_id, _bodies, 1_000_000);

        Assert.Throws<ArgumentOutOfRangeException>(() => message.Advance(1)); // nothing handed out yet
        var room = message.GetSpan(10).Length;
        Assert.Throws<ArgumentOutOfRangeException>(() => message.Advance(room + 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => message.Advance(-1));
        Assert.Equal(0, message.Length);
    }
}
