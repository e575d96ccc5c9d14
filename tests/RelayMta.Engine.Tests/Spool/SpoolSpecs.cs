using System.Buffers;
using System.Collections.Immutable;
using RelayMta.Engine.Spool;

namespace RelayMta.Engine.Tests.Spooling;

public sealed class SpoolSpecs : SpoolTestBase
{
    private static readonly SpoolOptions SmallInline = new() { InlineBodyLimit = 4 * 1024 };

    [Theory]
    [InlineData(1_000, false)]
    [InlineData(4 * 1024, false)] // exactly the limit stays in the journal
    [InlineData(4 * 1024 + 1, true)]
    [InlineData(300_000, true)]
    public async Task A_committed_message_is_recovered_after_a_restart_with_its_envelope_a_fresh_state_and_its_exact_body(int size, bool spills)
    {
        var body = Content(size);
        var spool = Open(SmallInline);
        var id = spool.Ids.Next();
        var incoming = spool.Begin(id);
        incoming.Write(body);
        var envelope = Envelope(id, body.Length, recipients: 3);

        var committed = await spool.CommitAsync(incoming, envelope);

        AssertSameEnvelope(envelope, committed.Envelope);
        AssertSameState(MessageState.New(id, 3), committed.State);
        Assert.Equal(body, ReadBody(spool, id));
        Assert.Equal(spills, File.Exists(BodyFile(id)));

        spool = Reopen(spool, SmallInline);

        var recovered = Assert.Single(spool.Recovered);
        AssertSameEnvelope(envelope, recovered.Envelope);
        AssertSameState(MessageState.New(id, 3), recovered.State);
        Assert.All(recovered.State.Recipients, r => Assert.Same(RecipientStatus.Fresh, r));
        Assert.Equal(body, ReadBody(spool, id));
        Assert.True(spool.Contains(id));
        Assert.Equal(1, spool.Count);
        if (spills)
        {
            Assert.Equal(body, File.ReadAllBytes(BodyFile(id)));
        }
        else
        {
            Assert.Empty(System.IO.Directory.GetFiles(BodiesDir));
        }
    }

    [Fact]
    public async Task Envelope_fields_that_may_be_null_empty_or_unicode_survive_a_restart()
    {
        var spool = Open();
        var id = spool.Ids.Next();
        var envelope = new MailEnvelope(id, DateTimeOffset.FromUnixTimeMilliseconds(0), "", ["пользователь@пример.испытание"],
            "2001:db8::1", "", "UTF8SMTP", null, MessageFlags.Bounce | MessageFlags.SmtpUtf8 | MessageFlags.EightBitContent, 0);

        await spool.CommitAsync(envelope, ReadOnlySpan<byte>.Empty);
        spool = Reopen(spool);

        var recovered = Assert.Single(spool.Recovered);
        AssertSameEnvelope(envelope, recovered.Envelope);
        Assert.True(recovered.Envelope.IsNullSender);
        Assert.Empty(ReadBody(spool, id));
    }

    [Fact]
    public async Task Messages_are_recovered_oldest_first_and_new_ids_sort_after_them()
    {
        var spool = Open();
        var ids = new List<QueueId>();
        for (var i = 0; i < 5; i++) ids.Add((await CommitAsync(spool, Content(100, i))).Id);

        spool = Reopen(spool);

        Assert.Equal(ids, spool.Recovered.Select(e => e.Id));
        Assert.True(string.CompareOrdinal(spool.Ids.Next().Value, ids[^1].Value) > 0);
    }

