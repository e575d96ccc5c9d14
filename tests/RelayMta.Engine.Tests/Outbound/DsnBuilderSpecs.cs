using System.Collections.Immutable;
using System.Text;
using MimeKit;
using RelayMta.Engine.Outbound;
using RelayMta.Engine.Spool;

namespace RelayMta.Engine.Tests.Outbound;

public sealed class DsnBuilderSpecs
{
    private const string Host = "mx.relay.test";
    private const string Sender = "alice@example.org";
    private static readonly DateTimeOffset Received = new(2025, 3, 4, 10, 11, 12, TimeSpan.Zero);
    private static readonly DateTimeOffset Now = new(2025, 3, 9, 8, 7, 6, TimeSpan.FromHours(1));
    private static readonly DateTimeOffset Tried = new(2025, 3, 9, 8, 0, 0, TimeSpan.Zero);

    private const string OriginalHeaders =
        "Received: from client.example.org (client.example.org [192.0.2.10])\r\n" +
        "\tby mx.relay.test with ESMTP id 0123456789ABC; Tue, 04 Mar 2025 10:11:12 +0000\r\n" +
        "From: Alice <alice@example.org>\r\n" +
        "To: Bob <bob@example.net>, Carol <carol@example.com>\r\n" +
        "Subject: Quarterly figures\r\n" +
        "Message-ID: <original-1@example.org>\r\n" +
        "Date: Tue, 04 Mar 2025 10:11:00 +0000\r\n";
    private const string OriginalBody = "THE-SECRET-BODY-LINE must never be returned\r\n";

    private static readonly FailedRecipient Bob = new("bob@example.net", "5.1.1", "550 5.1.1 <bob@example.net>: no such user",
        "smtp", "mx1.example.net", Tried);
    private static readonly FailedRecipient Carol = new("carol@example.com", "4.4.7",
        "message expired after 5 days in the queue", "x-relaymta", null, null);

    [Fact]
    public void Should_build_a_multipart_report_of_type_delivery_status_with_exactly_three_parts_in_order()
    {
        var bytes = BuildDefault();
        var dsn = Parse(bytes);

        AssertCrlfAndShortLines(bytes);
        var report = Assert.IsType<MultipartReport>(dsn.Body);
        Assert.Equal("multipart/report", report.ContentType.MimeType);
        Assert.Equal("delivery-status", report.ReportType);
        Assert.Equal("delivery-status", report.ContentType.Parameters["report-type"]);
        Assert.Collection(report,
            p => Assert.Equal("text/plain", Assert.IsType<TextPart>(p).ContentType.MimeType),
            p => Assert.Equal("message/delivery-status", Assert.IsType<MessageDeliveryStatus>(p).ContentType.MimeType),
            p => Assert.Equal("text/rfc822-headers", Assert.IsType<TextRfc822Headers>(p).ContentType.MimeType));
    }

    [Fact]
    public void Should_send_from_MAILER_DAEMON_to_the_original_sender_marked_auto_replied()
    {
        var bytes = BuildDefault();
        var dsn = Parse(bytes);

        var from = Assert.IsType<MailboxAddress>(Assert.Single(dsn.From));
        Assert.Equal("Mail Delivery System", from.Name);
        Assert.Equal("MAILER-DAEMON@" + Host, from.Address);
        Assert.Equal(Sender, Assert.IsType<MailboxAddress>(Assert.Single(dsn.To)).Address);
        Assert.Empty(dsn.Cc);
        Assert.Equal("Undelivered Mail Returned to Sender", dsn.Subject);
        Assert.Equal(Now, dsn.Date);
        Assert.EndsWith("@" + Host, dsn.MessageId);
        Assert.Equal("auto-replied", dsn.Headers["Auto-Submitted"]);
        Assert.Equal("1.0", dsn.Headers[HeaderId.MimeVersion]);
        var headerSection = Text(bytes)[..Text(bytes).IndexOf("\r\n\r\n", StringComparison.Ordinal)];
        Assert.Contains("\r\nMessage-ID: <", headerSection);
    }

