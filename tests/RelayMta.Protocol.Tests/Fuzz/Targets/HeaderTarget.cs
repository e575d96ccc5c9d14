using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using RelayMta.Protocol.Mail;
using RelayMta.Protocol.Smtp;

namespace RelayMta.Protocol.Fuzzing;

/// <summary>
/// Target "header": the input is the start of a message for HeaderScanner (with and without the
/// rest of it), and also, read as [mode][address and date bytes][fields split at 0xFF], the
/// client-supplied words of a Received: field. ReceivedHeader.Build must keep them from breaking
/// the field whatever they hold.
/// </summary>
internal static class HeaderTarget
{
    private const int HeaderBytes = 1 + 16 + 8 + 2;

    public static void Run(ReadOnlySpan<byte> data)
    {
        CheckScanner(data);
        CheckReceived(data);
    }

    // ---------------------------------------------------------------- HeaderScanner

    private static void CheckScanner(ReadOnlySpan<byte> message)
    {
        var complete = HeaderScanner.Scan(message, complete: true);
        var partial = HeaderScanner.Scan(message, complete: false);
        var (end, received) = Model(message);
        var eightBit = Invariant.HasEightBit(end >= 0 ? message[..end] : message);

        var expectedComplete = new HeaderInfo(end >= 0 ? end : message.Length, received, eightBit);
        var expectedPartial = new HeaderInfo(end, received, eightBit);
        Invariant.That(complete == expectedComplete, $"Scan(complete) gave {complete}, expected {expectedComplete}");
        Invariant.That(partial == expectedPartial, $"Scan(partial) gave {partial}, expected {expectedPartial}");

        // Bytes after the header section change nothing, and a prefix never counts more fields.
        if (end >= 0)
        {
            Invariant.That(HeaderScanner.Scan(message[..end], complete: false) == expectedPartial, "Scan changed with the body cut off");
        }
        for (var k = 0; k <= message.Length; k += Math.Max(1, message.Length / 7))
        {
            var prefix = HeaderScanner.Scan(message[..k], complete: false);
            Invariant.That(prefix.ReceivedCount <= received, $"a {k}-byte prefix counts {prefix.ReceivedCount} Received fields, the whole {received}");
            Invariant.That(prefix.HeaderLength == -1 || prefix.HeaderLength == end, $"a {k}-byte prefix ends the header at {prefix.HeaderLength}, the whole at {end}");
        }
    }

    /// <summary>RFC 5322 2.2 as the scanner documents it: the header ends at the first empty line (CRLF or a lone LF).</summary>
    private static (int End, int Received) Model(ReadOnlySpan<byte> message)
    {
        var received = 0;
        var lines = Encoding.Latin1.GetString(message).Split('\n');
        var position = 0;
        for (var i = 0; i < lines.Length; i++)
        {
            var terminated = i < lines.Length - 1;
            var line = lines[i].EndsWith('\r') ? lines[i][..^1] : lines[i];
            if (line.Length == 0 && terminated) return (position + lines[i].Length + 1, received);
            if (line.StartsWith("received:", StringComparison.OrdinalIgnoreCase)) received++;
            position += lines[i].Length + 1;
        }
        return (-1, received);
    }

    // ---------------------------------------------------------------- Received:

