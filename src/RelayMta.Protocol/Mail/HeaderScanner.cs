namespace RelayMta.Protocol.Mail;

/// <summary>What <see cref="HeaderScanner.Scan"/> learned about a message's header section.</summary>
/// <param name="HeaderLength">Bytes up to and including the blank line (or all of the message when
/// it has no body), or -1 when the header section does not end within the bytes given.</param>
/// <param name="ReceivedCount">The number of <c>Received:</c> fields seen.</param>
/// <param name="HeaderHasEightBit">Whether the header section holds bytes above 127.</param>
public readonly record struct HeaderInfo(int HeaderLength, int ReceivedCount, bool HeaderHasEightBit);

/// <summary>
/// Looks over the start of a message (RFC 5322 section 2.2): where the header section ends, how
/// many trace fields it has (for loop detection, RFC 5321 6.3) and whether it is 8-bit.
/// </summary>
public static class HeaderScanner
{
    /// <summary>Scans <paramref name="message"/>; when <paramref name="complete"/> the span is the whole message.</summary>
    public static HeaderInfo Scan(ReadOnlySpan<byte> message, bool complete)
    {
        var received = 0;
        var position = 0;
        while (position < message.Length)
        {
            var rest = message[position..];
            var lf = rest.IndexOf((byte)'\n');
            var line = lf < 0 ? rest : rest[..lf];
            if (line.Length > 0 && line[^1] == (byte)'\r') line = line[..^1];
            if (line.IsEmpty && lf >= 0)
            {
                var end = position + lf + 1;
                return new HeaderInfo(end, received, Has8Bit(message[..end]));
            }
            if (line.Length >= 9 && System.Text.Ascii.EqualsIgnoreCase(line[..9], "received:"u8)) received++;
            if (lf < 0) break;
            position += lf + 1;
        }
        return complete
            ? new HeaderInfo(message.Length, received, Has8Bit(message))
            : new HeaderInfo(-1, received, Has8Bit(message));
    }

    private static bool Has8Bit(ReadOnlySpan<byte> bytes) => bytes.IndexOfAnyInRange((byte)0x80, (byte)0xff) >= 0;
}