    [Fact]
    public void Should_make_a_fresh_Message_ID_for_every_report()
    {
        var first = Parse(BuildDefault()).MessageId;
        var second = Parse(BuildDefault()).MessageId;

        Assert.NotEqual(first, second);
    }

    [Fact]
    public void Should_give_the_per_message_fields_reporting_MTA_queue_id_and_arrival_date()
    {
        var status = DeliveryStatus(Parse(BuildDefault()));

        var perMessage = status.StatusGroups[0];
        Assert.Equal("dns; " + Host, Value(perMessage, "Reporting-MTA"));
        Assert.Equal("0123456789ABC", Value(perMessage, "X-RelayMta-Queue-ID"));
        Assert.True(MimeKit.Utils.DateUtils.TryParse(Value(perMessage, "Arrival-Date"), out var arrival));
        Assert.Equal(Received, arrival);
        Assert.Equal(3, status.StatusGroups.Count);
    }

    [Fact]
    public void Should_report_a_recipient_refused_by_a_remote_MTA_with_its_SMTP_reply()
    {
        var group = DeliveryStatus(Parse(BuildDefault())).StatusGroups[1];

        Assert.Equal(
            ["Final-Recipient", "Action", "Status", "Remote-MTA", "Diagnostic-Code", "Last-Attempt-Date"],
            group.Select(h => h.Field));
        Assert.Equal("rfc822; bob@example.net", Value(group, "Final-Recipient"));
        Assert.Equal("failed", Value(group, "Action"));
        Assert.Equal("5.1.1", Value(group, "Status"));
        Assert.Equal("dns; mx1.example.net", Value(group, "Remote-MTA"));
        Assert.Equal("smtp; 550 5.1.1 <bob@example.net>: no such user", Value(group, "Diagnostic-Code"));
        Assert.True(MimeKit.Utils.DateUtils.TryParse(Value(group, "Last-Attempt-Date"), out var tried));
        Assert.Equal(Tried, tried);
    }

    [Fact]
    public void Should_report_a_recipient_failed_by_us_with_an_x_relaymta_reason_and_no_Remote_MTA()
    {
        var group = DeliveryStatus(Parse(BuildDefault())).StatusGroups[2];

        Assert.Equal(["Final-Recipient", "Action", "Status", "Diagnostic-Code"], group.Select(h => h.Field));
        Assert.Equal("rfc822; carol@example.com", Value(group, "Final-Recipient"));
        Assert.Equal("failed", Value(group, "Action"));
        Assert.Equal("4.4.7", Value(group, "Status"));
        Assert.Equal("x-relaymta; message expired after 5 days in the queue", Value(group, "Diagnostic-Code"));
        Assert.Null(group["Remote-MTA"]);
        Assert.Null(group["Last-Attempt-Date"]);
    }

    [Fact]
    public void Should_explain_in_plain_words_and_list_every_recipient_with_its_diagnostic()
    {
        var report = Report(Parse(BuildDefault()));

        var text = Unwrapped(Assert.IsType<TextPart>(report[0]).Text);
        Assert.Contains("could not be delivered", text);
        Assert.Contains("<bob@example.net>", text);
        Assert.Contains("mx1.example.net replied: 550 5.1.1 <bob@example.net>: no such user", text);
        Assert.Contains("<carol@example.com>", text);
        Assert.Contains("message expired after 5 days in the queue", text);
        Assert.Contains("Quarterly figures", text);
        Assert.True(text.IndexOf("<bob@example.net>", StringComparison.Ordinal) < text.IndexOf("<carol@example.com>", StringComparison.Ordinal));
    }

