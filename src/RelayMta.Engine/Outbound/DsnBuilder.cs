using System.Globalization;
using System.Text;
using MimeKit;
using MimeKit.Utils;
using RelayMta.Engine.Spool;
using RelayMta.Protocol.Mail;

namespace RelayMta.Engine.Outbound;

/// <summary>
/// One failed recipient: <paramref name="Status"/> is the RFC 3463 code (5.x.y, or 4.x.y for a delay report),
/// <paramref name="Diagnostic"/> the remote reply or our reason, <paramref name="DiagnosticType"/> "smtp" when
/// <paramref name="Diagnostic"/> is a remote SMTP reply like "550 5.1.1 no such user", otherwise "x-relaymta";
/// <paramref name="RemoteMta"/> a host name or null.
/// </summary>
// Kept beside DsnBuilder: it is the builder's argument type and nothing else uses it yet.
public sealed record FailedRecipient(string Address, string Status, string Diagnostic, string DiagnosticType,
    string? RemoteMta, DateTimeOffset? LastAttempt);

/// <summary>
/// Builds delivery status notifications (bounces): a multipart/report (RFC 6522) holding a plain
/// explanation, a message/delivery-status part (RFC 3464) and the original header section as
/// text/rfc822-headers. Never the original body: the sender has it, and a bounce should stay small.
/// </summary>
public static class DsnBuilder
{
    /// <summary>At most this much of the original message is read looking for the end of its header section.</summary>
    internal const int MaxHeaderSection = 256 * 1024;

    private const int MaxLine = 998;   // RFC 5322 §2.1.1: octets per line, CRLF excluded
    private const int FoldAt = 78;     // RFC 5322 §2.1.1: SHOULD
    private const int TextWidth = 72;   // leaves quoted-printable room for its soft line breaks
    private const string Subject = "Undelivered Mail Returned to Sender";

    /// <summary>
    /// Builds the complete RFC 5322 message (CRLF line ends) of a delivery status notification for the
    /// original message, to be sent from the null sender to original.Sender.
    /// </summary>
    /// <param name="reportingMta">Our host name: Reporting-MTA and the domain of From and Message-ID.</param>
    /// <param name="original">The envelope of the message that failed; its sender gets the report.</param>
    /// <param name="failures">The recipients the report is about (at least one).</param>
    /// <param name="originalMessage">The original message from its first byte; only its header section is read.</param>
    /// <param name="now">The report's Date.</param>
    public static byte[] Build(string reportingMta, MailEnvelope original, IReadOnlyList<FailedRecipient> failures,
        Stream originalMessage, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(original);
        ArgumentNullException.ThrowIfNull(failures);
        ArgumentNullException.ThrowIfNull(originalMessage);
        // RFC 5321 §4.5.5 / §6.1: a message from the null sender is never bounced.
        if (original.IsNullSender)
            throw new ArgumentException("a message from the null sender must not be bounced", nameof(original));
        // RFC 3464 §2.1: at least one per-recipient group.
        if (failures.Count == 0)
            throw new ArgumentException("a delivery status notification needs at least one recipient", nameof(failures));
        foreach (var failure in failures) Validate(failure);
        var host = AsciiHost(reportingMta);
        if (host.Length == 0)
            throw new ArgumentException("the reporting MTA needs a host name", nameof(reportingMta));

        var originalHeaders = ParseHeaders(ReadHeaderSection(originalMessage));
        var eightBit = originalHeaders.Any(h => !Ascii.IsValid(h.RawField) || !Ascii.IsValid(h.RawValue));

        var report = new MultipartReport("delivery-status")
        {
            Explanation(host, original, failures, originalHeaders),
            DeliveryStatus(host, original, failures),
            HeadersPart(originalHeaders, eightBit),
        };

        var message = new MimeMessage((IEnumerable<Header>)[]);
        message.From.Add(new MailboxAddress("Mail Delivery System", "MAILER-DAEMON@" + host));
        message.To.Add(new MailboxAddress("", original.Sender));
        message.Subject = Subject;
        message.Date = now;
        message.Headers.Add("Message-ID", "<" + MimeUtils.GenerateMessageId(host) + ">");
        message.Headers.Add("Auto-Submitted", "auto-replied"); // RFC 3834 §5
        message.Headers.Add("MIME-Version", "1.0");
        message.Body = report;

        var options = FormatOptions.Default.Clone();
        options.NewLineFormat = NewLineFormat.Dos;
        options.EnsureNewLine = true;
        // A sender with a UTF-8 address can only be reached over SMTPUTF8, where UTF-8 header
        // fields are the rule (RFC 6532); MimeKit would otherwise write the local part raw anyway
        // and turn only the domain into A-labels.
        options.International = !Ascii.IsValid(original.Sender);

        using var output = new MemoryStream();
        message.WriteTo(options, output);
        return output.ToArray();
    }