    [Fact]
    public async Task The_latest_state_wins_after_a_restart()
    {
        var spool = Open(SmallInline);
        var inline = await CommitAsync(spool, Content(500, 1));
        var spilled = await CommitAsync(spool, Content(50_000, 2));
        var at = DateTimeOffset.FromUnixTimeMilliseconds(1_760_000_100_000);
        foreach (var entry in new[] { inline, spilled })
        {
            var first = entry.State with
            {
                Recipients = [new RecipientStatus(RecipientState.Pending, "4.4.1", "connection refused", "mx.example.test", at), RecipientStatus.Fresh],
                Attempts = 1,
                NextAttemptAt = at.AddMinutes(5),
            };
            await spool.UpdateAsync(first);
        }
        var latest = new Dictionary<QueueId, MessageState>();
        foreach (var entry in new[] { inline, spilled })
        {
            latest[entry.Id] = new MessageState(entry.Id,
                [
                    new RecipientStatus(RecipientState.Delivered, "2.0.0", "250 2.0.0 queued as 1234", "mx.example.test", at.AddMinutes(5)),
                    new RecipientStatus(RecipientState.Failed, "5.1.1", "550 5.1.1 no such user", "mx2.example.test", at.AddMinutes(6)),
                ],
                Attempts: 2, NextAttemptAt: at.AddHours(1), Held: true);
            await spool.UpdateAsync(latest[entry.Id]);
            AssertSameState(latest[entry.Id], spool.Find(entry.Id)!.State);
        }

        spool = Reopen(spool, SmallInline);

        Assert.Equal(2, spool.Recovered.Count);
        foreach (var recovered in spool.Recovered)
        {
            AssertSameState(latest[recovered.Id], recovered.State);
            Assert.True(recovered.State.IsComplete);
        }
        Assert.Equal(Content(500, 1), ReadBody(spool, inline.Id));
        Assert.Equal(Content(50_000, 2), ReadBody(spool, spilled.Id));
    }

    [Fact]
    public async Task A_completed_message_is_gone_after_a_restart_and_its_body_file_is_deleted()
    {
        var spool = Open(SmallInline);
        var keep = await CommitAsync(spool, Content(20_000, 1));
        var inline = await CommitAsync(spool, Content(200, 2));
        var spilled = await CommitAsync(spool, Content(20_000, 3));
        Assert.True(File.Exists(BodyFile(spilled.Id)));

        await spool.CompleteAsync(inline.Id);
        await spool.CompleteAsync(spilled.Id);

        Assert.False(spool.Contains(spilled.Id));
        Assert.Null(spool.Find(inline.Id));
        Assert.Throws<KeyNotFoundException>(() => spool.OpenBody(spilled.Id));
        await EventuallyAsync(() => !File.Exists(BodyFile(spilled.Id)), TimeSpan.FromSeconds(5), () => "body file still there");

        spool = Reopen(spool, SmallInline);

        Assert.Equal([keep.Id], spool.Recovered.Select(e => e.Id));
        Assert.False(File.Exists(BodyFile(spilled.Id)));
        Assert.True(File.Exists(BodyFile(keep.Id)));
        Assert.Equal(Content(20_000, 1), ReadBody(spool, keep.Id));
    }

    [Fact]
    public async Task A_body_written_with_size_hints_is_stored_without_gaps()
    {
        // IBufferWriter callers may ask for more room than the current chunk has left.
        var spool = Open();
        var expected = new List<byte>();
        var id = spool.Ids.Next();
        var incoming = spool.Begin(id);
        var random = new Random(7);
        for (var i = 0; i < 40; i++)
        {
            var want = random.Next(1, 3000);
            var span = incoming.GetSpan(want);
            Assert.True(span.Length >= want);
            var piece = Content(want, i);
            piece.CopyTo(span);
            incoming.Advance(want);
            expected.AddRange(piece);
        }
        await spool.CommitAsync(incoming, Envelope(id, expected.Count));
        var next = await CommitAsync(spool, Content(3000, 99));

        Assert.Equal(expected.ToArray(), ReadBody(spool, id));
        spool = Reopen(spool);
        Assert.Equal(2, spool.Recovered.Count);
        Assert.Equal(expected.ToArray(), ReadBody(spool, id));
        Assert.Equal(Content(3000, 99), ReadBody(spool, next.Id));
    }

    [Fact]
    public async Task Two_hundred_concurrent_commits_all_complete_share_flushes_and_are_all_recovered()
    {
        var spool = Open(SmallInline);
        var bodies = new Dictionary<QueueId, byte[]>();
        var pending = new List<(IncomingMessage Body, MailEnvelope Envelope)>();
        for (var i = 0; i < 200; i++)
        {
            var id = spool.Ids.Next();
            var body = Content(i % 10 == 0 ? 10_000 : 300 + i, i); // a few spill
            bodies[id] = body;
            var incoming = spool.Begin(id);
            incoming.Write(body);
            pending.Add((incoming, Envelope(id, body.Length)));
        }

        var commits = await Task.WhenAll(pending.Select(p => Task.Run(() => spool.CommitAsync(p.Body, p.Envelope))));

        Assert.Equal(bodies.Keys.Select(k => k.Value).Order(StringComparer.Ordinal), commits.Select(c => c.Id.Value).Order(StringComparer.Ordinal));
        var (committed, syncs) = spool.CommitCounters;
        Assert.Equal(200, committed);
        Assert.InRange(syncs, 1, committed - 1);

        spool = Reopen(spool, SmallInline);

        Assert.Equal(200, spool.Recovered.Count);
        foreach (var entry in spool.Recovered) Assert.Equal(bodies[entry.Id], ReadBody(spool, entry.Id));
    }