    private static void CheckReceived(ReadOnlySpan<byte> data)
    {
        var mode = Invariant.At(data, 0);
        var client = Address(data, mode);
        var when = Date(data);
        var fields = Fields(Invariant.After(data, HeaderBytes), mode);
        var helo = fields[0];
        var tls = (mode & 0x10) != 0 ? fields[1] : null;
        var auth = (mode & 0x20) != 0 ? fields[2] : null;
        var recipient = (mode & 0x40) != 0 ? fields[3] : null;
        var wellFormed = fields.Take(4).All(IsWellFormedUtf16);

        var literal = ReceivedHeader.AddressLiteral(client);
        CheckAddressLiteral(literal, client);
        var date = ReceivedHeader.FormatDate(when);
        CheckDate(date, when);

        var field = ReceivedHeader.Build(helo, client, "mx.example", "ESMTP", "Q1234", recipient, when, tls, auth);
        const string start = "Received: from ";
        Invariant.That(field.StartsWith(start, StringComparison.Ordinal) && field.EndsWith("\r\n", StringComparison.Ordinal), $"Received field shape: {Invariant.Show(field)}");
        CheckFieldText(field, wellFormed, "Received");

        // The HELO word runs up to the comment with the client's address; it cannot hold '(' itself.
        var open = field.IndexOf('(', StringComparison.Ordinal);
        Invariant.That(open > start.Length && field[open - 1] == ' ', "Received: no comment after the HELO word");
        var heloWord = field[start.Length..(open - 1)];
        Invariant.That(heloWord.Length <= 256, $"HELO word of {heloWord.Length} chars");
        Invariant.That(heloWord.All(c => c is >= ' ' and < (char)0x7f), $"HELO word '{Invariant.Show(heloWord)}' is not printable ASCII");
        Invariant.That(field.AsSpan(open).StartsWith("(" + literal + ")\r\n\tby mx.example (RelayMta)"), $"Received: the address comment is broken: {Invariant.Show(field)}");

        var comments = 2 + (tls is null ? 0 : 1) + (auth is null ? 0 : 1);
        Invariant.That(field.Count(c => c == '(') == comments && field.Count(c => c == ')') == comments, $"Received: comments are unbalanced: {Invariant.Show(field)}");
        Invariant.That(field.EndsWith("; " + date + "\r\n", StringComparison.Ordinal), "Received: the date is not last");

        var returnPath = ReceivedHeader.ReturnPath(fields[4]);
        Invariant.That(returnPath.StartsWith("Return-Path: <", StringComparison.Ordinal) && returnPath.EndsWith(">\r\n", StringComparison.Ordinal), "Return-Path shape");
        CheckFieldText(returnPath, IsWellFormedUtf16(fields[4]), "Return-Path");
        Invariant.That(returnPath.IndexOf('\n') == returnPath.Length - 1, "Return-Path spans lines");
    }

    /// <summary>
    /// A header field as it goes into the message: lines end in CRLF, a continuation starts with a
    /// tab, no other control characters, no line over RFC 5322's 998, and no half surrogate pairs when
    /// the words given were whole.
    /// </summary>
    private static void CheckFieldText(string field, bool wellFormed, string what)
    {
        for (var i = 0; i < field.Length; i++)
        {
            var c = field[i];
            if (c == '\r')
            {
                Invariant.That(i + 1 < field.Length && field[i + 1] == '\n', $"{what}: bare CR at {i}: {Invariant.Show(field)}");
                Invariant.That(i + 2 == field.Length || field[i + 2] == '\t', $"{what}: a line break that is not a fold at {i}: {Invariant.Show(field)}");
            }
            else if (c == '\n')
            {
                Invariant.That(i > 0 && field[i - 1] == '\r', $"{what}: bare LF at {i}: {Invariant.Show(field)}");
            }
            else if (c == '\t')
            {
                Invariant.That(i > 0 && field[i - 1] == '\n', $"{what}: a tab from a client word at {i}: {Invariant.Show(field)}");
            }
            else
            {
                Invariant.That(c >= ' ' && c != (char)0x7f, $"{what}: control character U+{(int)c:x4} at {i}: {Invariant.Show(field)}");
            }
        }
        foreach (var line in field.Split("\r\n"))
            Invariant.That(line.Length <= 998, $"{what}: a line of {line.Length} characters");
        if (wellFormed) Invariant.That(IsWellFormedUtf16(field), $"{what}: a half surrogate pair made from whole words: {Invariant.Show(field)}");
    }

    /// <summary>The literal must be one that RFC 5321 (and our own parser) accepts.</summary>
    private static void CheckAddressLiteral(string literal, IPAddress client)
    {
        var bytes = Encoding.ASCII.GetBytes("FROM:<postmaster@" + literal + ">");
        var reply = CommandParser.ParseMailFrom(bytes, out var path, out _);
        if (reply is not null) Invariant.Fail($"AddressLiteral({client}) = '{literal}', which is not an address literal: {reply}");
        var inner = literal[1..^1];
        if (inner.StartsWith("IPv6:", StringComparison.Ordinal)) inner = inner[5..];
        var expected = client.IsIPv4MappedToIPv6 ? client.MapToIPv4() : client;
        Invariant.That(IPAddress.TryParse(inner, out var back) && back.GetAddressBytes().AsSpan().SequenceEqual(expected.GetAddressBytes()),
            $"AddressLiteral({client}) = '{literal}' names another address");
        _ = path;
    }