    [Fact]
    public void Should_return_the_original_header_section_in_part_three_and_not_the_body()
    {
        var bytes = BuildDefault();

        var returned = Returned(bytes);
        Assert.Equal("Quarterly figures", returned.Subject);
        Assert.Equal("original-1@example.org", returned.MessageId);
        Assert.Equal(["bob@example.net", "carol@example.com"], returned.To.Mailboxes.Select(m => m.Address));
        Assert.Equal(["Received", "From", "To", "Subject", "Message-ID", "Date"], returned.Headers.Select(h => h.Field));
        Assert.Contains(OriginalHeaders, Text(bytes));
        Assert.DoesNotContain("THE-SECRET-BODY-LINE", Text(bytes));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Should_use_CRLF_only_and_no_line_over_998_octets_even_with_a_3000_character_diagnostic(bool words)
    {
        var diagnostic = words
            ? string.Join(' ', Enumerable.Range(0, 500).Select(i => $"wd{i:0000}"))[..3000]
            : "550 " + new string('x', 2996);
        var failure = Bob with { Diagnostic = diagnostic, RemoteMta = "mx-" + new string('a', 60) + ".example.net" };

        var bytes = Build([failure]);

        AssertCrlfAndShortLines(bytes);
        Assert.DoesNotContain("=?", Text(bytes)); // folded, not turned into RFC 2047 encoded-words
        var group = DeliveryStatus(Parse(bytes)).StatusGroups[1];
        if (words)
            Assert.Equal("smtp; " + diagnostic, Value(group, "Diagnostic-Code"));
        else
            Assert.Equal("smtp;" + diagnostic.Replace(" ", ""), Value(group, "Diagnostic-Code").Replace(" ", ""));
        var text = Explanation(bytes);
        if (words)
            Assert.Contains(diagnostic, text);
        else
            Assert.Contains(diagnostic.Replace(" ", ""), text.Replace(" ", ""));
    }

    [Fact]
    public void Should_fold_a_multi_line_SMTP_reply_into_one_diagnostic_field()
    {
        var failure = Bob with { Diagnostic = "550-5.7.1 first line\r\n550 5.7.1 second line" };

        var bytes = Build([failure]);

        AssertCrlfAndShortLines(bytes);
        var group = DeliveryStatus(Parse(bytes)).StatusGroups[1];
        Assert.Equal("smtp; 550-5.7.1 first line 550 5.7.1 second line", Value(group, "Diagnostic-Code"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("\r\n")]
    public void Should_return_every_header_of_a_message_that_has_no_body_and_no_empty_line(string ending)
    {
        var original = OriginalHeaders + "X-Last: final field" + ending;

        var bytes = DsnBuilder.Build(Host, Envelope(), [Bob, Carol], Stream(original), Now);

        AssertCrlfAndShortLines(bytes);
        var returned = Returned(bytes);
        Assert.Equal(["Received", "From", "To", "Subject", "Message-ID", "Date", "X-Last"], returned.Headers.Select(h => h.Field));
        Assert.Equal("final field", returned.Headers["X-Last"]);
    }

    [Fact]
    public void Should_return_an_empty_header_part_for_a_message_that_starts_with_its_body()
    {
        var bytes = DsnBuilder.Build(Host, Envelope(), [Bob], Stream("\r\n" + OriginalBody), Now);

        AssertCrlfAndShortLines(bytes);
        var returned = Returned(bytes);
        Assert.Empty(returned.Headers);
        Assert.DoesNotContain("THE-SECRET-BODY-LINE", Text(bytes));
    }

    [Fact]
    public void Should_give_a_UTF8_recipient_the_utf_8_address_type_in_its_7bit_form_and_stay_7bit()
    {
        const string address = "пользователь+tag@пример.испытание";
        var failure = new FailedRecipient(address, "5.1.1", "550 5.1.1 unknown user", "smtp", "почта.пример.испытание", null);

        var bytes = Build([failure]);

        Assert.All(bytes, b => Assert.True(b < 0x80, "the report is 7-bit"));
        AssertCrlfAndShortLines(bytes);
        var dsn = Parse(bytes);
        var group = DeliveryStatus(dsn).StatusGroups[1];
        var finalRecipient = Value(group, "Final-Recipient");
        Assert.StartsWith("utf-8; ", finalRecipient);
        var xtext = finalRecipient["utf-8; ".Length..];
        Assert.DoesNotContain("+", xtext); // '+' is escaped in utf-8-addr-xtext (RFC 6533 §3)
        Assert.Equal(address, DsnBuilder.DecodeUtf8AddrXtext(xtext));
        Assert.Equal("dns; xn--80a1acny.xn--e1afmkfd.xn--80akhbyknj4f", Value(group, "Remote-MTA"));
        var text = Explanation(bytes);
        Assert.Contains("<" + address + ">", text);
    }

    [Fact]
    public void Should_copy_UTF8_original_headers_unchanged_and_label_them_8bit()
    {
        const string headers = "From: Алиса <alice@example.org>\r\nTo: пользователь@пример.испытание\r\nSubject: Привет\r\n";

        var bytes = DsnBuilder.Build(Host, Envelope(), [Bob], Stream(headers + "\r\n" + OriginalBody), Now);

        AssertCrlfAndShortLines(bytes);
        Assert.Contains(headers, Encoding.UTF8.GetString(bytes));
        var part = Assert.IsType<TextRfc822Headers>(Report(Parse(bytes))[2]);
        Assert.Equal("utf-8", part.ContentType.Charset);
        Assert.Equal("8bit", part.Headers[HeaderId.ContentTransferEncoding]);
        Assert.Equal("Привет", Returned(bytes).Subject);
    }

    [Fact]
    public void Should_address_a_UTF8_sender_with_its_UTF8_address()
    {
        const string sender = "алиса@пример.испытание";
        var envelope = Envelope() with { Sender = sender };

        var bytes = DsnBuilder.Build(Host, envelope, [Bob], Stream(OriginalHeaders), Now);

        AssertCrlfAndShortLines(bytes);
        Assert.Contains("\r\nTo: " + sender + "\r\n", Encoding.UTF8.GetString(bytes));
        Assert.Equal(sender, Assert.IsType<MailboxAddress>(Assert.Single(Parse(bytes).To)).Address);
    }

    [Fact]
    public void Should_fold_an_original_header_line_longer_than_998_octets()
    {
        var spaced = string.Join(' ', Enumerable.Repeat("<ref-0123456789@example.org>", 100));
        var unbroken = new string('z', 2500);
        var original = "References: " + spaced + "\r\nX-Blob: " + unbroken + "\r\nSubject: after\r\n\r\n" + OriginalBody;

        var bytes = DsnBuilder.Build(Host, Envelope(), [Bob], Stream(original), Now);

        AssertCrlfAndShortLines(bytes);
        var returned = Returned(bytes);
        Assert.Equal(spaced, returned.Headers[HeaderId.References]);
        Assert.Equal(unbroken, Value(returned.Headers, "X-Blob").Replace(" ", ""));
        Assert.Equal("after", returned.Subject);
    }

    [Fact]
    public void Should_drop_leading_lines_that_are_not_header_fields()
    {
        var original = "From alice@example.org Tue Mar  4 10:11:12 2025\r\n  stray continuation\r\n" + OriginalHeaders + "\r\n" + OriginalBody;

        var bytes = DsnBuilder.Build(Host, Envelope(), [Bob], Stream(original), Now);

        var returned = Returned(bytes);
        Assert.Equal("Received", returned.Headers[0].Field);
        Assert.Equal("Quarterly figures", returned.Subject);
        Assert.DoesNotContain("stray continuation", Text(bytes));
    }

    [Fact]
    public void Should_read_no_more_than_256_KiB_of_the_original_and_keep_only_whole_fields()
    {
        var field = "X-Filler: " + new string('f', 80) + "\r\n\t" + new string('g', 80) + "\r\n";
        var original = new StringBuilder("Subject: huge\r\n");
        while (original.Length < 1024 * 1024) original.Append(field);
        original.Append("\r\n").Append(OriginalBody);
        var stream = Stream(original.ToString());

        var bytes = DsnBuilder.Build(Host, Envelope(), [Bob], stream, Now);

        Assert.True(stream.Position <= 256 * 1024, $"read {stream.Position} bytes");
        AssertCrlfAndShortLines(bytes);
        var returned = Returned(bytes);
        Assert.Equal("huge", returned.Subject);
        var fillers = returned.Headers.Where(h => h.Field == "X-Filler").ToList();
        Assert.InRange(fillers.Count, 1000, 256 * 1024 / field.Length);
        Assert.All(fillers, h => Assert.Equal(new string('f', 80) + "\t" + new string('g', 80), h.Value));
    }

    [Fact]
    public void Should_refuse_to_bounce_a_message_from_the_null_sender()
    {
        var envelope = Envelope() with { Sender = "" };

        Assert.Throws<ArgumentException>(() => DsnBuilder.Build(Host, envelope, [Bob], Stream(OriginalHeaders), Now));
    }

    [Theory]
    [InlineData("550")]
    [InlineData("2.0.0")]
    [InlineData("5.1")]
    [InlineData("5.1.1234")]
    public void Should_refuse_a_status_that_is_not_an_RFC_3463_failure_code(string status)
    {
        Assert.Throws<ArgumentException>(() => Build([Bob with { Status = status }]));
    }

    [Fact]
    public void Should_refuse_a_report_without_recipients()
    {
        Assert.Throws<ArgumentException>(() => Build([]));
    }

    // ---- helpers ----

    private static MailEnvelope Envelope() =>
        new(new QueueId("0123456789ABC"), Received, Sender,
            ImmutableArray.Create("bob@example.net", "carol@example.com", "dave@example.com"),
            "192.0.2.10", "client.example.org", "ESMTP", null, MessageFlags.None, OriginalHeaders.Length + 2 + OriginalBody.Length);

    private static byte[] BuildDefault() => Build([Bob, Carol]);

    private static byte[] Build(IReadOnlyList<FailedRecipient> failures) =>
        DsnBuilder.Build(Host, Envelope(), failures, Stream(OriginalHeaders + "\r\n" + OriginalBody), Now);

    private static MemoryStream Stream(string text) => new(Encoding.UTF8.GetBytes(text));

    private static string Text(byte[] bytes) => Encoding.ASCII.GetString(bytes);

    private static MimeMessage Parse(byte[] bytes)
    {
        var message = MimeMessage.Load(new MemoryStream(bytes));
        Assert.IsType<MultipartReport>(message.Body);
        return message;
    }

    private static MultipartReport Report(MimeMessage dsn) => Assert.IsType<MultipartReport>(dsn.Body);

    private static MimeMessage Returned(byte[] bytes)
    {
        var message = Assert.IsType<TextRfc822Headers>(Report(Parse(bytes))[2]).Message;
        Assert.NotNull(message);
        return message;
    }

    private static string Explanation(byte[] bytes) => Unwrapped(Assert.IsType<TextPart>(Report(Parse(bytes))[0]).Text);

    private static string Value(HeaderList fields, string name)
    {
        var value = fields[name];
        Assert.NotNull(value);
        return value;
    }

    private static MessageDeliveryStatus DeliveryStatus(MimeMessage dsn) =>
        Assert.IsType<MessageDeliveryStatus>(Report(dsn)[1]);

    // The human-readable part is wrapped at 72 columns: join its lines again to search it.
    private static string Unwrapped(string text) =>
        string.Join(' ', text.Split(["\r\n", "\n"], StringSplitOptions.None).Select(l => l.Trim()).Where(l => l.Length > 0));

    private static void AssertCrlfAndShortLines(byte[] bytes)
    {
        Assert.True(bytes.Length >= 2 && bytes[^2] == '\r' && bytes[^1] == '\n', "ends with CRLF");
        var lineStart = 0;
        for (var i = 0; i < bytes.Length; i++)
        {
            if (bytes[i] == '\r')
                Assert.True(i + 1 < bytes.Length && bytes[i + 1] == '\n', $"bare CR at {i}");
            else if (bytes[i] == '\n')
            {
                Assert.True(i > 0 && bytes[i - 1] == '\r', $"bare LF at {i}");
                Assert.True(i - 1 - lineStart <= 998, $"line at {lineStart} has {i - 1 - lineStart} octets");
                lineStart = i + 1;
            }
        }
    }
}