    [Fact]
    public async Task Writing_moves_to_a_zero_filled_segment_and_a_crash_image_of_it_recovers_every_message()
    {
        // Past 256 KiB into a growing segment the spool prepares a zero-filled one and moves to it, so
        // flushes stop carrying file-size changes. A crash leaves its unused end as zeros.
        var options = new SpoolOptions { SegmentSize = 1024 * 1024 };
        var spool = Open(options);
        var bodies = new Dictionary<QueueId, byte[]>();
        for (var i = 0; i < 1000 && !spool.ActiveSegmentPreallocated; i++)
        {
            var body = Content(8 * 1024, i);
            bodies[(await CommitAsync(spool, body)).Id] = body;
        }
        Assert.True(spool.ActiveSegmentPreallocated, "never moved to a preallocated segment");
        Assert.Equal(1, spool.SegmentCounters.ZeroFilled);
        for (var i = 0; i < 20; i++)
        {
            var body = Content(3000 + i, 1000 + i);
            bodies[(await CommitAsync(spool, body)).Id] = body;
        }
        var active = SegmentFiles()[^1];
        Assert.Equal(options.SegmentSize, new FileInfo(active).Length); // preallocated: longer than its records

        var image = CrashImage();
        spool.Dispose();
        var recovered = OpenAt(image, options);

        Assert.Equal(bodies.Keys.Select(k => k.Value).Order(StringComparer.Ordinal), recovered.Recovered.Select(e => e.Id.Value));
        foreach (var entry in recovered.Recovered) Assert.Equal(bodies[entry.Id], ReadBody(recovered, entry.Id));
        // The zero tail was cut at recovery; new commits go on after the recovered records.
        var next = await CommitAsync(recovered, Content(500, 7));
        recovered = ReopenAt(recovered, image, options);
        Assert.Equal(bodies.Count + 1, recovered.Recovered.Count);
        Assert.Equal(Content(500, 7), ReadBody(recovered, next.Id));
    }

    [Fact]
    public async Task A_recycled_segment_never_brings_back_the_records_it_held_before()
    {
        // Freed segments of full size are reused as they are: their old records stay on disk behind
        // the new ones until overwritten. Each segment's checksums are seeded with its id, so after a
        // crash the old records read as the end of the journal, never as messages.
        var options = new SpoolOptions { SegmentSize = 512 * 1024, InlineBodyLimit = 64 * 1024 };
        var spool = Open(options);
        for (var i = 0; i < 3000 && !(spool.ActiveSegmentPreallocated && EndsInOldRecords(SegmentFiles()[^1])); i++)
        {
            var done = await CommitAsync(spool, Content(16 * 1024, i));
            await spool.CompleteAsync(done.Id);
        }
        Assert.True(spool.SegmentCounters.Recycled >= 1, "no segment was recycled");
        Assert.True(spool.ActiveSegmentPreallocated && EndsInOldRecords(SegmentFiles()[^1]), "not writing into a recycled segment");
        var keep = new Dictionary<QueueId, byte[]>();
        for (var i = 0; i < 5; i++)
        {
            var body = Content(700 + i, 5000 + i);
            keep[(await CommitAsync(spool, body)).Id] = body;
        }

        var image = CrashImage();
        spool.Dispose();
        var recovered = OpenAt(image, options);

        Assert.Equal(keep.Keys.Select(k => k.Value).Order(StringComparer.Ordinal), recovered.Recovered.Select(e => e.Id.Value));
        foreach (var entry in recovered.Recovered) Assert.Equal(keep[entry.Id], ReadBody(recovered, entry.Id));
    }

    [Fact]
    public async Task Records_read_back_only_in_the_segment_they_were_written_into()
    {
        // What makes recycling safe: a recycled file's old records, wherever they line up, do not
        // check out under the new segment's id, so recovery takes them for the end of the journal.
        var spool = Open();
        for (var i = 0; i < 3; i++) await CommitAsync(spool, Content(400, i));
        spool.Dispose();
        var written = Assert.Single(SegmentFiles());
        var id = long.Parse(Path.GetFileNameWithoutExtension(written), System.Globalization.CultureInfo.InvariantCulture);
        File.Move(written, Path.Combine(JournalDir, (id + 5).ToString("D12", System.Globalization.CultureInfo.InvariantCulture) + ".log"));

        spool = Open();

        Assert.Empty(spool.Recovered);
    }