    private static void Validate(FailedRecipient failure)
    {
        ArgumentNullException.ThrowIfNull(failure);
        if (string.IsNullOrEmpty(failure.Address))
            throw new ArgumentException("a failed recipient needs an address", nameof(failure));
        if (!IsStatusCode(failure.Status))
            throw new ArgumentException($"'{failure.Status}' is not an RFC 3463 status code", nameof(failure));
        if (!IsDiagnosticType(failure.DiagnosticType))
            throw new ArgumentException($"'{failure.DiagnosticType}' is not a diagnostic type", nameof(failure));
    }

    // RFC 3463 §2: class "." subject "." detail, subject and detail up to 3 digits; class 4 or 5
    // here, as every recipient in a bounce failed (4 when it failed by staying temporary too long).
    private static bool IsStatusCode(string? status)
    {
        if (status is null) return false;
        var parts = status.Split('.');
        return parts.Length == 3 && parts[0] is "4" or "5"
            && parts[1].Length is >= 1 and <= 3 && parts[1].All(char.IsAsciiDigit)
            && parts[2].Length is >= 1 and <= 3 && parts[2].All(char.IsAsciiDigit);
    }

    // RFC 3464 §2.3.6: diagnostic-type is an atom ("smtp", "x-...").
    private static bool IsDiagnosticType(string? type) =>
        !string.IsNullOrEmpty(type) && type.All(c => char.IsAsciiLetterOrDigit(c) || c == '-');

    private static TextPart Explanation(string host, MailEnvelope original, IReadOnlyList<FailedRecipient> failures,
        HeaderList originalHeaders)
    {
        var text = new StringBuilder();
        text.Append("This is the mail delivery system at ").Append(host).Append(".\r\n\r\n");
        AppendWrapped(text, "Your message could not be delivered to the recipients listed below. "
            + "Delivery will not be tried again for them. The technical details are in the attached "
            + "delivery report, followed by the header section of your message.", "");
        text.Append("\r\n");
        AppendWrapped(text, "Queue ID: " + original.Id.Value, "");
        AppendWrapped(text, "Received: " + DateUtils.FormatDate(original.ReceivedAt), "");
        var subject = originalHeaders[HeaderId.Subject];
        if (subject is not null) AppendWrapped(text, "Subject: " + Readable(subject, 200), "");
        foreach (var failure in failures)
        {
            text.Append("\r\n");
            AppendWrapped(text, "<" + Readable(failure.Address, 1000) + ">", "");
            var diagnostic = Readable(failure.Diagnostic, int.MaxValue);
            var said = IsSmtp(failure)
                ? (failure.RemoteMta is { } mta ? $"The mail server {Readable(mta, 255)} replied: " : "The receiving mail server replied: ")
                : "";
            if (diagnostic.Length > 0 || said.Length > 0) AppendWrapped(text, said + diagnostic, "    ");
            AppendWrapped(text, "Status: " + failure.Status, "    ");
        }

        var part = new TextPart("plain") { Text = text.ToString() };
        part.Headers.Add("Content-Description", "Notification");
        // 7bit when the text is ASCII, quoted-printable when a UTF-8 address or reply is in it.
        part.ContentTransferEncoding = part.GetBestEncoding(EncodingConstraint.SevenBit, TextWidth);
        return part;
    }

