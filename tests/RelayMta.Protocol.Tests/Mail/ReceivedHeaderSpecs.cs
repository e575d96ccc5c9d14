using System.Net;
using RelayMta.Protocol.Mail;

namespace RelayMta.Protocol.Tests.Mail;

public sealed class ReceivedHeaderSpecs
{
    private static readonly DateTimeOffset When = new(2026, 11, 30, 2, 32, 33, TimeSpan.Zero);

    [Fact]
    public void Should_build_the_Received_field_for_one_recipient()
    {
        var field = ReceivedHeader.Build("client.example", IPAddress.Parse("192.0.2.1"), "mx.example", "ESMTP", "Q1",
            "rcpt@example.com", When);

        Assert.Equal(
            "Received: from client.example ([192.0.2.1])\r\n" +
            "\tby mx.example (RelayMta) with ESMTP id Q1\r\n" +
            "\tfor <rcpt@example.com>; Mon, 30 Nov 2026 02:32:33 +0000\r\n",
            field);
    }

    [Fact]
    public void Should_leave_out_the_FOR_clause_without_a_single_recipient()
    {
        // RFC 5321 7.2: naming one of several recipients would leak the others' envelope.
        var field = ReceivedHeader.Build("client.example", IPAddress.Parse("192.0.2.1"), "mx.example", "SMTP", "Q2",
            null, When);

        Assert.Equal(
            "Received: from client.example ([192.0.2.1])\r\n" +
            "\tby mx.example (RelayMta) with SMTP id Q2; Mon, 30 Nov 2026 02:32:33 +0000\r\n",
            field);
        Assert.DoesNotContain(" for ", field);
    }

    [Fact]
    public void Should_add_TLS_and_authentication_comments_when_given()
    {
        var field = ReceivedHeader.Build("c.example", IPAddress.Parse("192.0.2.1"), "mx.example", "ESMTPSA", "Q3",
            null, When, tlsComment: "TLS1.3", authUser: "alice");

        Assert.Equal(
            "Received: from c.example ([192.0.2.1])\r\n" +
            "\tby mx.example (RelayMta)\r\n" +
            "\t(TLS1.3)\r\n" +
            "\t(Authenticated sender: alice) with ESMTPSA id Q3; Mon, 30 Nov 2026 02:32:33 +0000\r\n",
            field);
    }

    [Theory]
    [InlineData("192.0.2.1", "[192.0.2.1]")]
    [InlineData("2001:db8::1", "[IPv6:2001:db8::1]")]
    [InlineData("2001:0DB8:0000:0000:0000:0000:0000:0001", "[IPv6:2001:db8::1]")]
    [InlineData("::1", "[IPv6:::1]")]
    [InlineData("::ffff:192.0.2.1", "[192.0.2.1]")] // a dual-stack socket's view of an IPv4 client
    public void Should_write_the_client_as_an_address_literal(string address, string literal)
    {
        Assert.Equal(literal, ReceivedHeader.AddressLiteral(IPAddress.Parse(address)));

        var field = ReceivedHeader.Build("h", IPAddress.Parse(address), "mx", "SMTP", "Q", null, When);
        Assert.StartsWith($"Received: from h ({literal})\r\n", field);
    }

    [Theory]
    [InlineData(0, 0, "Mon, 30 Nov 2026 02:32:33 +0000")]
    [InlineData(5, 30, "Mon, 30 Nov 2026 02:32:33 +0530")]
    [InlineData(-8, 0, "Mon, 30 Nov 2026 02:32:33 -0800")]
    [InlineData(0, -30, "Mon, 30 Nov 2026 02:32:33 -0030")]
    [InlineData(14, 0, "Mon, 30 Nov 2026 02:32:33 +1400")]
    public void Should_format_an_RFC_5322_date_with_a_numeric_offset(int hours, int minutes, string expected)
    {
        var when = new DateTimeOffset(2026, 11, 30, 2, 32, 33, new TimeSpan(hours, minutes, 0));

        Assert.Equal(expected, ReceivedHeader.FormatDate(when));
    }

    [Fact]
    public void Should_format_single_digit_days_with_two_digits_and_English_names()
    {
        Assert.Equal("Sat, 02 Jan 2027 09:05:07 +0000",
            ReceivedHeader.FormatDate(new DateTimeOffset(2027, 1, 2, 9, 5, 7, TimeSpan.Zero)));
    }

    [Theory]
    [InlineData("evil\r\nX-Injected: yes")]
    [InlineData("evil\nX-Injected: yes")]
    [InlineData("evil\rX-Injected: yes")]
    [InlineData("evil\u0000\r\n\r\nX-Injected: yes")]
    public void Should_keep_CR_and_LF_in_the_HELO_name_from_breaking_the_field(string helo)
    {
        var field = ReceivedHeader.Build(helo, IPAddress.Parse("192.0.2.1"), "mx.example", "SMTP", "Q", "r@x.example", When);

        // Every line but the first is a continuation (starts with a tab), so nothing was injected.
        var lines = field[..^2].Split("\r\n");
        Assert.All(lines.Skip(1), l => Assert.StartsWith("\t", l));
        Assert.DoesNotContain('\n', string.Concat(lines));
        Assert.DoesNotContain('\r', string.Concat(lines));
        Assert.DoesNotContain('\0', field);
        Assert.Contains("X-Injected: yes", lines[0]);
    }

    [Theory]
    [InlineData("a(b)c", "a?b?c")]
    [InlineData("tab\there", "tab?here")]
    [InlineData("del\u007f", "del?")]
    [InlineData("bücher.example", "b?cher.example")]
    public void Should_replace_characters_that_could_break_the_TCP_info_comment(string helo, string shown)
    {
        var field = ReceivedHeader.Build(helo, IPAddress.Parse("192.0.2.1"), "mx", "SMTP", "Q", null, When);

        Assert.StartsWith($"Received: from {shown} ([192.0.2.1])", field);
    }

    [Fact]
    public void Should_bound_the_length_of_client_supplied_words()
    {
        var field = ReceivedHeader.Build(new string('h', 5000), IPAddress.Parse("192.0.2.1"), "mx", "SMTP", "Q",
            new string('r', 5000), When);

        Assert.Contains($"from {new string('h', 256)} (", field);
        Assert.Contains($"for <{new string('r', 256)}>", field);
    }

    [Theory]
    [InlineData("a@b.example", "Return-Path: <a@b.example>\r\n")]
    [InlineData("", "Return-Path: <>\r\n")]
    [InlineData("a\r\nX: y@b", "Return-Path: <a??X: y@b>\r\n")]
    public void Should_build_the_Return_Path_field(string sender, string expected)
    {
        Assert.Equal(expected, ReceivedHeader.ReturnPath(sender));
    }
}
