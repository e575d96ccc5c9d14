using System.Buffers;
using Microsoft.Win32.SafeHandles;

namespace RelayMta.Engine.Spool;

/// <summary>
/// The body of a message being received: the sink DATA content is written into. Small bodies stay
/// in pooled memory and go into the journal whole at commit; a body that grows past the inline
/// limit is spilled to its own file under <c>bodies/</c> as it arrives, so memory per session is
/// bounded whatever the message size. Single-threaded: owned by one session.
/// </summary>
public sealed class IncomingMessage : IBufferWriter<byte>, IDisposable
{
    private const int FirstChunk = 4096;
    private const int MaxChunk = 64 * 1024;

    private readonly string _bodiesDir;
    private readonly int _inlineLimit;
    private readonly List<byte[]> _chunks = new(4);
    private readonly List<int> _filled = new(4); // bytes used in each chunk but the last (a size hint can leave room unused)
    private int _lastUsed; // bytes used in the last chunk
    private long _length;
    private SafeFileHandle? _spill;
    private long _spilled; // bytes written to the spill file
    private bool _adopted; // the file belongs to a stored message: never ours to delete
    private bool _disposed;

    internal IncomingMessage(QueueId id, string bodiesDir, int inlineLimit)
    {
        Id = id;
        _bodiesDir = bodiesDir;
        _inlineLimit = inlineLimit;
    }

    /// <summary>The queue id this body will be stored under.</summary>
    public QueueId Id { get; }

    /// <summary>Bytes written so far.</summary>
    public long Length => _length;

    /// <summary>Bytes written before the content (our trace header), so header checks can skip them.</summary>
    public int PrefixLength { get; private set; }

    /// <summary>True once the body lives in its own file.</summary>
    internal bool IsSpilled => _spill is not null;

    internal string SpillPath => Path.Combine(_bodiesDir, Id.Value);

    internal SafeFileHandle? SpillHandle => _spill;

    /// <summary>Writes the trace header that goes before the content.</summary>
    public void WritePrefix(ReadOnlySpan<byte> prefix)
    {
        if (_length != 0) throw new InvalidOperationException("the prefix must come first");
        this.Write(prefix);
        PrefixLength = prefix.Length;
    }

    /// <inheritdoc />
    public void Advance(int count)
    {
        if (count < 0 || _chunks.Count == 0 || _lastUsed + count > _chunks[^1].Length) throw new ArgumentOutOfRangeException(nameof(count));
        _lastUsed += count;
        _length += count;
        if (_spill is null && _length > _inlineLimit) Spill();
        else if (_spill is not null && _lastUsed == _chunks[^1].Length) FlushStaging();
    }

    /// <inheritdoc />
    public Memory<byte> GetMemory(int sizeHint = 0) => Ensure(sizeHint).AsMemory(_lastUsed);

    /// <inheritdoc />
    public Span<byte> GetSpan(int sizeHint = 0) => Ensure(sizeHint).AsSpan(_lastUsed);

    /// <summary>Copies up to <paramref name="destination"/>.Length bytes starting at <paramref name="offset"/>.</summary>
    public int CopyTo(long offset, Span<byte> destination)
    {
        if (_spill is not null)
        {
            FlushStaging();
            return RandomAccess.Read(_spill, destination, offset);
        }
        var copied = 0;
        var position = 0L;
        for (var i = 0; i < _chunks.Count; i++)
        {
            var used = Used(i);
            if (offset < position + used && copied < destination.Length)
            {
                var start = (int)Math.Max(0, offset - position);
                var n = Math.Min(used - start, destination.Length - copied);
                _chunks[i].AsSpan(start, n).CopyTo(destination[copied..]);
                copied += n;
            }
            position += used;
        }
        return copied;
    }

    /// <summary>The in-memory pieces, in order (only when not spilled).</summary>
    internal IEnumerable<ReadOnlyMemory<byte>> Segments()
    {
        for (var i = 0; i < _chunks.Count; i++)
        {
            var used = Used(i);
            if (used > 0) yield return _chunks[i].AsMemory(0, used);
        }
    }

    /// <summary>Makes this body stand for a body file already on disk (the spool moving a message out of the journal).</summary>
    internal void AdoptExisting(long length)
    {
        _spill = File.OpenHandle(SpillPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        _adopted = true;
        _spilled = length;
        _length = length;
    }

    /// <summary>Writes out whatever is buffered and flushes the spill file to disk (commit time).</summary>
    internal void FlushSpillToDisk()
    {
        if (_spill is null) return;
        FlushStaging();
        Fsync.File(_spill);
    }

    /// <summary>
    /// Returns pooled memory and closes the spill file; <paramref name="deleteSpill"/> removes it too,
    /// unless it was adopted (a failed relocation must not delete the body of a message still stored).
    /// </summary>
    internal void Release(bool deleteSpill)
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var chunk in _chunks) ArrayPool<byte>.Shared.Return(chunk);
        _chunks.Clear();
        _filled.Clear();
        if (_spill is not null)
        {
            _spill.Dispose();
            _spill = null;
            if (deleteSpill && !_adopted)
            {
                try
                {
                    File.Delete(SpillPath);
                }
                catch (IOException)
                {
                    // recovery removes body files that no journal record names
                }
            }
        }
    }

    /// <summary>Discards the message (refused, or the session ended before commit).</summary>
    public void Dispose() => Release(deleteSpill: true);

    private byte[] Ensure(int sizeHint)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (sizeHint < 1) sizeHint = 1;
        if (_chunks.Count > 0 && _chunks[^1].Length - _lastUsed >= sizeHint) return _chunks[^1];
        if (_spill is not null)
        {
            FlushStaging();
            if (_chunks[^1].Length >= sizeHint) return _chunks[^1];
        }
        var size = _chunks.Count == 0 ? FirstChunk : Math.Min(MaxChunk, _chunks[^1].Length * 4);
        var chunk = ArrayPool<byte>.Shared.Rent(Math.Max(size, sizeHint));
        if (_spill is not null)
        {
            ArrayPool<byte>.Shared.Return(_chunks[^1]);
            _chunks[^1] = chunk;
        }
        else
        {
            if (_chunks.Count > 0) _filled.Add(_lastUsed);
            _chunks.Add(chunk);
        }
        _lastUsed = 0;
        return chunk;
    }

    private void Spill()
    {
        _spill = File.OpenHandle(SpillPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read);
        // Everything but the last chunk goes out now; the last one becomes the staging buffer.
        var offset = 0L;
        for (var i = 0; i < _chunks.Count; i++)
        {
            var used = Used(i);
            RandomAccess.Write(_spill, _chunks[i].AsSpan(0, used), offset);
            offset += used;
        }
        _spilled = offset;
        var last = _chunks[^1];
        for (var i = 0; i < _chunks.Count - 1; i++) ArrayPool<byte>.Shared.Return(_chunks[i]);
        _chunks.Clear();
        _filled.Clear();
        _chunks.Add(last);
        _lastUsed = 0;
    }

    /// <summary>Bytes of content in chunk <paramref name="i"/>.</summary>
    private int Used(int i) => i == _chunks.Count - 1 ? _lastUsed : _filled[i];

    private void FlushStaging()
    {
        if (_spill is null || _lastUsed == 0) return;
        RandomAccess.Write(_spill, _chunks[^1].AsSpan(0, _lastUsed), _spilled);
        _spilled += _lastUsed;
        _lastUsed = 0;
    }
}