    private static MessageDeliveryStatus DeliveryStatus(string host, MailEnvelope original, IReadOnlyList<FailedRecipient> failures)
    {
        var part = new MessageDeliveryStatus();
        part.Headers.Add("Content-Description", "Delivery report");

        // RFC 3464 §2.2: per-message fields.
        var perMessage = new HeaderList
        {
            Field("Reporting-MTA", "dns; " + host),
            Field("X-RelayMta-Queue-ID", Printable(original.Id.Value)), // Postfix's X-Postfix-Queue-ID
            Field("Arrival-Date", DateUtils.FormatDate(original.ReceivedAt)),
        };
        part.StatusGroups.Add(perMessage);

        // RFC 3464 §2.3: per-recipient fields, in the order the RFC lists them.
        foreach (var failure in failures)
        {
            var group = new HeaderList
            {
                Field("Final-Recipient", TypedAddress(failure.Address)),
                Field("Action", "failed"),
                Field("Status", failure.Status),
            };
            var remote = failure.RemoteMta is null ? "" : AsciiHost(failure.RemoteMta);
            if (remote.Length > 0) group.Add(Field("Remote-MTA", "dns; " + remote));
            var diagnostic = Printable(failure.Diagnostic);
            if (diagnostic.Length > 0) group.Add(Field("Diagnostic-Code", failure.DiagnosticType.ToLowerInvariant() + "; " + diagnostic));
            if (failure.LastAttempt is { } at) group.Add(Field("Last-Attempt-Date", DateUtils.FormatDate(at)));
            part.StatusGroups.Add(group);
        }

        // MimeKit ends every group with an empty line, the last one too, and then reads that
        // last empty line back as an extra, empty group. RFC 3464 §2.1 has empty lines only
        // between groups: drop the final one.
        using var serialized = new MemoryStream();
        part.Content?.DecodeTo(serialized);
        var content = serialized.ToArray().AsSpan();
        if (content.EndsWith("\r\n\r\n"u8)) content = content[..^2];
        else if (content.EndsWith("\n\n"u8)) content = content[..^1];
        part.Content = new MimeContent(new MemoryStream(content.ToArray()));
        return part;
    }

    private static TextRfc822Headers HeadersPart(HeaderList originalHeaders, bool eightBit)
    {
        var part = new TextRfc822Headers { Message = new MimeMessage((IEnumerable<Header>)originalHeaders) };
        part.Headers.Add("Content-Description", "Undelivered message headers");
        if (eightBit)
        {
            // UTF-8 header fields (RFC 6532) are copied as they are: say so rather than pass
            // 8-bit octets off as 7bit. Delivering the report then needs 8BITMIME.
            part.ContentType.Charset = "utf-8";
            part.Headers.Add("Content-Transfer-Encoding", "8bit");
        }
        return part;
    }

    /// <summary>
    /// Reads the header section of <paramref name="message"/>: everything before the first empty
    /// line, or all of it when there is none. Reads at most <see cref="MaxHeaderSection"/> bytes;
    /// when the section is longer, the last field read (which may be cut short) is dropped.
    /// </summary>
    internal static byte[] ReadHeaderSection(Stream message)
    {
        var buffer = new byte[MaxHeaderSection];
        int length = 0, lineStart = 0;
        while (length < buffer.Length)
        {
            var read = message.Read(buffer, length, Math.Min(16 * 1024, buffer.Length - length));
            if (read == 0) return buffer[..length];
            for (var i = length; i < length + read; i++)
            {
                if (buffer[i] != (byte)'\n') continue;
                var lineLength = i - lineStart;
                if (lineLength == 0 || (lineLength == 1 && buffer[lineStart] == (byte)'\r')) return buffer[..lineStart];
                lineStart = i + 1;
            }
            length += read;
        }

        // The section goes on past what we read. Keep whole fields only: unless the unfinished
        // line visibly starts a new field, the last field may go on past the cap, so drop it too.
        var cut = lineStart;
        if (cut == length || buffer[cut] is (byte)' ' or (byte)'\t')
        {
            cut = 0;
            for (var p = lineStart - 1; p > 0; p--)
            {
                if (buffer[p - 1] == (byte)'\n' && buffer[p] is not ((byte)' ' or (byte)'\t'))
                {
                    cut = p;
                    break;
                }
            }
        }
        return buffer[..cut];
    }

