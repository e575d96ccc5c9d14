using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;

namespace RelayMta.Engine.Spool;

/// <summary>
/// The durable queue. Messages, their per-recipient progress and their removal are records in an
/// append-only journal split into segments (<c>journal/NNNNNNNNNNNN.log</c>); bodies over the inline
/// limit live in <c>bodies/QUEUEID</c>. One committer thread writes every record: it takes all the
/// requests waiting, writes them with one gathered write and makes them durable with one
/// <c>fdatasync</c> (group commit), then completes their tasks. So a 250 after DATA costs a share of
/// one flush, not a flush of its own, however many sessions finish at once.
/// <para>
/// Segments are deleted oldest first once nothing alive refers to them; messages that outlive their
/// segment by <see cref="SpoolOptions.RelocateAfter"/> are moved out so deletion can go on.
/// On open, the journal is replayed (a torn record at the tail is cut off) and the messages not yet
/// final are returned in <see cref="Recovered"/>.
/// </para>
/// </summary>
public sealed class Spool : IDisposable
{
    private const string SegmentExtension = ".log";

    private readonly string _journalDir;
    private readonly string _bodiesDir;
    private readonly SpoolOptions _options;
    private readonly ILogger _log;
    private readonly FileStream _lock;
    private readonly ConcurrentQueue<Request> _requests = new();
    // No spinning: the committer sleeps until work arrives rather than burn a core on a 2-core box.
    private readonly ManualResetEventSlim _signal = new(false, spinCount: 1);
    private readonly Thread _committer;
    private readonly object _indexLock = new();
    private readonly Dictionary<QueueId, Location> _index = new();
    private readonly SortedDictionary<long, Segment> _segments = new();
    private readonly ArrayBufferWriter<byte> _scratch = new(64 * 1024);
    private Segment _active = null!;
    private volatile bool _stopping;
    // The active segment moves to a preallocated one once this much has been written to it.
    private const long PrepareAfter = 256 * 1024;
    private volatile string? _preparedPath;
    private volatile bool _preparing;
    private readonly bool _readOnly;
    private volatile bool _stopped; // the committer thread has exited
    private long _commits;
    private long _syncs;
    private long _flushTicks;
    private long _batchTicks;
    private long _zeroFilled;
    private long _recycled;

    private Spool(string directory, SpoolOptions options, ILogger log, bool readOnly = false)
    {
        Directory = Path.GetFullPath(directory);
        _options = options;
        _log = log;
        _readOnly = readOnly;
        _journalDir = Path.Combine(Directory, "journal");
        _bodiesDir = Path.Combine(Directory, "bodies");
        if (readOnly && !System.IO.Directory.Exists(_journalDir)) throw new DirectoryNotFoundException($"{Directory} is not a spool (no journal/)");
        CreateDirectory(Directory);
        CreateDirectory(_journalDir);
        CreateDirectory(_bodiesDir);
        try
        {
            // FileShare.None takes an exclusive lock on Unix (flock), so two servers never share a spool.
            _lock = new FileStream(Path.Combine(Directory, "spool.lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new IOException($"the spool {Directory} is in use by another process ({e.Message})", e);
        }
        try
        {
            Recovered = Recover();
        }
        catch
        {
            // Otherwise the lock stays taken until the finalizer runs, and a retry says "in use".
            _active?.Handle?.Dispose();
            _lock.Dispose();
            throw;
        }
        _committer = new Thread(Run) { IsBackground = true, Name = "spool-committer" };
        if (!readOnly) _committer.Start();
    }

    /// <summary>
    /// Reads a stopped server's spool without changing anything (no torn tail is cut, nothing is
    /// deleted, no segment is started): the messages it holds, with their latest state. Throws
    /// <see cref="IOException"/> when a running server holds the spool.
    /// </summary>
    public static IReadOnlyList<SpoolEntry> Inspect(string directory, ILogger log)
    {
        var spool = new Spool(directory, new SpoolOptions(), log, readOnly: true);
        try
        {
            return spool.Recovered;
        }
        finally
        {
            spool._lock.Dispose();
        }
    }

    /// <summary>The spool's directory (absolute).</summary>
    public string Directory { get; }

    /// <summary>Queue ids for new messages.</summary>
    public QueueIdGenerator Ids { get; } = new();

    /// <summary>The messages found alive when the spool was opened, oldest first.</summary>
    public IReadOnlyList<SpoolEntry> Recovered { get; }

    /// <summary>Messages currently held.</summary>
    public int Count
    {
        get
        {
            lock (_indexLock) return _index.Count;
        }
    }

    /// <summary>Journal segments on disk.</summary>
    public int SegmentCount
    {
        get
        {
            lock (_indexLock) return _segments.Count;
        }
    }

    /// <summary>Records committed and flushes done since open (group commit shows as commits &gt; syncs).</summary>
    public (long Commits, long Syncs) CommitCounters => (Interlocked.Read(ref _commits), Interlocked.Read(ref _syncs));

    /// <summary>Segments zero-filled ahead of use, and freed segments reused, since open.</summary>
    internal (long ZeroFilled, long Recycled) SegmentCounters => (Interlocked.Read(ref _zeroFilled), Interlocked.Read(ref _recycled));

    /// <summary>Whether the segment being written was preallocated (zero-filled or recycled).</summary>
    internal bool ActiveSegmentPreallocated => Volatile.Read(ref _active).Preallocated;

    /// <summary>Time spent in fdatasync, and in whole commit batches (write, flush, bookkeeping), since open.</summary>
    public (TimeSpan Flushing, TimeSpan Batches) CommitTimes =>
        (Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _flushTicks)), Stopwatch.GetElapsedTime(0, Interlocked.Read(ref _batchTicks)));

