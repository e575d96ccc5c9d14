using System.Buffers;
using System.Buffers.Binary;
using RelayMta.Engine.Spool;

namespace RelayMta.Engine.Tests.Spooling;

public sealed class SpoolRecoverySpecs : SpoolTestBase
{
    private static readonly SpoolOptions SmallInline = new() { InlineBodyLimit = 4 * 1024 };

    public static TheoryData<string> TornTails => ["garbage", "partial header", "zero-filled", "truncated record", "bad checksum"];

    /// <summary>What a crash in the middle of an append can leave after the last good record.</summary>
    private static byte[] TornTail(string kind, byte[] segment)
    {
        var firstRecord = segment.AsSpan(0, JournalCodec.FrameHeader + (int)BinaryPrimitives.ReadUInt32LittleEndian(segment)).ToArray();
        switch (kind)
        {
            case "garbage":
                return Content(333, 42);
            case "partial header":
                return firstRecord[..5];
            case "zero-filled":
                return new byte[4096];
            case "truncated record":
                return firstRecord[..(firstRecord.Length / 2)];
            case "bad checksum":
                var copy = firstRecord.ToArray();
                copy[^10] ^= 0x40; // a byte of the body
                return copy;
            default:
                throw new ArgumentOutOfRangeException(nameof(kind));
        }
    }

    [Theory]
    [MemberData(nameof(TornTails))]
    public async Task A_torn_tail_is_cut_off_and_every_committed_message_is_recovered(string kind)
    {
        var spool = Open(SmallInline);
        var bodies = new Dictionary<QueueId, byte[]>();
        for (var i = 0; i < 6; i++)
        {
            var body = Content(i == 3 ? 9_000 : 700, i);
            bodies[(await CommitAsync(spool, body)).Id] = body;
        }
        spool.Dispose();
        var segment = SegmentFiles()[^1];
        var good = File.ReadAllBytes(segment);
        await using (var stream = new FileStream(segment, FileMode.Append)) await stream.WriteAsync(TornTail(kind, good));
        Assert.True(new FileInfo(segment).Length > good.Length);

        spool = Open(SmallInline);

        Assert.Equal(bodies.Keys, spool.Recovered.Select(e => e.Id));
        Assert.Equal(good, File.ReadAllBytes(segment));
        foreach (var (id, body) in bodies) Assert.Equal(body, ReadBody(spool, id));

        for (var i = 0; i < 3; i++)
        {
            var body = Content(i == 1 ? 9_000 : 800, 100 + i);
            bodies[(await CommitAsync(spool, body)).Id] = body;
        }
        spool = Reopen(spool, SmallInline);

        Assert.Equal(bodies.Keys, spool.Recovered.Select(e => e.Id));
        foreach (var (id, body) in bodies) Assert.Equal(body, ReadBody(spool, id));
    }

    [Fact]
    public async Task A_body_file_left_by_a_crash_before_its_commit_is_deleted_on_open()
    {
        var spool = Open(SmallInline);
        var committed = await CommitAsync(spool, Content(9_000, 1));
        var id = spool.Ids.Next();
        var halfWritten = spool.Begin(id);
        halfWritten.Write(Content(50_000, 2));
        Assert.True(File.Exists(BodyFile(id)));
        spool.Dispose(); // the "crash": no commit, and the session never cleaned up
        var stray = Path.Combine(BodiesDir, "not-a-queue-id");
        await File.WriteAllTextAsync(stray, "junk");

        spool = Open(SmallInline);

        Assert.False(File.Exists(BodyFile(id)));
        Assert.False(File.Exists(stray));
        Assert.Equal([committed.Id], spool.Recovered.Select(e => e.Id));
        Assert.True(File.Exists(BodyFile(committed.Id)));
        Assert.Equal(Content(9_000, 1), ReadBody(spool, committed.Id));
        halfWritten.Dispose(); // the late clean-up finds nothing to remove, and does not throw
    }

    [Fact]
    public async Task A_message_completed_just_before_a_crash_is_not_recovered_even_if_its_body_file_remains()
    {
        var spool = Open(SmallInline);
        var done = await CommitAsync(spool, Content(9_000, 1));
        var body = File.ReadAllBytes(BodyFile(done.Id));
        await spool.CompleteAsync(done.Id);
        spool.Dispose();
        // The crash came between the Done record and the removal of the body file.
        await File.WriteAllBytesAsync(BodyFile(done.Id), body);

        spool = Open(SmallInline);

        Assert.Empty(spool.Recovered);
        Assert.False(File.Exists(BodyFile(done.Id)));
    }
}
