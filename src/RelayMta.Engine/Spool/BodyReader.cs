using Microsoft.Win32.SafeHandles;

namespace RelayMta.Engine.Spool;

/// <summary>
/// Read access to one stored message body (a slice of a journal segment, or a body file). The
/// handle stays valid even if the spool later deletes the file (POSIX unlink semantics).
/// </summary>
public sealed class BodyReader : IDisposable
{
    private readonly SafeFileHandle _handle;
    private readonly long _offset;
    private readonly bool _ownsHandle;
    private Action? _onDispose;
    private volatile bool _disposed;

    internal BodyReader(SafeFileHandle handle, long offset, long length, Action? onDispose = null, bool ownsHandle = true)
    {
        _handle = handle;
        _offset = offset;
        Length = length;
        _onDispose = onDispose;
        _ownsHandle = ownsHandle;
    }

    /// <summary>The body's length in bytes.</summary>
    public long Length { get; }

    /// <summary>Reads from <paramref name="position"/> (0 = start of body); returns 0 at the end.</summary>
    public ValueTask<int> ReadAsync(Memory<byte> buffer, long position, CancellationToken ct = default)
    {
        // A shared handle outlives this reader: reading after Dispose could read a recycled segment.
        ObjectDisposedException.ThrowIf(_disposed, this);
        var left = Length - position;
        if (left <= 0) return ValueTask.FromResult(0);
        if (buffer.Length > left) buffer = buffer[..(int)left];
        return RandomAccess.ReadAsync(_handle, buffer, _offset + position, ct);
    }

    /// <summary>Reads synchronously; see <see cref="ReadAsync"/>.</summary>
    public int Read(Span<byte> buffer, long position)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var left = Length - position;
        if (left <= 0) return 0;
        if (buffer.Length > left) buffer = buffer[..(int)left];
        return RandomAccess.Read(_handle, buffer, _offset + position);
    }

    /// <summary>The whole body as a stream (for MIME parsing of small messages, e.g. bounces).</summary>
    public Stream AsStream() => new BodyStream(this);

    /// <inheritdoc />
    public void Dispose()
    {
        _disposed = true;
        if (_ownsHandle) _handle.Dispose();
        Interlocked.Exchange(ref _onDispose, null)?.Invoke();
    }

    private sealed class BodyStream(BodyReader body) : Stream
    {
        private long _position;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => body.Length;
        public override long Position { get => _position; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override int Read(Span<byte> buffer)
        {
            var n = body.Read(buffer, _position);
            _position += n;
            return n;
        }
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var n = await body.ReadAsync(buffer, _position, cancellationToken).ConfigureAwait(false);
            _position += n;
            return n;
        }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
