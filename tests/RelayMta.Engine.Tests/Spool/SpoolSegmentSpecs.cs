using System.Globalization;
using RelayMta.Engine.Spool;

namespace RelayMta.Engine.Tests.Spooling;

public sealed class SpoolSegmentSpecs : SpoolTestBase
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private static readonly SpoolOptions SmallSegments = new()
    {
        SegmentSize = 64 * 1024,
        InlineBodyLimit = 16 * 1024,
        RelocateAfter = TimeSpan.FromHours(1),
    };

    private long NewestSegmentId() =>
        SegmentFiles().Select(f => long.Parse(Path.GetFileNameWithoutExtension(f), CultureInfo.InvariantCulture)).Max();

    private string SegmentPath(long id) => Path.Combine(JournalDir, id.ToString("D12", CultureInfo.InvariantCulture) + ".log");

    /// <summary>Commits and completes throw-away messages until the journal has moved on to segment <paramref name="segment"/>.</summary>
    private async Task ChurnUntilSegmentAsync(Spool.Spool spool, long segment)
    {
        for (var i = 0; NewestSegmentId() < segment; i++)
        {
            Assert.True(i < 10_000, "the journal does not rotate");
            var batch = await Task.WhenAll(Enumerable.Range(0, 8).Select(k => CommitAsync(spool, Content(2_000, i * 8 + k), recipients: 1)));
            await Task.WhenAll(batch.Select(e => spool.CompleteAsync(e.Id)));
        }
    }

    [Fact]
    public async Task Segments_rotate_past_the_segment_size_and_are_deleted_once_nothing_in_them_is_alive()
    {
        var spool = Open(SmallSegments);

        await ChurnUntilSegmentAsync(spool, 6);

        Assert.Equal(0, spool.Count);
        // Segments are freed right after the acknowledgement, not before it.
        await EventuallyAsync(() => spool.SegmentCount <= 2, Patience, () => $"{spool.SegmentCount} segments");
        Assert.Equal(spool.SegmentCount, SegmentFiles().Length);
        Assert.False(File.Exists(SegmentPath(1)));
        Assert.All(SegmentFiles(), f => Assert.InRange(new FileInfo(f).Length, 0, SmallSegments.SegmentSize + 64 * 1024));

        spool = Reopen(spool, SmallSegments);
        Assert.Empty(spool.Recovered);
        Assert.Equal(1, spool.SegmentCount);
    }

    [Fact]
    public async Task A_live_message_keeps_its_segment_until_it_completes()
    {
        var spool = Open(SmallSegments);
        var live = await CommitAsync(spool, Content(8_000, 1));

        await ChurnUntilSegmentAsync(spool, 5);

        Assert.True(File.Exists(SegmentPath(1)));
        Assert.True(spool.SegmentCount >= 5, $"only {spool.SegmentCount} segments: deletion is oldest first");
        Assert.Equal(Content(8_000, 1), ReadBody(spool, live.Id));

        spool = Reopen(spool, SmallSegments);

        Assert.Equal([live.Id], spool.Recovered.Select(e => e.Id));
        Assert.Equal(Content(8_000, 1), ReadBody(spool, live.Id));

        await spool.CompleteAsync(live.Id);

        await EventuallyAsync(() => spool.SegmentCount == 1, Patience, () => $"{spool.SegmentCount} segments");
        Assert.Single(SegmentFiles());
    }

    [Fact]
    public async Task A_spilled_message_whose_state_moved_to_a_later_segment_keeps_the_segment_holding_its_envelope()
    {
        var spool = Open(SmallSegments);
        var live = await CommitAsync(spool, Content(40_000, 1)); // body in bodies/, envelope in segment 1
        await ChurnUntilSegmentAsync(spool, 3);
        var state = live.State with { Attempts = 1, NextAttemptAt = DateTimeOffset.FromUnixTimeMilliseconds(1_760_000_000_000) };

        await spool.UpdateAsync(state);

        Assert.True(File.Exists(SegmentPath(1)));
        spool = Reopen(spool, SmallSegments);

        var recovered = Assert.Single(spool.Recovered);
        AssertSameEnvelope(live.Envelope, recovered.Envelope);
        AssertSameState(state, recovered.State);
        Assert.Equal(Content(40_000, 1), ReadBody(spool, live.Id));
    }

    [Fact]
    public async Task Messages_left_in_an_old_segment_are_moved_out_and_the_segment_is_deleted()
    {
        var options = SmallSegments with { RelocateAfter = TimeSpan.Zero, MaintenanceInterval = TimeSpan.FromMilliseconds(50) };
        var spool = Open(options);
        var inline = await CommitAsync(spool, Content(8_000, 1));
        var spilled = await CommitAsync(spool, Content(40_000, 2));
        var state = inline.State with { Attempts = 3, Held = true };
        await spool.UpdateAsync(state);
        Assert.False(File.Exists(BodyFile(inline.Id)));

        await ChurnUntilSegmentAsync(spool, 3);
        await EventuallyAsync(() => !File.Exists(SegmentPath(1)) && File.Exists(BodyFile(inline.Id)), Patience,
            () => $"segments: {string.Join(", ", SegmentFiles().Select(Path.GetFileName))}");

        Assert.Equal(Content(8_000, 1), File.ReadAllBytes(BodyFile(inline.Id)));
        Assert.Equal(Content(8_000, 1), ReadBody(spool, inline.Id));
        Assert.Equal(Content(40_000, 2), ReadBody(spool, spilled.Id));
        AssertSameState(state, spool.Find(inline.Id)!.State);
        await EventuallyAsync(() => spool.SegmentCount <= 2, Patience, () => $"{spool.SegmentCount} segments");

        spool = Reopen(spool, options);

        Assert.Equal([inline.Id, spilled.Id], spool.Recovered.Select(e => e.Id));
        AssertSameEnvelope(inline.Envelope, spool.Recovered[0].Envelope);
        AssertSameState(state, spool.Recovered[0].State);
        AssertSameEnvelope(spilled.Envelope, spool.Recovered[1].Envelope);
        Assert.Equal(Content(8_000, 1), ReadBody(spool, inline.Id));
        Assert.Equal(Content(40_000, 2), ReadBody(spool, spilled.Id));
    }

    [Fact]
    public async Task A_body_opened_for_reading_stays_readable_when_its_segment_is_deleted()
    {
        var options = SmallSegments with { RelocateAfter = TimeSpan.Zero, MaintenanceInterval = TimeSpan.FromMilliseconds(50) };
        var spool = Open(options);
        var live = await CommitAsync(spool, Content(8_000, 1));
        using var reader = spool.OpenBody(live.Id);

        await ChurnUntilSegmentAsync(spool, 3);
        await spool.CompleteAsync(live.Id);
        await EventuallyAsync(() => !File.Exists(SegmentPath(1)), Patience, () => "segment 1 still there");

        var copy = new byte[reader.Length];
        for (var done = 0; done < copy.Length;)
        {
            var n = await reader.ReadAsync(copy.AsMemory(done), done);
            Assert.True(n > 0);
            done += n;
        }
        Assert.Equal(Content(8_000, 1), copy);
    }

    [Fact]
    public async Task Readers_of_one_segment_share_a_handle_that_is_closed_after_the_last_reader_once_the_segment_is_gone()
    {
        var options = SmallSegments with { RelocateAfter = TimeSpan.Zero, MaintenanceInterval = TimeSpan.FromMilliseconds(50) };
        var spool = Open(options);
        var first = await CommitAsync(spool, Content(8_000, 1));
        var second = await CommitAsync(spool, Content(9_000, 2));
        var a = spool.OpenBody(first.Id);
        var b = spool.OpenBody(second.Id);
        var segment = SegmentPath(1);
        Assert.Equal(1, OpenHandlesTo(segment)); // one read handle for both readers

        a.Dispose();
        Assert.Throws<ObjectDisposedException>(() => a.Read(new byte[16], 0));
        Assert.Equal(Content(9_000, 2), ReadAll(b)); // the other reader is unaffected

        await ChurnUntilSegmentAsync(spool, 3);
        await spool.CompleteAsync(first.Id);
        await spool.CompleteAsync(second.Id);
        await EventuallyAsync(() => !File.Exists(segment), Patience, () => "segment 1 still there");
        Assert.Equal(1, OpenHandlesTo(segment)); // still open for b, though deleted
        Assert.Equal(Content(9_000, 2), ReadAll(b));

        b.Dispose();
        Assert.Equal(0, OpenHandlesTo(segment));
        spool.Dispose();
    }

    private static byte[] ReadAll(BodyReader reader)
    {
        var copy = new byte[reader.Length];
        for (var done = 0; done < copy.Length;)
        {
            var n = reader.Read(copy.AsSpan(done), done);
            Assert.True(n > 0);
            done += n;
        }
        return copy;
    }

    /// <summary>Read handles this process has open on <paramref name="path"/> (Linux: /proc/self/fd), the committer's excluded.</summary>
    private static int OpenHandlesTo(string path)
    {
        var count = 0;
        foreach (var fd in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            string? target;
            try
            {
                target = new FileInfo(fd).LinkTarget;
            }
            catch (IOException)
            {
                continue; // closed meanwhile
            }
            if (target is null || !(target == path || target == path + " (deleted)")) continue;
            var flags = File.ReadAllLines($"/proc/self/fdinfo/{Path.GetFileName(fd)}").FirstOrDefault(l => l.StartsWith("flags:", StringComparison.Ordinal));
            // O_ACCMODE 0 = read-only: the shared read handle; the committer writes (O_RDWR/O_WRONLY).
            if (flags is not null && (Convert.ToInt32(flags["flags:".Length..].Trim(), 8) & 3) == 0) count++;
        }
        return count;
    }
}