    // A zero-filled segment ends in zeros; a recycled one in the records it held before.
    private static bool EndsInOldRecords(string segment)
    {
        using var file = new FileStream(segment, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        if (file.Length < 4096) return false;
        var tail = new byte[4096];
        file.Position = file.Length - tail.Length;
        file.ReadExactly(tail);
        return tail.AsSpan().IndexOfAnyExcept((byte)0) >= 0;
    }

    [Fact]
    public void Opening_a_spool_that_is_already_open_throws_until_the_first_is_closed()
    {
        var first = Open();

        var e = Assert.Throws<IOException>(() => Spool.Spool.Open(Root, new SpoolOptions(), Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance));
        Assert.Contains("in use", e.Message);

        first.Dispose();
        var second = Open();
        Assert.Empty(second.Recovered);
    }

    [Fact]
    public async Task A_commit_that_cannot_be_made_durable_fails_and_the_spool_goes_on()
    {
        var spool = Open(SmallInline);
        var before = await CommitAsync(spool, Content(100, 1));
        var id = spool.Ids.Next();
        var incoming = spool.Begin(id);
        incoming.Write(Content(10_000, 2)); // spills to bodies/<id>
        // The bodies directory vanishes under us: its flush at commit time cannot be done.
        File.Delete(BodyFile(id));
        System.IO.Directory.Delete(BodiesDir);
        var journalLength = new FileInfo(SegmentFiles()[^1]).Length;

        var failure = await Assert.ThrowsAsync<IOException>(() => spool.CommitAsync(incoming, Envelope(id, incoming.Length)));

        Assert.Contains("could not store", failure.Message);
        Assert.False(spool.Contains(id));
        Assert.Equal(journalLength, new FileInfo(SegmentFiles()[^1]).Length);
        var after = await CommitAsync(spool, Content(100, 3));
        Assert.Equal(Content(100, 3), ReadBody(spool, after.Id));

        spool = Reopen(spool, SmallInline);

        Assert.Equal([before.Id, after.Id], spool.Recovered.Select(e => e.Id));
        Assert.Equal(Content(100, 1), ReadBody(spool, before.Id));
        Assert.Equal(Content(100, 3), ReadBody(spool, after.Id));
    }

    [Fact]
    public async Task A_commit_whose_envelope_does_not_match_the_body_is_refused()
    {
        var spool = Open();
        var id = spool.Ids.Next();
        var incoming = spool.Begin(id);
        incoming.Write(Content(10));

        // Refused on the caller's thread, before anything is queued.
        Assert.Throws<ArgumentException>(() => { _ = spool.CommitAsync(incoming, Envelope(id, 11)); });
        Assert.Throws<ArgumentException>(() => { _ = spool.CommitAsync(incoming, Envelope(spool.Ids.Next(), 10)); });
        await spool.CommitAsync(incoming, Envelope(id, 10));
        Assert.True(spool.Contains(id));
    }

    [Fact]
    public async Task Requests_after_dispose_fail_instead_of_hanging()
    {
        var spool = Open(SmallInline);
        var id = spool.Ids.Next();
        var incoming = spool.Begin(id);
        incoming.Write(Content(10_000));
        spool.Dispose();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => spool.CommitAsync(incoming, Envelope(id, 10_000)));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => spool.CompleteAsync(id));
        Assert.False(File.Exists(BodyFile(id)));
    }

    [Fact]
    public async Task A_journal_that_cannot_be_read_fails_the_open_without_keeping_the_directory_locked()
    {
        var spool = Open();
        await CommitAsync(spool, Content(100));
        spool.Dispose();
        // A well-framed record of a type this version does not know.
        var segment = SegmentFiles()[^1];
        byte[] payload = [9, 1, 2, 3];
        var record = new byte[JournalCodec.FrameHeader + payload.Length];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(record, (uint)payload.Length);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(4), ~JournalCodec.Crc(JournalCodec.SeedFor(long.Parse(Path.GetFileNameWithoutExtension(segment))), payload));
        payload.CopyTo(record, JournalCodec.FrameHeader);
        await using (var stream = new FileStream(segment, FileMode.Append)) await stream.WriteAsync(record);

        Assert.Throws<InvalidDataException>(() => Open());

        File.Delete(segment);
        var again = Open();
        Assert.Empty(again.Recovered);
    }
}
