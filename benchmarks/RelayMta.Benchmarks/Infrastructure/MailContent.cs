using System.Text;

namespace RelayMta.Benchmarks.Infrastructure;

/// <summary>
/// Realistic message content for the benchmarks: a small header section, then text lines of 60-78
/// characters ended by CRLF, about one line in 32 starting with a dot (so dot-stuffing has work to
/// do). Deterministic for a given seed, ASCII only.
/// </summary>
internal static class MailContent
{
    private const string Words = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore " +
                                 "et dolore magna aliqua relay queue spool mailbox delivery transaction pipelining envelope 0123456789";

    /// <summary>
    /// Content (not dot-stuffed) of exactly <paramref name="size"/> bytes: <paramref name="headers"/>
    /// (each line ended by CRLF), an empty line, then body lines. Ends with CRLF.
    /// </summary>
    public static byte[] Create(int size, int seed, string headers = "")
    {
        var head = Encoding.ASCII.GetBytes(headers + "\r\n");
        if (size < head.Length + 4) throw new ArgumentOutOfRangeException(nameof(size), $"at least {head.Length + 4} bytes");
        var content = new byte[size];
        head.CopyTo(content, 0);
        var random = new Random(seed);
        var at = head.Length;
        var word = random.Next(Words.Length);
        while (at < size)
        {
            var remaining = size - at;
            int length;
            if (remaining <= 80)
            {
                length = remaining - 2;
            }
            else
            {
                length = random.Next(60, 79);
                if (remaining - (length + 2) < 3) length -= 3; // leave room for a last line of at least one character
            }
            var line = content.AsSpan(at, length);
            for (var i = 0; i < line.Length; i++)
            {
                line[i] = (byte)Words[word];
                word = word + 1 == Words.Length ? 0 : word + 1;
            }
            // Lines that start with a dot (".." now and then), as quoted text and signatures do.
            if (length > 1 && random.Next(32) == 0)
            {
                line[0] = (byte)'.';
                if (random.Next(4) == 0) line[1] = (byte)'.';
            }
            else if (length > 0 && line[0] == (byte)'.')
            {
                line[0] = (byte)'x';
            }
            content[at + length] = (byte)'\r';
            content[at + length + 1] = (byte)'\n';
            at += length + 2;
        }
        return content;
    }

    /// <summary>Dot-stuffs <paramref name="content"/> (RFC 5321 4.5.2) for the wire; no terminator is added.</summary>
    public static byte[] DotStuff(ReadOnlySpan<byte> content)
    {
        using var wire = new MemoryStream(content.Length + content.Length / 64 + 16);
        var lineStart = true;
        foreach (var b in content)
        {
            if (lineStart && b == (byte)'.') wire.WriteByte((byte)'.');
            wire.WriteByte(b);
            lineStart = b == (byte)'\n';
        }
        return wire.ToArray();
    }

    /// <summary>The lines of <paramref name="content"/> that start with a dot.</summary>
    public static int DotLines(ReadOnlySpan<byte> content)
    {
        var count = 0;
        var lineStart = true;
        foreach (var b in content)
        {
            if (lineStart && b == (byte)'.') count++;
            lineStart = b == (byte)'\n';
        }
        return count;
    }
}
