using RelayMta.Protocol.Smtp;
using RelayMta.Protocol.Tests.Support;

namespace RelayMta.Protocol.Tests.Client;

public sealed class EhloCapabilitiesSpecs
{
    private static EhloCapabilities Parse(string wire)
    {
        var buffer = Segments.Sequence(Bytes.Utf8(wire));
        Assert.Equal(ReplyStatus.Complete, ReplyReader.TryRead(ref buffer, out var response));
        return EhloCapabilities.Parse(response!);
    }

    /// <summary>Every flag, in a fixed order, so one assertion shows them all.</summary>
    private static string Flags(EhloCapabilities caps) => string.Join(",", new[]
    {
        caps.Pipelining ? "PIPELINING" : null,
        caps.Size ? "SIZE" : null,
        caps.EightBitMime ? "8BITMIME" : null,
        caps.SmtpUtf8 ? "SMTPUTF8" : null,
        caps.StartTls ? "STARTTLS" : null,
        caps.EnhancedStatusCodes ? "ENHANCEDSTATUSCODES" : null,
        caps.Chunking ? "CHUNKING" : null,
        caps.Dsn ? "DSN" : null,
    }.Where(f => f is not null));

    private static string Mechanisms(EhloCapabilities caps) => string.Join(",", caps.AuthMechanisms.Order(StringComparer.Ordinal));

    [Fact]
    public void Should_read_a_Postfix_EHLO_reply()
    {
        var caps = Parse(
            "250-mail.example.org\r\n" +
            "250-PIPELINING\r\n" +
            "250-SIZE 10240000\r\n" +
            "250-VRFY\r\n" +
            "250-ETRN\r\n" +
            "250-STARTTLS\r\n" +
            "250-AUTH PLAIN LOGIN\r\n" +
            "250-AUTH=PLAIN LOGIN\r\n" +
            "250-ENHANCEDSTATUSCODES\r\n" +
            "250-8BITMIME\r\n" +
            "250-DSN\r\n" +
            "250-SMTPUTF8\r\n" +
            "250 CHUNKING\r\n");

        Assert.Equal("PIPELINING,SIZE,8BITMIME,SMTPUTF8,STARTTLS,ENHANCEDSTATUSCODES,CHUNKING,DSN", Flags(caps));
        Assert.Equal(10_240_000, caps.MaxSize);
        Assert.Equal("LOGIN,PLAIN", Mechanisms(caps));
    }

    [Fact]
    public void Should_read_a_Gmail_EHLO_reply()
    {
        var caps = Parse(
            "250-smtp.gmail.com at your service, [203.0.113.7]\r\n" +
            "250-SIZE 35882577\r\n" +
            "250-8BITMIME\r\n" +
            "250-AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH\r\n" +
            "250-ENHANCEDSTATUSCODES\r\n" +
            "250-PIPELINING\r\n" +
            "250-CHUNKING\r\n" +
            "250 SMTPUTF8\r\n");

        Assert.Equal("PIPELINING,SIZE,8BITMIME,SMTPUTF8,ENHANCEDSTATUSCODES,CHUNKING", Flags(caps));
        Assert.False(caps.StartTls);
        Assert.False(caps.Dsn);
        Assert.Equal(35_882_577, caps.MaxSize);
        Assert.Equal("LOGIN,OAUTHBEARER,PLAIN,PLAIN-CLIENTTOKEN,XOAUTH,XOAUTH2", Mechanisms(caps));
    }

    [Fact]
    public void Should_read_an_Exchange_EHLO_reply_and_ignore_its_private_keywords()
    {
        var caps = Parse(
            "250-EX01.corp.example.com Hello [198.51.100.20]\r\n" +
            "250-SIZE 37748736\r\n" +
            "250-PIPELINING\r\n" +
            "250-DSN\r\n" +
            "250-ENHANCEDSTATUSCODES\r\n" +
            "250-STARTTLS\r\n" +
            "250-X-ANONYMOUSTLS\r\n" +
            "250-AUTH NTLM\r\n" +
            "250-X-EXPS GSSAPI NTLM\r\n" +
            "250-8BITMIME\r\n" +
            "250-BINARYMIME\r\n" +
            "250-CHUNKING\r\n" +
            "250-XRDST\r\n" +
            "250 XSHADOWREQUEST\r\n");

        Assert.Equal("PIPELINING,SIZE,8BITMIME,STARTTLS,ENHANCEDSTATUSCODES,CHUNKING,DSN", Flags(caps));
        Assert.Equal(37_748_736, caps.MaxSize);
        Assert.Equal("NTLM", Mechanisms(caps)); // GSSAPI is offered under X-EXPS, not AUTH
    }