    /// <summary>Opens (creating if needed) and recovers the spool in <paramref name="directory"/>.</summary>
    public static Spool Open(string directory, SpoolOptions options, ILogger log) => new(directory, options, log);

    /// <summary>Starts a body for a message that will be stored under <paramref name="id"/>.</summary>
    public IncomingMessage Begin(QueueId id) => new(id, _bodiesDir, _options.InlineBodyLimit);

    /// <summary>
    /// Stores a message durably. Takes ownership of <paramref name="body"/>. The task completes once
    /// the body and envelope are on disk (fsync of data and directory), and fails if they could not
    /// be; only then may the client be told 250.
    /// </summary>
    public Task<SpoolEntry> CommitAsync(IncomingMessage body, MailEnvelope envelope)
    {
        if (envelope.BodyLength != body.Length) throw new ArgumentException("envelope.BodyLength must equal the body's length");
        if (envelope.Id != body.Id) throw new ArgumentException("the envelope and body ids differ");
        var request = new Request(RecordType.Message, envelope.Id)
        {
            Envelope = envelope,
            State = MessageState.New(envelope.Id, envelope.Recipients.Length),
            Body = body,
        };
        return Submit(request).ContinueWith(static (t, s) =>
        {
            t.GetAwaiter().GetResult();
            var r = (Request)s!;
            return new SpoolEntry(r.Envelope!, r.State!);
        }, request, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    /// <summary>Stores a message whose whole body is in memory (bounces we generate).</summary>
    public Task<SpoolEntry> CommitAsync(MailEnvelope envelope, ReadOnlySpan<byte> body)
    {
        var incoming = Begin(envelope.Id);
        incoming.Write(body);
        return CommitAsync(incoming, envelope with { BodyLength = incoming.Length });
    }

    /// <summary>Records a message's new state (per-recipient results, schedule, hold).</summary>
    public Task UpdateAsync(MessageState state) =>
        Submit(new Request(RecordType.State, state.Id) { State = state });

    /// <summary>Records that every recipient of the message is final; its data may go.</summary>
    public Task CompleteAsync(QueueId id) => Submit(new Request(RecordType.Done, id));

    /// <summary>Whether the spool holds <paramref name="id"/>.</summary>
    public bool Contains(QueueId id)
    {
        lock (_indexLock) return _index.ContainsKey(id);
    }

    /// <summary>The current envelope and state of a message, as last committed.</summary>
    public SpoolEntry? Find(QueueId id)
    {
        lock (_indexLock) return _index.TryGetValue(id, out var l) ? new SpoolEntry(l.Envelope, l.State) : null;
    }

    /// <summary>
    /// Whether the spool can take new messages: the committer is running and a file can be created
    /// in the spool directory (disk not read-only).
    /// </summary>
    public bool IsWritable()
    {
        if (_stopping || !_committer.IsAlive) return false;
        var probe = Path.Combine(Directory, ".probe-" + Environment.ProcessId);
        try
        {
            File.WriteAllBytes(probe, [1]);
            File.Delete(probe);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Every message held now, with its latest committed state (the queue manager rebuilds from this after a restart).</summary>
    public IReadOnlyList<SpoolEntry> Snapshot()
    {
        lock (_indexLock)
            return _index.Values.OrderBy(l => l.Envelope.Id.Value, StringComparer.Ordinal).Select(l => new SpoolEntry(l.Envelope, l.State)).ToList();
    }

    /// <summary>Opens a stored body for reading.</summary>
    public BodyReader OpenBody(QueueId id)
    {
        lock (_indexLock)
        {
            if (!_index.TryGetValue(id, out var loc)) throw new KeyNotFoundException($"message {id} is not in the spool");
            // Opened under the lock that segment deletion takes, so the file is there to open.
            if (loc.External is not null)
                return new BodyReader(OpenRead(Path.Combine(_bodiesDir, loc.External)), 0, loc.BodyLength);
            // One read handle per segment, shared by its readers (pread needs no position of its
            // own): no open, lock and close per delivery. Counted, so a segment being read is never
            // recycled (overwritten) under a reader, and its handle is closed after the last one.
            var segment = _segments[loc.MessageSegment];
            segment.ReadHandle ??= OpenRead(segment.Path);
            var reader = new BodyReader(segment.ReadHandle, loc.BodyOffset, loc.BodyLength, () => ReleaseReader(segment), ownsHandle: false);
            Interlocked.Increment(ref segment.Readers);
            return reader;
        }
    }

    private void ReleaseReader(Segment segment)
    {
        lock (_indexLock)
        {
            if (Interlocked.Decrement(ref segment.Readers) == 0 && segment.Removed) CloseReadHandle(segment);
        }
    }

    private static void CloseReadHandle(Segment segment)
    {
        segment.ReadHandle?.Dispose();
        segment.ReadHandle = null;
    }

    /// <summary>Finishes pending writes and closes the spool.</summary>
    public void Dispose()
    {
        if (_stopping) return;
        _stopping = true;
        _signal.Set();
        _committer.Join();
        _stopped = true;
        Interlocked.MemoryBarrier();
        FailQueued(); // requests that slipped in after the committer's last look
        _active.Handle?.Dispose();
        lock (_indexLock)
        {
            foreach (var segment in _segments.Values)
            {
                segment.Removed = true;
                if (Volatile.Read(ref segment.Readers) == 0) CloseReadHandle(segment);
            }
        }
        _lock.Dispose();
        // _signal is not disposed: a Submit racing with Dispose may still Set it (it holds no handle).
    }

    private Task Submit(Request request)
    {
        if (_stopping)
        {
            request.Body?.Release(deleteSpill: true);
            return Task.FromException(new ObjectDisposedException(nameof(Spool), "the spool is closed"));
        }
        _requests.Enqueue(request);
        _signal.Set();
        // Raced with Dispose and the committer is gone: fail rather than leave the task pending forever.
        if (_stopped) FailQueued();
        return request.Completion.Task;
    }

    private void FailQueued()
    {
        while (_requests.TryDequeue(out var r))
        {
            r.Body?.Release(deleteSpill: true);
            r.Completion.TrySetException(new ObjectDisposedException(nameof(Spool), "the spool is closed"));
        }
    }

    // ---------------------------------------------------------------- committer thread

    private void Run()
    {
        var batch = new List<Request>(256);
        var lastMaintenance = Stopwatch.GetTimestamp();
        while (true)
        {
            _signal.Wait(_options.MaintenanceInterval);
            _signal.Reset();
            var bytes = 0L;
            while (bytes < _options.MaxBatchBytes && _requests.TryDequeue(out var r))
            {
                batch.Add(r);
                bytes += r.Body?.Length ?? 256;
            }
            if (!_requests.IsEmpty) _signal.Set(); // more than one batch's worth waiting

            if (batch.Count > 0)
            {
                try
                {
                    Commit(batch);
                }
                catch (Exception e)
                {
                    // The committer thread must not die: fail this batch and carry on.
                    _log.LogCritical(e, "spool committer: unexpected failure");
                    foreach (var r in batch) r.Completion.TrySetException(new IOException("the spool could not store the record", e));
                }
                batch.Clear();
            }
            else if (_stopping)
            {
                return;
            }

            if (Stopwatch.GetElapsedTime(lastMaintenance) >= _options.MaintenanceInterval)
            {
                lastMaintenance = Stopwatch.GetTimestamp();
                try
                {
                    Maintain();
                }
                catch (Exception e)
                {
                    _log.LogError(e, "spool maintenance failed; will try again");
                }
            }
        }
    }

    private void Commit(List<Request> batch)
    {
        var batchStarted = Stopwatch.GetTimestamp();
        try
        {
            CommitBatch(batch);
        }
        finally
        {
            Interlocked.Add(ref _batchTicks, Stopwatch.GetTimestamp() - batchStarted);
        }
    }

    private void CommitBatch(List<Request> batch)
    {
        var start = _active.Size;
        try
        {
            // Bodies in their own files first: their data, then one flush of the directory.
            var external = false;
            foreach (var r in batch)
            {
                if (r.Body is { IsSpilled: true })
                {
                    r.Body.FlushSpillToDisk();
                    external = true;
                }
            }
            if (external) Fsync.Directory(_bodiesDir);

            var buffers = Encode(batch, start);
            RandomAccess.Write(_active.Handle!, buffers, start);
            var flushStarted = Stopwatch.GetTimestamp();
            Fsync.File(_active.Handle!);
            Interlocked.Add(ref _flushTicks, Stopwatch.GetTimestamp() - flushStarted);
            Interlocked.Increment(ref _syncs);
            Interlocked.Add(ref _commits, batch.Count);
        }
        catch (Exception e)
        {
            _log.LogError(e, "spool commit of {Count} records failed", batch.Count);
            TruncateAfterFailure(start);
            foreach (var r in batch)
            {
                r.Body?.Release(deleteSpill: true);
                r.Completion.TrySetException(new IOException("the spool could not store the record", e));
            }
            return;
        }

        var deadBodies = new List<string>();
        lock (_indexLock)
        {
            foreach (var r in batch) Apply(r, deadBodies);
        }
        foreach (var r in batch)
        {
            r.Body?.Release(deleteSpill: false);
            r.Completion.TrySetResult();
        }
        try
        {
            foreach (var name in deadBodies) DeleteQuietly(Path.Combine(_bodiesDir, name));
            DeleteFreeSegments();
            if (_active.Size >= _options.SegmentSize) Rotate();
            else if (!_active.Preallocated && _active.Size >= PrepareAfter)
            {
                // This segment grows as it is written, so every flush also commits file-size
                // metadata. Move to a preallocated one as soon as one is ready.
                if (_preparedPath is not null) Rotate();
                else PrepareNextSegment();
            }
        }
        catch (Exception e)
        {
            // Housekeeping only: the batch is durable. Space is reclaimed on a later pass.
            _log.LogError(e, "spool housekeeping after a commit failed; will try again");
        }
    }

    /// <summary>Frames every record of the batch; returns the buffers to write, in order.</summary>
    private List<ReadOnlyMemory<byte>> Encode(List<Request> batch, long fileOffset)
    {
        _scratch.ResetWrittenCount();
        var pieces = new List<(int Start, int Length, Request? Body)>(batch.Count * 2);
        var position = fileOffset;
        foreach (var r in batch)
        {
            var recordStart = _scratch.WrittenCount;
            _scratch.GetSpan(JournalCodec.FrameHeader + 1);
            _scratch.Advance(JournalCodec.FrameHeader + 1);
            var inlineBody = r.Type == RecordType.Message && !r.Body!.IsSpilled;
            switch (r.Type)
            {
                case RecordType.Message:
                    JournalCodec.WriteMessageHead(_scratch, r.Envelope!, r.State!, inlineBody ? null : r.Id.Value, r.Body!.Length);
                    break;
                case RecordType.State:
                    JournalCodec.WriteStatePayload(_scratch, r.State!);
                    break;
                case RecordType.Done:
                    JournalCodec.WriteDonePayload(_scratch, r.Id);
                    break;
            }
            var headLength = _scratch.WrittenCount - recordStart - JournalCodec.FrameHeader - 1;
            var frame = System.Runtime.InteropServices.MemoryMarshal.AsMemory(_scratch.WrittenMemory).Span[recordStart..];
            frame[JournalCodec.FrameHeader] = (byte)r.Type;
            var crc = JournalCodec.Crc(JournalCodec.SeedFor(_active.Id), frame[JournalCodec.FrameHeader..]);
            var bodyLength = 0L;
            if (inlineBody)
            {
                foreach (var piece in r.Body!.Segments()) crc = JournalCodec.Crc(crc, piece.Span);
                bodyLength = r.Body.Length;
            }
            var payloadLength = 1 + headLength + bodyLength;
            if (payloadLength > JournalCodec.MaxRecord) throw new IOException("record too large for the journal");
            BinaryPrimitives.WriteUInt32LittleEndian(frame, (uint)payloadLength);
            BinaryPrimitives.WriteUInt32LittleEndian(frame[4..], ~crc);

            r.RecordOffset = position;
            r.BodyOffset = position + JournalCodec.FrameHeader + 1 + headLength;
            position += JournalCodec.FrameHeader + payloadLength;
            r.RecordLength = JournalCodec.FrameHeader + payloadLength;
            pieces.Add((recordStart, _scratch.WrittenCount - recordStart, inlineBody ? r : null));
        }

        var memory = _scratch.WrittenMemory;
        var buffers = new List<ReadOnlyMemory<byte>>(pieces.Count * 2);
        foreach (var (s, l, withBody) in pieces)
        {
            buffers.Add(memory.Slice(s, l));
            if (withBody is not null) buffers.AddRange(withBody.Body!.Segments());
        }
        _active.Size = position;
        return buffers;
    }

    private void Apply(Request r, List<string> deadBodies)
    {
        switch (r.Type)
        {
            case RecordType.Message:
            {
                var body = r.Body!;
                var loc = new Location(r.Envelope!, r.State!)
                {
                    External = body.IsSpilled ? r.Id.Value : null,
                    MessageSegment = _active.Id,
                    BodyOffset = r.BodyOffset,
                    BodyLength = body.Length,
                    StateSegment = _active.Id,
                };
                if (_index.Remove(r.Id, out var old)) Unreference(old);
                _index[r.Id] = loc;
                Reference(loc);
                break;
            }
            case RecordType.State:
                if (_index.TryGetValue(r.Id, out var current))
                {
                    _segments[current.StateSegment].Refs--;
                    current.State = r.State!;
                    current.StateSegment = _active.Id;
                    _active.Refs++;
                }
                break;
            case RecordType.Done:
                if (_index.Remove(r.Id, out var gone))
                {
                    Unreference(gone);
                    if (gone.External is not null) deadBodies.Add(gone.External);
                }
                break;
        }
    }

    // The segment of the Message record is referenced even when the body is in a file of its own:
    // that record holds the envelope, and the State records in later segments mean nothing without it.
    private void Reference(Location loc)
    {
        _segments[loc.MessageSegment].Refs++;
        _segments[loc.StateSegment].Refs++;
    }

    private void Unreference(Location loc)
    {
        _segments[loc.MessageSegment].Refs--;
        _segments[loc.StateSegment].Refs--;
    }

    /// <summary>
    /// Deletes segments oldest-first while nothing alive refers to them. Oldest-first matters: a
    /// Done record must never disappear while the Message record it cancels is still on disk.
    /// </summary>
    private void DeleteFreeSegments()
    {
        while (true)
        {
            Segment oldest;
            lock (_indexLock)
            {
                oldest = _segments.First().Value;
                if (oldest == _active || oldest.Refs > 0) return;
                _segments.Remove(oldest.Id);
                oldest.Removed = true;
                if (Volatile.Read(ref oldest.Readers) == 0) CloseReadHandle(oldest);
                // A free segment of full size becomes the next one (its blocks are written already, so
                // flushes into it need no metadata), unless a body is still being read from it.
                if (_preparedPath is null && !_preparing && Volatile.Read(ref oldest.Readers) == 0 && FileLength(oldest.Path) >= _options.SegmentSize)
                {
                    try
                    {
                        File.Move(oldest.Path, PreparedPath);
                        _preparedPath = PreparedPath;
                        Interlocked.Increment(ref _recycled);
                        continue;
                    }
                    catch (IOException e)
                    {
                        _log.LogWarning(e, "spool: could not recycle journal segment {Path}", oldest.Path);
                    }
                }
                DeleteQuietly(oldest.Path);
            }
        }
    }

    /// <summary>
    /// Seals the active segment (cut to the data written, so a sealed segment never ends in zeros or
    /// stale bytes) and starts the next, preallocated when one is ready.
    /// </summary>
    private void Rotate()
    {
        var previous = _active;
        if (previous.Preallocated)
        {
            RandomAccess.SetLength(previous.Handle!, previous.Size);
            Fsync.File(previous.Handle!);
        }
        previous.Handle!.Dispose();
        previous.Handle = null;
        previous.SealedAt = Stopwatch.GetTimestamp();
        OpenNewSegment(previous.Id + 1);
        DeleteFreeSegments();
    }

    private void OpenNewSegment(long id)
    {
        var path = Path.Combine(_journalDir, id.ToString("D12", CultureInfo.InvariantCulture) + SegmentExtension);
        var preallocated = false;
        if (_preparedPath is { } prepared)
        {
            _preparedPath = null;
            try
            {
                File.Move(prepared, path);
                preallocated = true;
            }
            catch (IOException e)
            {
                _log.LogWarning(e, "spool: could not use the prepared journal segment; starting a plain one");
            }
        }
        var handle = File.OpenHandle(path, preallocated ? FileMode.Open : FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read);
        Fsync.Directory(_journalDir);
        var segment = new Segment(id, path) { Handle = handle, Preallocated = preallocated };
        lock (_indexLock) _segments[id] = segment;
        _active = segment;
    }

    private string PreparedPath => Path.Combine(_journalDir, "prepared.tmp");

    /// <summary>Zero-fills a segment-sized file in the background, for the next rotation.</summary>
    private void PrepareNextSegment()
    {
        if (_preparing || _preparedPath is not null || _readOnly) return;
        _preparing = true;
        var path = PreparedPath;
        var size = _options.SegmentSize;
        Task.Run(() =>
        {
            try
            {
                using (var handle = File.OpenHandle(path, FileMode.Create, FileAccess.ReadWrite))
                {
                    var zeros = new byte[1024 * 1024];
                    for (long offset = 0; offset < size; offset += zeros.Length)
                        RandomAccess.Write(handle, zeros.AsSpan(0, (int)Math.Min(zeros.Length, size - offset)), offset);
                    Fsync.File(handle);
                }
                Interlocked.Increment(ref _zeroFilled);
                _preparedPath = path;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _log.LogWarning(e, "spool: could not prepare the next journal segment; segments will grow as they are written");
                DeleteQuietly(path);
            }
            finally
            {
                _preparing = false;
            }
        });
    }

    private static long FileLength(string path)
    {
        try
        {
            return new FileInfo(path).Length;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    private void TruncateAfterFailure(long size)
    {
        try
        {
            RandomAccess.SetLength(_active.Handle!, size);
            Fsync.File(_active.Handle!);
            _active.Size = size;
        }
        catch (Exception e)
        {
            // Cannot cut the tail: seal this segment as it is and go on in a new one. Recovery
            // stops reading a segment at its first bad record.
            _log.LogError(e, "could not truncate journal segment {Path}; starting a new one", _active.Path);
            try
            {
                Rotate();
            }
            catch (Exception e2)
            {
                _log.LogCritical(e2, "could not start a new journal segment");
            }
        }
    }

    /// <summary>Moves live messages out of the oldest sealed segment once it is old enough.</summary>
    private void Maintain()
    {
        Segment? target = null;
        List<Location> movers;
        lock (_indexLock)
        {
            var oldest = _segments.First().Value;
            if (oldest != _active && oldest.Refs > 0 &&
                Stopwatch.GetElapsedTime(oldest.SealedAt) >= _options.RelocateAfter)
            {
                target = oldest;
            }
            if (target is null) return;
            movers = _index.Values.Where(l => l.MessageSegment == target.Id || l.StateSegment == target.Id).ToList();
        }

        // Copy inline bodies that live in the old segment into files of their own.
        var copied = new List<Location>();
        foreach (var loc in movers)
        {
            if (loc.MessageSegment != target.Id || loc.External is not null) continue;
            var path = Path.Combine(_bodiesDir, loc.Envelope.Id.Value);
            using (var source = OpenRead(target.Path))
            using (var dest = File.OpenHandle(path, FileMode.Create, FileAccess.ReadWrite))
            {
                var buffer = ArrayPool<byte>.Shared.Rent(256 * 1024);
                try
                {
                    for (long done = 0; done < loc.BodyLength;)
                    {
                        var n = RandomAccess.Read(source, buffer.AsSpan(0, (int)Math.Min(buffer.Length, loc.BodyLength - done)), loc.BodyOffset + done);
                        if (n <= 0) throw new IOException($"journal segment {target.Path} ends inside a body");
                        RandomAccess.Write(dest, buffer.AsSpan(0, n), done);
                        done += n;
                    }
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
                Fsync.File(dest);
            }
            copied.Add(loc);
        }
        if (copied.Count > 0) Fsync.Directory(_bodiesDir);

        // One Message record per mover whose envelope is in the old segment, naming its body file
        // and carrying its latest state.
        var batch = new List<Request>(movers.Count);
        foreach (var loc in movers)
        {
            if (loc.MessageSegment != target.Id)
            {
                // Envelope (and body) in a newer segment: only the state needs re-writing.
                batch.Add(new Request(RecordType.State, loc.Envelope.Id) { State = loc.State });
                continue;
            }
            var relocated = new IncomingMessage(loc.Envelope.Id, _bodiesDir, 0);
            relocated.AdoptExisting(loc.BodyLength);
            batch.Add(new Request(RecordType.Message, loc.Envelope.Id) { Envelope = loc.Envelope, State = loc.State, Body = relocated });
        }
        _log.LogInformation("spool: moving {Count} long-lived messages out of journal segment {Segment}", batch.Count, target.Id);
        Commit(batch);
        if (batch.Any(r => r.Completion.Task.IsFaulted))
        {
            // Nothing names the copies; the bodies are still in the old segment (next round tries again).
            foreach (var loc in copied) DeleteQuietly(Path.Combine(_bodiesDir, loc.Envelope.Id.Value));
        }
    }

    // ---------------------------------------------------------------- recovery

    private IReadOnlyList<SpoolEntry> Recover()
    {
        if (!_readOnly && File.Exists(PreparedPath)) DeleteQuietly(PreparedPath); // a preparation a crash cut short
        var files = System.IO.Directory.GetFiles(_journalDir, "*" + SegmentExtension)
            .Select(p => (Path: p, Id: long.TryParse(Path.GetFileNameWithoutExtension(p), NumberStyles.None, CultureInfo.InvariantCulture, out var id) ? id : -1))
            .Where(x => x.Id >= 0)
            .OrderBy(x => x.Id)
            .ToList();
        for (var i = 0; i < files.Count; i++)
        {
            var segment = new Segment(files[i].Id, files[i].Path) { SealedAt = Stopwatch.GetTimestamp() };
            _segments[segment.Id] = segment;
            ReplaySegment(segment, isLast: i == files.Count - 1 && !_readOnly);
        }

        foreach (var loc in _index.Values)
        {
            Reference(loc);
            Ids.Observe(loc.Envelope.Id);
        }

        if (_readOnly)
            return _index.Values.OrderBy(l => l.Envelope.Id.Value, StringComparer.Ordinal).Select(l => new SpoolEntry(l.Envelope, l.State)).ToList();

        // Body files that no live record names: left by a crash before their commit, or by a Done.
        var wanted = new HashSet<string>(_index.Values.Where(l => l.External is not null).Select(l => l.External!), StringComparer.Ordinal);
        foreach (var file in System.IO.Directory.GetFiles(_bodiesDir))
        {
            if (!wanted.Contains(Path.GetFileName(file))) DeleteQuietly(file);
        }

        OpenNewSegment(files.Count == 0 ? 1 : files[^1].Id + 1);
        DeleteFreeSegments();
        var entries = _index.Values.OrderBy(l => l.Envelope.Id.Value, StringComparer.Ordinal)
            .Select(l => new SpoolEntry(l.Envelope, l.State)).ToList();
        if (files.Count > 0)
            _log.LogInformation("spool {Dir}: recovered {Count} queued messages from {Segments} journal segments", Directory, entries.Count, files.Count);
        return entries;
    }

    private void ReplaySegment(Segment segment, bool isLast)
    {
        using var handle = OpenRead(segment.Path, write: isLast);
        var fileLength = RandomAccess.GetLength(handle);
        var header = new byte[JournalCodec.FrameHeader];
        long offset = 0;
        while (offset < fileLength)
        {
            string? problem = null;
            byte[]? payload = null;
            if (fileLength - offset < JournalCodec.FrameHeader)
            {
                problem = "a partial record header";
            }
            else
            {
                RandomAccess.Read(handle, header, offset);
                var length = BinaryPrimitives.ReadUInt32LittleEndian(header);
                var crc = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(4));
                if (length is 0 or > JournalCodec.MaxRecord || length > fileLength - offset - JournalCodec.FrameHeader)
                {
                    problem = "a record cut short";
                }
                else
                {
                    payload = new byte[length];
                    RandomAccess.Read(handle, payload, offset + JournalCodec.FrameHeader);
                    if (~JournalCodec.Crc(JournalCodec.SeedFor(segment.Id), payload) != crc) problem = "a record with a bad checksum";
                }
            }

            if (problem is not null)
            {
                if (isLast)
                {
                    // The tail of the last segment was being written when we stopped: nothing there
                    // was acknowledged (acknowledgement follows the flush), so cut it off. Zeros are
                    // just the unused end of a preallocated segment.
                    if (header.AsSpan().IndexOfAnyExcept((byte)0) < 0 || fileLength - offset < JournalCodec.FrameHeader && IsZeros(handle, offset, fileLength))
                        _log.LogDebug("spool: journal segment {Path} ends at offset {Offset}", segment.Path, offset);
                    else
                        _log.LogWarning("spool: journal segment {Path} ends with {Problem} at offset {Offset}; truncating the torn tail",
                            segment.Path, problem, offset);
                    RandomAccess.SetLength(handle, offset);
                    Fsync.File(handle);
                }
                else
                {
                    _log.LogError("spool: journal segment {Path} has {Problem} at offset {Offset}; the rest of this segment is skipped",
                        segment.Path, problem, offset);
                }
                break;
            }

            ReplayRecord(segment, payload!, offset);
            offset += JournalCodec.FrameHeader + payload!.Length;
        }
        segment.Size = offset;
    }

    private void ReplayRecord(Segment segment, byte[] payload, long recordOffset)
    {
        var type = (RecordType)payload[0];
        var data = payload.AsSpan(1);
        switch (type)
        {
            case RecordType.Message:
            {
                var head = JournalCodec.ReadMessageHead(data);
                var loc = new Location(head.Envelope, head.State)
                {
                    External = head.ExternalBody,
                    MessageSegment = segment.Id,
                    BodyOffset = recordOffset + JournalCodec.FrameHeader + 1 + head.HeadLength,
                    BodyLength = head.BodyLength,
                    StateSegment = segment.Id,
                };
                if (head.ExternalBody is null && head.HeadLength + head.BodyLength != data.Length)
                    throw new InvalidDataException($"message {head.Envelope.Id} in {segment.Path}: body length does not match its record");
                if (head.ExternalBody is not null && !QueueId.IsWellFormed(head.ExternalBody))
                    throw new InvalidDataException($"message {head.Envelope.Id} in {segment.Path}: bad body file name");
                _index[head.Envelope.Id] = loc;
                break;
            }
            case RecordType.State:
            {
                var state = JournalCodec.ReadStatePayload(data);
                if (_index.TryGetValue(state.Id, out var loc))
                {
                    loc.State = state;
                    loc.StateSegment = segment.Id;
                }
                break;
            }
            case RecordType.Done:
                _index.Remove(JournalCodec.ReadDonePayload(data));
                break;
            default:
                throw new InvalidDataException($"unknown journal record type {(byte)type} in {segment.Path}");
        }
    }

    // ---------------------------------------------------------------- helpers

    private static bool IsZeros(SafeFileHandle handle, long from, long to)
    {
        Span<byte> tail = stackalloc byte[JournalCodec.FrameHeader];
        var n = RandomAccess.Read(handle, tail[..(int)(to - from)], from);
        return tail[..n].IndexOfAnyExcept((byte)0) < 0;
    }

    private static SafeFileHandle OpenRead(string path, bool write = false) =>
        File.OpenHandle(path, FileMode.Open, write ? FileAccess.ReadWrite : FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);

    private static void CreateDirectory(string path)
    {
        if (System.IO.Directory.Exists(path)) return;
        System.IO.Directory.CreateDirectory(path);
        var parent = Path.GetDirectoryName(path);
        if (parent is not null) Fsync.Directory(parent);
    }

    private void DeleteQuietly(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException e)
        {
            _log.LogWarning(e, "spool: could not delete {Path}", path);
        }
    }

    private sealed class Request(RecordType type, QueueId id)
    {
        public RecordType Type { get; } = type;
        public QueueId Id { get; } = id;
        public MailEnvelope? Envelope { get; init; }
        public MessageState? State { get; init; }
        public IncomingMessage? Body { get; init; }
        public long RecordOffset { get; set; }
        public long RecordLength { get; set; }
        public long BodyOffset { get; set; }
        public TaskCompletionSource Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed class Location(MailEnvelope envelope, MessageState state)
    {
        public MailEnvelope Envelope { get; } = envelope;
        public MessageState State { get; set; } = state;
        public string? External { get; init; }
        /// <summary>The segment holding the Message record (and the body, when <see cref="External"/> is null).</summary>
        public long MessageSegment { get; init; }
        public long BodyOffset { get; init; }
        public long BodyLength { get; init; }
        public long StateSegment { get; set; }
    }

    private sealed class Segment(long id, string path)
    {
        public int Readers;
        public long Id { get; } = id;
        public string Path { get; } = path;
        public SafeFileHandle? Handle { get; set; }
        /// <summary>Shared by the body readers of this segment; closed when it is removed and the last reader is done.</summary>
        public SafeFileHandle? ReadHandle { get; set; }
        /// <summary>Out of the index: no new readers; the last one closes <see cref="ReadHandle"/>.</summary>
        public bool Removed { get; set; }
        /// <summary>Bytes of records written (a preallocated file is longer).</summary>
        public long Size { get; set; }
        public int Refs { get; set; }
        public long SealedAt { get; set; }
        /// <summary>Written over zero-filled or recycled blocks, so flushes carry no size change.</summary>
        public bool Preallocated { get; init; }
    }
}