    /// <summary>
    /// Parses a header section read by <see cref="ReadHeaderSection"/> after making it safe to copy:
    /// CRLF line ends only (bare CR and NUL become spaces), no line over 998 octets (longer ones are
    /// folded), and no leading lines that are not header fields (MimeKit refuses those).
    /// </summary>
    internal static HeaderList ParseHeaders(byte[] section)
    {
        var clean = new MemoryStream(section.Length + 64);
        var started = false;
        var start = 0;
        while (start < section.Length)
        {
            var end = Array.IndexOf(section, (byte)'\n', start);
            var next = end < 0 ? section.Length : end + 1;
            if (end < 0) end = section.Length;
            if (end > start && section[end - 1] == (byte)'\r') end--;
            var line = section.AsSpan(start, end - start);
            start = next;

            started |= StartsField(line);
            if (!started) continue;
            WriteFolded(clean, line);
        }

        clean.Position = 0;
        try
        {
            return HeaderList.Load(ParserOptions.Default, clean);
        }
        catch (FormatException)
        {
            // MimeKit refuses a section whose first line is not a field, which cannot happen
            // here; should it refuse anything else, a report without headers beats no report.
            return new HeaderList();
        }
    }

    // RFC 5322 §2.2: field-name is printable ASCII except ':', then (obsolete) WSP, then ':'.
    private static bool StartsField(ReadOnlySpan<byte> line)
    {
        var i = 0;
        while (i < line.Length && line[i] is > 32 and < 127 and not (byte)':') i++;
        if (i == 0) return false;
        while (i < line.Length && line[i] is (byte)' ' or (byte)'\t') i++;
        return i < line.Length && line[i] == (byte)':';
    }

    // Writes one line with CRLF, folding it when it is over 998 octets: before a space or tab
    // where there is one (unfolding then restores the line), else by inserting a space.
    private static void WriteFolded(Stream output, ReadOnlySpan<byte> line)
    {
        var copy = line.ToArray();
        for (var i = 0; i < copy.Length; i++)
            if (copy[i] is (byte)'\r' or 0) copy[i] = (byte)' ';
        ReadOnlySpan<byte> rest = copy;
        var insertSpace = false;
        while (true)
        {
            var room = insertSpace ? MaxLine - 1 : MaxLine;
            if (insertSpace) output.WriteByte((byte)' ');
            if (rest.Length <= room)
            {
                output.Write(rest);
                output.Write("\r\n"u8);
                return;
            }
            // Break before the last space or tab that leaves something on this line; it then
            // opens the continuation line.
            var cut = rest[1..(room + 1)].LastIndexOfAny((byte)' ', (byte)'\t') + 1;
            insertSpace = cut == 0;
            if (insertSpace)
            {
                cut = room;
                while (cut > 1 && (rest[cut] & 0xC0) == 0x80) cut--; // never split a UTF-8 sequence
            }
            output.Write(rest[..cut]);
            output.Write("\r\n"u8);
            rest = rest[cut..];
        }
    }

    // A DSN field with a value we fold ourselves: MimeKit would encode a long unstructured
    // value as RFC 2047 encoded-words, which mean nothing in a delivery-status field.
    private static Header Field(string name, string value)
    {
        var header = new Header(name, "");
        header.SetRawValue(Encoding.ASCII.GetBytes(Fold(name.Length + 1, value)));
        return header;
    }

    // The raw value after "Name:": " word word\r\n word\r\n", lines kept under 78 octets where the
    // words allow and never over 998; a word too long even for a line of its own is split.
    private static string Fold(int used, string value)
    {
        var folded = new StringBuilder(value.Length + 16);
        var column = used;
        var firstWord = true;
        foreach (var word in value.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var rest = word.AsSpan();
            while (rest.Length > 0)
            {
                if (!firstWord && column + 1 + rest.Length > FoldAt)
                {
                    folded.Append("\r\n");
                    column = 0;
                }
                else if (firstWord && column + 1 + rest.Length > MaxLine)
                {
                    folded.Append("\r\n"); // FWS may open the value: start the long word on a line of its own
                    column = 0;
                }
                firstWord = false;
                var take = Math.Min(rest.Length, MaxLine - column - 1);
                folded.Append(' ').Append(rest[..take]);
                column += 1 + take;
                rest = rest[take..];
            }
        }
        return folded.Append("\r\n").ToString();
    }