    [Theory]
    [InlineData("SIZE 52428800", 52_428_800L)]
    [InlineData("SIZE 1", 1L)]
    [InlineData("SIZE", null)]
    [InlineData("SIZE 0", null)]                       // RFC 1870: 0 means no fixed maximum
    [InlineData("SIZE unlimited", null)]
    [InlineData("SIZE -1", null)]
    [InlineData("SIZE +5", null)]
    [InlineData("SIZE 1e6", null)]
    [InlineData("SIZE 99999999999999999999999", null)] // does not fit a long
    [InlineData("size 1000", 1000L)]
    [InlineData("SIZE  2048", 2048L)]                 // extra space between keyword and parameter
    public void Should_read_SIZE_with_and_without_a_usable_maximum(string line, long? max)
    {
        var caps = Parse($"250-mx.example.com\r\n250 {line}\r\n");

        Assert.True(caps.Size);
        Assert.Equal(max, caps.MaxSize);
    }

    [Fact]
    public void Should_match_keywords_without_regard_to_case()
    {
        var caps = Parse(
            "250-mx.example.com\r\n250-pipelining\r\n250-Size 100\r\n250-8bitmime\r\n250-SmtpUtf8\r\n" +
            "250-StartTLS\r\n250-enhancedStatusCodes\r\n250-chunking\r\n250-dsn\r\n250 auth plain Login cram-md5\r\n");

        Assert.Equal("PIPELINING,SIZE,8BITMIME,SMTPUTF8,STARTTLS,ENHANCEDSTATUSCODES,CHUNKING,DSN", Flags(caps));
        Assert.Equal(100, caps.MaxSize);
        Assert.Equal("CRAM-MD5,LOGIN,PLAIN", Mechanisms(caps));
    }

    [Theory]
    [InlineData("AUTH PLAIN LOGIN", "LOGIN,PLAIN")]
    [InlineData("AUTH CRAM-MD5 DIGEST-MD5 SCRAM-SHA-256", "CRAM-MD5,DIGEST-MD5,SCRAM-SHA-256")]
    [InlineData("AUTH  PLAIN   LOGIN ", "LOGIN,PLAIN")]
    [InlineData("AUTH", "")]
    [InlineData("AUTH=LOGIN", "LOGIN")]
    [InlineData("AUTH=LOGIN PLAIN", "LOGIN,PLAIN")]
    [InlineData("auth=login", "LOGIN")]
    [InlineData("AUTH=", "")]                      // nothing after '=': no empty mechanism
    [InlineData("AUTHENTICATE PLAIN", "")]          // not the AUTH keyword
    [InlineData("X-AUTH PLAIN", "")]
    public void Should_collect_AUTH_mechanisms_in_upper_case(string line, string mechanisms)
    {
        var caps = Parse($"250-mx.example.com\r\n250 {line}\r\n");

        Assert.Equal(mechanisms, Mechanisms(caps));
        Assert.DoesNotContain("", caps.AuthMechanisms);
    }

    [Fact]
    public void Should_merge_the_AUTH_and_old_AUTH_equals_lines_without_duplicates()
    {
        var caps = Parse("250-mx.example.com\r\n250-AUTH=LOGIN PLAIN\r\n250-AUTH LOGIN PLAIN CRAM-MD5\r\n250 AUTH=login\r\n");

        Assert.Equal(3, caps.AuthMechanisms.Count);
        Assert.Equal("CRAM-MD5,LOGIN,PLAIN", Mechanisms(caps));
        Assert.Contains("PLAIN", caps.AuthMechanisms);
        Assert.DoesNotContain("plain", caps.AuthMechanisms);
    }

    [Fact]
    public void Should_ignore_unknown_keywords_and_look_alikes()
    {
        var caps = Parse(
            "250-mx.example.com\r\n250-VRFY\r\n250-ETRN\r\n250-XCLIENT NAME ADDR\r\n250-DELIVERBY 120\r\n" +
            "250-PIPELININGX\r\n250-SIZE100\r\n250-XSTARTTLS\r\n250-8BITMIME2\r\n250-DSN-FOO\r\n250-\r\n250 HELP\r\n");

        Assert.Equal("", Flags(caps));
        Assert.Null(caps.MaxSize);
        Assert.Empty(caps.AuthMechanisms);
    }

    [Theory]
    [InlineData("250 STARTTLS\r\n")]
    [InlineData("250-PIPELINING\r\n250 mx.example.com\r\n")]
    [InlineData("250-SIZE 1000\r\n250 HELP\r\n")]
    [InlineData("250-AUTH PLAIN\r\n250 HELP\r\n")]
    [InlineData("250-AUTH=PLAIN\r\n250 HELP\r\n")]
    public void Should_never_take_the_greeting_line_for_a_keyword(string wire)
    {
        var caps = Parse(wire);

        Assert.Equal("", Flags(caps));
        Assert.Null(caps.MaxSize);
        Assert.Empty(caps.AuthMechanisms);
    }

    [Fact]
    public void Should_take_a_keyword_on_the_line_right_after_the_greeting()
    {
        var caps = Parse("250-STARTTLS\r\n250 STARTTLS\r\n");

        Assert.True(caps.StartTls);
    }

    [Fact]
    public void Should_offer_nothing_for_a_server_that_only_speaks_HELO()
    {
        var none = EhloCapabilities.None;

        Assert.Equal("", Flags(none));
        Assert.Null(none.MaxSize);
        Assert.Empty(none.AuthMechanisms);
        Assert.Equal("", Flags(Parse("250 mx.example.com\r\n")));
    }
}
