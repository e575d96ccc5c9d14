using System.Buffers;

namespace RelayMta.Protocol.Smtp;

/// <summary>What a <see cref="DataReader"/> noticed about the message content.</summary>
[Flags]
public enum DataFlags : byte
{
    /// <summary>Nothing to report.</summary>
    None = 0,
    /// <summary>A CR not followed by LF (RFC 5321 2.3.8 forbids it in content).</summary>
    BareCarriageReturn = 1,
    /// <summary>An LF not preceded by CR.</summary>
    BareLineFeed = 2,
    /// <summary>The content passed the size limit; the sink stopped receiving bytes there.</summary>
    TooLarge = 4,
    /// <summary>A byte with the high bit set (needs 8BITMIME or SMTPUTF8 when relayed).</summary>
    EightBit = 8,
}

/// <summary>
/// Reads DATA content: a byte state machine that removes dot-stuffing (RFC 5321 4.5.2) and ends
/// only at CRLF "." CRLF. A bare CR or LF is content, never a line end, so <c>\n.\n</c>,
/// <c>\r.\r</c>, <c>\r\n.\n</c> and the other SMTP-smuggling shapes cannot end the message or
/// start a new transaction; they are flagged so the caller can refuse the message once the real
/// terminator arrives. Bytes go straight to the sink in runs, never a line at a time.
/// </summary>
public sealed class DataReader
{
    private enum State : byte
    {
        LineStart,
        InLine,
        AfterCr,
        Dot,
        DotCr,
    }

    private State _state;
    private long _maxSize;
    private long _size;
    private int _lineLength;

    /// <summary>Creates a reader that stops writing to the sink after <paramref name="maxSize"/> bytes.</summary>
    public DataReader(long maxSize = long.MaxValue) => Reset(maxSize);

    /// <summary>Flags raised so far.</summary>
    public DataFlags Flags { get; private set; }

    /// <summary>Bytes of unstuffed content seen, including any past the limit.</summary>
    public long Size => _size;

    /// <summary>The longest line seen, CRLF included, after unstuffing (a bare CR or LF does not end a line).</summary>
    public int LongestLine { get; private set; }

    /// <summary>Gets ready for a new message; the previous line ended with the DATA command's CRLF.</summary>
    public void Reset(long maxSize)
    {
        _state = State.LineStart;
        _maxSize = maxSize;
        _size = 0;
        _lineLength = 0;
        LongestLine = 0;
        Flags = DataFlags.None;
    }

    /// <summary>
    /// Consumes content from <paramref name="input"/>, writing unstuffed bytes to
    /// <paramref name="sink"/>. Returns true once the terminator has been consumed; the bytes after
    /// it are left in <paramref name="input"/> (the next pipelined command).
    /// </summary>
    public bool Feed(ref ReadOnlySequence<byte> input, IBufferWriter<byte> sink)
    {
        if (input.IsSingleSegment)
        {
            var used = Process(input.FirstSpan, sink, out var finished);
            input = input.Slice(used);
            return finished;
        }

        var consumed = 0L;
        foreach (var segment in input)
        {
            var used = Process(segment.Span, sink, out var finished);
            consumed += used;
            if (finished)
            {
                input = input.Slice(consumed);
                return true;
            }
        }
        input = input.Slice(input.End);
        return false;
    }

    /// <summary>Span form of <see cref="Feed"/>: returns the number of bytes consumed.</summary>
    public int Process(ReadOnlySpan<byte> span, IBufferWriter<byte> sink, out bool finished)
    {
        finished = false;
        var runStart = 0; // start of bytes to copy verbatim
        var i = 0;
        while (i < span.Length)
        {
            switch (_state)
            {
                case State.InLine:
                {
                    var next = span[i..].IndexOfAny((byte)'\r', (byte)'\n');
                    if (next < 0)
                    {
                        _lineLength += span.Length - i;
                        i = span.Length;
                        continue;
                    }
                    _lineLength += next;
                    i += next;
                    if (span[i] == (byte)'\r')
                    {
                        _state = State.AfterCr;
                    }
                    else
                    {
                        Flags |= DataFlags.BareLineFeed; // stays InLine: a bare LF starts no line
                    }
                    _lineLength++;
                    i++;
                    continue;
                }
                case State.LineStart:
                {
                    var b = span[i];
                    if (b == (byte)'.')
                    {
                        Emit(span[runStart..i], sink);
                        runStart = i + 1;
                        _state = State.Dot;
                        // Not counted: RFC 5321 4.5.3.1.6 measures a text line "not counting the
                        // leading dot duplicated for transparency"; the line is what the sink gets.
                        i++;
                    }
                    else
                    {
                        _state = State.InLine; // the InLine case looks at this byte again
                    }
                    continue;
                }
                case State.AfterCr:
                {
                    if (span[i] == (byte)'\n')
                    {
                        EndLine();
                        _state = State.LineStart;
                        i++;
                    }
                    else
                    {
                        Flags |= DataFlags.BareCarriageReturn;
                        _state = State.InLine;
                    }
                    continue;
                }
                case State.Dot:
                {
                    var b = span[i];
                    if (b == (byte)'\r')
                    {
                        // Maybe the terminator: hold the CR back until we see what follows.
                        runStart = i + 1;
                        _state = State.DotCr;
                        i++;
                    }
                    else
                    {
                        // The first dot of a line with more on it was stuffing and is gone;
                        // this byte (possibly a second dot) is content.
                        _state = State.InLine;
                    }
                    continue;
                }
                case State.DotCr:
                {
                    if (span[i] == (byte)'\n')
                    {
                        finished = true;
                        _state = State.LineStart;
                        return i + 1;
                    }
                    // ".\r" then something else: the CR we held back is content after all.
                    Flags |= DataFlags.BareCarriageReturn;
                    Emit("\r"u8, sink);
                    _lineLength++;
                    runStart = i;
                    _state = State.InLine;
                    continue;
                }
            }
        }
        Emit(span[runStart..], sink);
        return span.Length;
    }

    private void EndLine()
    {
        var length = _lineLength + 1; // the LF
        if (length > LongestLine) LongestLine = length;
        _lineLength = 0;
    }

    private void Emit(ReadOnlySpan<byte> bytes, IBufferWriter<byte> sink)
    {
        if (bytes.IsEmpty) return;
        if ((Flags & DataFlags.EightBit) == 0 && bytes.IndexOfAnyInRange((byte)0x80, (byte)0xff) >= 0)
            Flags |= DataFlags.EightBit;
        var room = _maxSize - _size;
        _size += bytes.Length;
        if (room <= 0)
        {
            Flags |= DataFlags.TooLarge;
            return;
        }
        if (bytes.Length > room)
        {
            Flags |= DataFlags.TooLarge;
            bytes = bytes[..(int)room];
        }
        sink.Write(bytes);
    }
}