    // RFC 3464 §2.3.2 with RFC 6533 §3: "rfc822" for plain ASCII addresses, else "utf-8" in the
    // 7-bit utf-8-addr-xtext form, as message/delivery-status must stay ASCII.
    private static string TypedAddress(string address)
    {
        if (address.All(c => c is >= ' ' and < '\x7f')) return "rfc822; " + address;
        var xtext = new StringBuilder("utf-8; ");
        foreach (var rune in address.EnumerateRunes())
        {
            if (rune.Value is > 0x20 and < 0x7f and not ('+' or '=' or '\\')) xtext.Append((char)rune.Value);
            else xtext.Append("\\x{").Append(rune.Value.ToString("X", CultureInfo.InvariantCulture)).Append('}');
        }
        return xtext.ToString();
    }

    /// <summary>Decodes the utf-8-addr-xtext form of RFC 6533 §3 (used by tests and log readers).</summary>
    internal static string DecodeUtf8AddrXtext(string xtext)
    {
        var decoded = new StringBuilder(xtext.Length);
        for (var i = 0; i < xtext.Length; i++)
        {
            if (xtext[i] == '\\' && i + 2 < xtext.Length && xtext[i + 1] == 'x' && xtext[i + 2] == '{')
            {
                var close = xtext.IndexOf('}', i + 3);
                if (close > i + 3 && int.TryParse(xtext.AsSpan(i + 3, close - i - 3), NumberStyles.AllowHexSpecifier,
                        CultureInfo.InvariantCulture, out var value) && Rune.IsValid(value))
                {
                    decoded.Append(new Rune(value).ToString());
                    i = close;
                    continue;
                }
            }
            decoded.Append(xtext[i]);
        }
        return decoded.ToString();
    }

    private static bool IsSmtp(FailedRecipient failure) =>
        string.Equals(failure.DiagnosticType, "smtp", StringComparison.OrdinalIgnoreCase);

    // A host name as ASCII: A-labels for IDNs (RFC 5890); what cannot be converted is dropped.
    private static string AsciiHost(string? host)
    {
        if (string.IsNullOrWhiteSpace(host)) return "";
        var normalized = DomainName.Normalize(host.Trim());
        return Ascii.IsValid(normalized) ? Printable(normalized).Replace(" ", "") : "";
    }

    // Text for a delivery-status field: printable ASCII, runs of white space and controls (a
    // multi-line reply's CRLFs) made one space, anything else '?'.
    private static string Printable(string? text)
    {
        if (string.IsNullOrEmpty(text)) return "";
        var printable = new StringBuilder(text.Length);
        var space = false;
        foreach (var c in text)
        {
            if (char.IsWhiteSpace(c) || char.IsControl(c))
            {
                space = printable.Length > 0;
                continue;
            }
            if (space) printable.Append(' ');
            space = false;
            printable.Append(c is > ' ' and < '\x7f' ? c : '?');
        }
        return printable.ToString();
    }

    // Text for the human-readable part: any Unicode, but one line, no controls, at most max chars.
    private static string Readable(string? text, int max)
    {
        if (string.IsNullOrEmpty(text)) return "";
        var readable = new StringBuilder(Math.Min(text.Length, max));
        var space = false;
        foreach (var c in text)
        {
            if (char.IsWhiteSpace(c) || char.IsControl(c))
            {
                space = readable.Length > 0;
                continue;
            }
            if (readable.Length >= max) break;
            if (space) readable.Append(' ');
            space = false;
            readable.Append(c);
        }
        return readable.ToString();
    }

    // Appends text wrapped at 72 columns after indent; words longer than a line are split.
    private static void AppendWrapped(StringBuilder output, string text, string indent)
    {
        var width = TextWidth - indent.Length;
        var line = new StringBuilder();
        foreach (var word in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var rest = word.AsSpan();
            while (rest.Length > 0)
            {
                if (line.Length > 0 && line.Length + 1 + rest.Length > width)
                {
                    output.Append(indent).Append(line).Append("\r\n");
                    line.Clear();
                }
                if (line.Length > 0) line.Append(' ');
                var take = Math.Min(rest.Length, width - line.Length);
                line.Append(rest[..take]);
                rest = rest[take..];
            }
        }
        if (line.Length > 0) output.Append(indent).Append(line).Append("\r\n");
    }
}
