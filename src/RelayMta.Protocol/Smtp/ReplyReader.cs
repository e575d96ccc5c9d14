using System.Buffers;
using System.Text;

namespace RelayMta.Protocol.Smtp;

/// <summary>What <see cref="ReplyReader.TryRead"/> found.</summary>
public enum ReplyStatus : byte
{
    /// <summary>A whole reply was read.</summary>
    Complete,
    /// <summary>More bytes are needed.</summary>
    NeedMore,
    /// <summary>The bytes are not an SMTP reply (bad code, mixed codes, line too long): drop the connection.</summary>
    Invalid,
}

/// <summary>
/// Reads replies from a server (RFC 5321 4.2): lines of three digits, then '-' (more lines follow)
/// or ' ' (last line), the same code on every line. As MailKit's reader, it is lenient about a
/// bare code with no text and about a bare LF ending a line; it is strict about the code.
/// </summary>
public static class ReplyReader
{
    /// <summary>Longest reply line accepted (RFC 5321 4.5.3.1.5 says 512; some servers send more).</summary>
    public const int MaxLineLength = 4096;

    /// <summary>Takes one complete reply off the front of <paramref name="buffer"/>.</summary>
    public static ReplyStatus TryRead(ref ReadOnlySequence<byte> buffer, out SmtpResponse? response)
    {
        response = null;
        var reader = new SequenceReader<byte>(buffer);
        var lines = new List<string>(1);
        var code = -1;
        Span<byte> scratch = stackalloc byte[MaxLineLength];
        while (true)
        {
            if (!reader.TryReadTo(out ReadOnlySequence<byte> line, (byte)'\n'))
            {
                return reader.Remaining > MaxLineLength ? ReplyStatus.Invalid : ReplyStatus.NeedMore;
            }
            if (line.Length > MaxLineLength) return ReplyStatus.Invalid;
            var copy = scratch[..(int)line.Length];
            line.CopyTo(copy);
            ReadOnlySpan<byte> span = copy;
            if (!span.IsEmpty && span[^1] == (byte)'\r') span = span[..^1];
            if (span.Length < 3 || !IsDigit(span[0]) || !IsDigit(span[1]) || !IsDigit(span[2])) return ReplyStatus.Invalid;
            var lineCode = (span[0] - '0') * 100 + (span[1] - '0') * 10 + (span[2] - '0');
            if (lineCode is < 200 or > 599) return ReplyStatus.Invalid;
            if (code >= 0 && lineCode != code) return ReplyStatus.Invalid;
            code = lineCode;
            var last = span.Length == 3 || span[3] == (byte)' ';
            if (!last && span[3] != (byte)'-') return ReplyStatus.Invalid;
            lines.Add(span.Length > 4 ? Encoding.UTF8.GetString(span[4..]) : "");
            if (last)
            {
                buffer = buffer.Slice(reader.Position);
                response = new SmtpResponse(code, lines);
                return ReplyStatus.Complete;
            }
            if (lines.Count > 1000) return ReplyStatus.Invalid;
        }
    }

    private static bool IsDigit(byte b) => (uint)(b - '0') <= 9;
}
