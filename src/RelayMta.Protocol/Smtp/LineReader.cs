using System.Buffers;

namespace RelayMta.Protocol.Smtp;

/// <summary>What <see cref="LineReader.TryReadLine"/> found.</summary>
public enum LineStatus : byte
{
    /// <summary>A complete line ended by CRLF.</summary>
    Line,
    /// <summary>No complete line yet; read more.</summary>
    NeedMore,
    /// <summary>
    /// No line end within the limit. The bytes were consumed; call
    /// <see cref="LineReader.TrySkipLine"/> until the line's end has gone by.
    /// </summary>
    TooLong,
    /// <summary>A line ended by a bare LF; it is returned without the LF and must be refused.</summary>
    BareLineFeed,
}

/// <summary>
/// Splits command lines off a byte sequence. Only CRLF ends a line (RFC 5321 2.3.8); a bare LF
/// is reported so the caller can refuse it rather than wait, and a bare CR stays in the line.
/// The search never looks further than the line limit (as Kestrel's request-line limit).
/// </summary>
public static class LineReader
{
    /// <summary>
    /// Takes one line off the front of <paramref name="buffer"/>. <paramref name="maxLength"/>
    /// counts the CRLF (RFC 5321 4.5.3.1.4/6: 512 for commands, 1000 for text lines).
    /// </summary>
    public static LineStatus TryReadLine(ref ReadOnlySequence<byte> buffer, int maxLength, out ReadOnlySequence<byte> line)
    {
        line = default;
        var window = buffer.Length > maxLength ? buffer.Slice(0, maxLength) : buffer;
        SequencePosition? lf;
        if (window.IsSingleSegment)
        {
            var index = window.FirstSpan.IndexOf((byte)'\n');
            lf = index < 0 ? null : window.GetPosition(index);
        }
        else
        {
            lf = window.PositionOf((byte)'\n');
        }

        if (lf is null)
        {
            if (buffer.Length < maxLength) return LineStatus.NeedMore;
            // Consume only the bytes looked at: the line's end may already be in the buffer.
            buffer = buffer.Slice(window.End);
            return LineStatus.TooLong;
        }

        var content = buffer.Slice(0, lf.Value);
        buffer = buffer.Slice(buffer.GetPosition(1, lf.Value));
        if (content.Length > 0 && EndsWithCr(content))
        {
            line = content.Slice(0, content.Length - 1);
            return LineStatus.Line;
        }
        line = content;
        return LineStatus.BareLineFeed;
    }

    /// <summary>
    /// Discards bytes up to and including the next LF. Returns true when it was found (the
    /// over-long line is gone), false when all of <paramref name="buffer"/> was discarded.
    /// </summary>
    public static bool TrySkipLine(ref ReadOnlySequence<byte> buffer)
    {
        var lf = buffer.PositionOf((byte)'\n');
        if (lf is null)
        {
            buffer = buffer.Slice(buffer.End);
            return false;
        }
        buffer = buffer.Slice(buffer.GetPosition(1, lf.Value));
        return true;
    }

    private static bool EndsWithCr(in ReadOnlySequence<byte> content)
    {
        if (content.IsSingleSegment) return content.FirstSpan[^1] == (byte)'\r';
        return content.Slice(content.Length - 1).FirstSpan[0] == (byte)'\r';
    }
}