    private static void CheckDate(string date, DateTimeOffset when)
    {
        // "Mon, 30 Nov 2026 02:32:33 +0000": the clock time of `when` to the second, then its offset.
        Invariant.That(date.Length > 6 && date[^6] == ' ' && date[^5] is '+' or '-' && date[^4..].All(char.IsAsciiDigit), $"FormatDate gave '{date}'");
        var offset = (date[^5] == '-' ? -1 : 1) * (int.Parse(date[^4..^2], CultureInfo.InvariantCulture) * 60 + int.Parse(date[^2..], CultureInfo.InvariantCulture));
        Invariant.That(offset == (int)when.Offset.TotalMinutes, $"FormatDate gave offset {offset} minutes for {when.Offset}");
        Invariant.That(DateTime.TryParseExact(date[..^6], "ddd, dd MMM yyyy HH:mm:ss", CultureInfo.InvariantCulture, DateTimeStyles.None, out var clock)
                       && clock.Ticks == when.DateTime.Ticks - when.DateTime.Ticks % TimeSpan.TicksPerSecond, $"FormatDate gave '{date}' for {when:O}");
    }

    private static IPAddress Address(ReadOnlySpan<byte> data, byte mode)
    {
        Span<byte> raw = stackalloc byte[16];
        for (var i = 0; i < 16; i++) raw[i] = Invariant.At(data, 1 + i);
        switch (mode & 3)
        {
            case 0: return new IPAddress(raw[..4]);
            case 1: return new IPAddress(raw);
            case 2: return new IPAddress(raw[..4]).MapToIPv6();
            default:
                raw[0] = 0xfe;
                raw[1] = 0x80;
                return new IPAddress(raw.ToArray(), 1 + raw[15] % 16); // link-local with a zone, as a socket reports it
        }
    }

    private static DateTimeOffset Date(ReadOnlySpan<byte> data)
    {
        var ticks = 0UL;
        for (var i = 0; i < 8; i++) ticks = ticks << 8 | Invariant.At(data, 17 + i);
        var offsetMinutes = ((Invariant.At(data, 25) << 8 | Invariant.At(data, 26)) % (2 * 14 * 60 + 1)) - 14 * 60;
        var offset = TimeSpan.FromMinutes(offsetMinutes);
        // Keep local time inside DateTimeOffset's range whatever the offset.
        var min = DateTimeOffset.MinValue.Ticks + TimeSpan.TicksPerDay;
        var max = DateTimeOffset.MaxValue.Ticks - TimeSpan.TicksPerDay;
        return new DateTimeOffset(min + (long)(ticks % (ulong)(max - min)), offset);
    }

    /// <summary>Five words: UTF-8 (mode bits 2-3 = 0 or 1), Latin-1 (2) or raw UTF-16, which may hold half pairs (3).</summary>
    private static string[] Fields(ReadOnlySpan<byte> rest, byte mode)
    {
        var words = new string[5];
        for (var i = 0; i < words.Length; i++)
        {
            var cut = rest.IndexOf((byte)0xff);
            var word = cut < 0 ? rest : rest[..cut];
            rest = cut < 0 ? default : rest[(cut + 1)..];
            words[i] = ((mode >> 2) & 3) switch
            {
                2 => Encoding.Latin1.GetString(word),
                3 => new string(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, char>(word[..(word.Length & ~1)])),
                _ => Encoding.UTF8.GetString(word),
            };
        }
        return words;
    }

    private static bool IsWellFormedUtf16(string? s)
    {
        if (s is null) return true;
        for (var i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]))
            {
                if (i + 1 >= s.Length || !char.IsLowSurrogate(s[i + 1])) return false;
                i++;
            }
            else if (char.IsLowSurrogate(s[i])) return false;
        }
        return true;
    }
}
