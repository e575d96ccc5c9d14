using System.Text;
using RelayMta.Protocol.Smtp;
using RelayMta.Protocol.Tests.Support;

namespace RelayMta.Protocol.Tests.Smtp;

public sealed class ParseMailFromSpecs
{
    private static SmtpReply? Parse(byte[] argument, out string local, out string domain, out bool isNull,
        out bool nonAscii, out MailParameters parameters)
    {
        var reply = CommandParser.ParseMailFrom(argument, out var path, out parameters);
        local = Encoding.UTF8.GetString(path.LocalPart);
        domain = Encoding.UTF8.GetString(path.Domain);
        isNull = path.IsNull;
        nonAscii = path.HasNonAscii;
        Assert.False(path.IsPostmaster); // never for a sender
        return reply;
    }

    [Fact]
    public void Should_use_the_reply_codes_of_RFC_5321_and_3463()
    {
        Assert.Equal((501, "5.1.7"), (Replies.BadSenderSyntax.Code, Replies.BadSenderSyntax.Enhanced));
        Assert.Equal((501, "5.1.3"), (Replies.BadRecipientSyntax.Code, Replies.BadRecipientSyntax.Enhanced));
        Assert.Equal((501, "5.5.4"), (Replies.SyntaxError.Code, Replies.SyntaxError.Enhanced));
        Assert.Equal((555, "5.5.4"), (Replies.ParameterNotImplemented.Code, Replies.ParameterNotImplemented.Enhanced));
    }

    [Theory]
    [InlineData("FROM:<>", "", "", true, false)]
    [InlineData("from:<>", "", "", true, false)]
    [InlineData("FROM: <>", "", "", true, false)]
    [InlineData("FROM:<a@b.example>", "a", "b.example", false, false)]
    [InlineData("FROM: <a@b.example>", "a", "b.example", false, false)]
    [InlineData("From:   <a@b.example>", "a", "b.example", false, false)]
    [InlineData("FROM:<A.b-C+tag@Sub.Example.COM>", "A.b-C+tag", "Sub.Example.COM", false, false)]
    [InlineData("FROM:<!#$%&'*+-/=?^_`{|}~@b.example>", "!#$%&'*+-/=?^_`{|}~", "b.example", false, false)]
    [InlineData("FROM:<a@b>", "a", "b", false, false)]
    [InlineData("FROM:<a@1-2.example>", "a", "1-2.example", false, false)]
    [InlineData("FROM:<@relay.example:u@c.example>", "u", "c.example", false, false)]
    [InlineData("FROM:<@a.example,@b.example:u@c.example>", "u", "c.example", false, false)]
    [InlineData("FROM:<\"john doe\"@example.com>", "\"john doe\"", "example.com", false, false)]
    [InlineData("FROM:<\"a@b\"@example.com>", "\"a@b\"", "example.com", false, false)]
    [InlineData("FROM:<\"a>b\"@example.com>", "\"a>b\"", "example.com", false, false)]
    [InlineData("FROM:<\"say \\\"hi\\\"\"@example.com>", "\"say \\\"hi\\\"\"", "example.com", false, false)]
    [InlineData("FROM:<\"\"@example.com>", "\"\"", "example.com", false, false)]
    [InlineData("FROM:<u@[192.0.2.1]>", "u", "[192.0.2.1]", false, false)]
    [InlineData("FROM:<u@[0.0.0.0]>", "u", "[0.0.0.0]", false, false)]
    [InlineData("FROM:<u@[255.255.255.255]>", "u", "[255.255.255.255]", false, false)]
    [InlineData("FROM:<u@[IPv6:2001:db8::1]>", "u", "[IPv6:2001:db8::1]", false, false)]
    [InlineData("FROM:<u@[ipv6:2001:DB8::1]>", "u", "[ipv6:2001:DB8::1]", false, false)]
    [InlineData("FROM:<u@[IPv6:::ffff:192.0.2.1]>", "u", "[IPv6:::ffff:192.0.2.1]", false, false)]
    [InlineData("FROM:<üser@example.com>", "üser", "example.com", false, true)]
    [InlineData("FROM:<user@bücher.example>", "user", "bücher.example", false, true)]
    [InlineData("FROM:<用户@例子.广告>", "用户", "例子.广告", false, true)]
    [InlineData("FROM:<\"ü x\"@example.com>", "\"ü x\"", "example.com", false, true)]
    [InlineData("FROM:<a@b.example> SIZE=1", "a", "b.example", false, false)]
    public void Should_accept_a_well_formed_reverse_path(string argument, string local, string domain, bool isNull, bool nonAscii)
    {
        var reply = Parse(Bytes.Utf8(argument), out var gotLocal, out var gotDomain, out var gotNull, out var gotNonAscii, out _);

        Assert.Null(ReplyNames.NameOf(reply));
        Assert.Equal(local, gotLocal);
        Assert.Equal(domain, gotDomain);
        Assert.Equal(isNull, gotNull);
        Assert.Equal(nonAscii, gotNonAscii);
    }

    [Theory]
    [InlineData("FROM:")]
    [InlineData("FROM: ")]
    [InlineData("FROM:a@b.example")]                  // missing brackets
    [InlineData("FROM:<a@b.example")]
    [InlineData("FROM:a@b.example>")]
    [InlineData("FROM:<a@b.example>x")]               // trailing garbage glued to the path
    [InlineData("FROM:<a@b.example>>")]
    [InlineData("FROM:<<a@b.example>>")]
    [InlineData("FROM:<a@b<c.example>")]
    [InlineData("FROM:<\"a@b.example>")]              // unbalanced quotes
    [InlineData("FROM:<a\"@b.example>")]
    [InlineData("FROM:<\"a\"\"@b.example>")]
    [InlineData("FROM:<\"a\\\"@b.example>")]          // the closing quote is escaped
    [InlineData("FROM:<Postmaster>")]                 // RCPT only
    [InlineData("FROM:<postmaster>")]
    [InlineData("FROM:<user>")]
    [InlineData("FROM:<a@>")]
    [InlineData("FROM:<@b.example>")]
    [InlineData("FROM:<@>")]
    [InlineData("FROM:<@a.example,@b.example:>")]     // source route, no mailbox
    [InlineData("FROM:<@a.example,:u@c.example>")]
    [InlineData("FROM:<@a.example,@b.example u@c.example>")]
    [InlineData("FROM:<@-a.example:u@c.example>")]
    [InlineData("FROM:<@a.example@b.example:u@c.example>")]
    [InlineData("FROM:<.a@b.example>")]
    [InlineData("FROM:<a.@b.example>")]
    [InlineData("FROM:<a..b@c.example>")]
    [InlineData("FROM:<a b@c.example>")]
    [InlineData("FROM:<a(b)@c.example>")]
    [InlineData("FROM:<a,b@c.example>")]
    [InlineData("FROM:<\"a\u0001\"@c.example>")]
    [InlineData("FROM:<\"a\\\u0001\"@c.example>")]
    [InlineData("FROM:<a@b..example>")]
    [InlineData("FROM:<a@.b.example>")]
    [InlineData("FROM:<a@b.example.>")]
    [InlineData("FROM:<a@-b.example>")]
    [InlineData("FROM:<a@b-.example>")]
    [InlineData("FROM:<a@b_c.example>")]
    [InlineData("FROM:<a@b c.example>")]
    [InlineData("FROM:<a@[1.2.3]>")]                  // bad address literals
    [InlineData("FROM:<a@[1.2.3.4.5]>")]
    [InlineData("FROM:<a@[256.1.1.1]>")]
    [InlineData("FROM:<a@[1.2.3.]>")]
    [InlineData("FROM:<a@[1..2.3]>")]
    [InlineData("FROM:<a@[a.b.c.d]>")]
    [InlineData("FROM:<a@[]>")]
    [InlineData("FROM:<a@[192.0.2.1>")]
    [InlineData("FROM:<a@[192.0.2.1]x>")]
    [InlineData("FROM:<a@[IPv6:zz]>")]
    [InlineData("FROM:<a@[010.1.1.1]>")]             // Snum is decimal: no octal-looking octets
    [InlineData("FROM:<a@[1.2.3.0001]>")]
    [InlineData("FROM:<a@[IPv6:fe80::1%eth0]>")]     // no zone ids
    [InlineData("FROM:<a@[IPv6:fe80::1%2]>")]
    [InlineData("FROM:<a@[IPv6:]>")]
    [InlineData("FROM:<a@[IPv6:192.0.2.1]>")]
    [InlineData("FROM:<a@[IPv6:2001:db8::1::2]>")]
    [InlineData("FROM:<a@[2001:db8::1]>")]            // IPv6 without its tag
    [InlineData("FROM:<a@[IPv4:192.0.2.1]>")]
    public void Should_reply_501_5_1_7_for_bad_sender_syntax(string argument)
    {
        var reply = Parse(Bytes.Utf8(argument), out _, out _, out _, out _, out _);

        Assert.Same(Replies.BadSenderSyntax, reply);
    }

    [Theory]
    [InlineData("FROM:<\u00ff@b.example>")]             // 0xFF is never UTF-8
    [InlineData("FROM:<a\u00c3@b.example>")]            // lead byte without its continuation
    [InlineData("FROM:<\u0080a@b.example>")]            // lone continuation byte
    [InlineData("FROM:<\u00c0\u00afa@b.example>")]      // overlong '/'
    [InlineData("FROM:<\u00ed\u00a0\u0080@b.example>")] // UTF-16 surrogate encoded in UTF-8
    [InlineData("FROM:<a@b\u00c3.example>")]
    [InlineData("FROM:<a@\u00e4\u00b8.example>")]       // truncated three-byte sequence
    [InlineData("FROM:<\"\u00c3\"@b.example>")]
    public void Should_reply_501_5_1_7_for_an_address_that_is_not_valid_UTF_8(string raw)
    {
        var reply = Parse(Bytes.Raw(raw), out _, out _, out _, out _, out _);

        Assert.Same(Replies.BadSenderSyntax, reply);
    }

    [Theory]
    [InlineData("")]
    [InlineData("FROM")]
    [InlineData("FROM<a@b.example>")]
    [InlineData("FROM <a@b.example>")]
    [InlineData("FRO:<a@b.example>")]
    [InlineData("FROMM:<a@b.example>")]
    [InlineData("TO:<a@b.example>")]
    [InlineData("<a@b.example>")]
    public void Should_reply_501_5_5_4_when_FROM_colon_is_missing(string argument)
    {
        var reply = Parse(Bytes.Utf8(argument), out _, out _, out _, out _, out _);

        Assert.Same(Replies.SyntaxError, reply);
    }

    // ------------------------------------------------------------------ lengths (RFC 5321 4.5.3.1)

    private static string Label(char c, int length) => new(c, length);

    [Theory]
    [InlineData(64, true)]
    [InlineData(65, false)]
    public void Should_limit_the_local_part_to_64_octets(int length, bool accepted)
    {
        var reply = Parse(Bytes.Utf8($"FROM:<{Label('l', length)}@b.example>"), out var local, out _, out _, out _, out _);

        Assert.Equal(accepted, reply is null);
        if (accepted) Assert.Equal(length, local.Length);
        else Assert.Same(Replies.BadSenderSyntax, reply);
    }

    [Fact]
    public void Should_count_the_quotes_of_a_quoted_local_part_in_its_length()
    {
        Assert.Null(Parse(Bytes.Utf8($"FROM:<\"{Label('q', 62)}\"@b.example>"), out _, out _, out _, out _, out _));
        Assert.Same(Replies.BadSenderSyntax, Parse(Bytes.Utf8($"FROM:<\"{Label('q', 63)}\"@b.example>"), out _, out _, out _, out _, out _));
    }

    [Fact]
    public void Should_count_UTF_8_local_parts_in_octets_not_characters()
    {
        // 32 two-byte characters = 64 octets; 33 = 66 octets.
        Assert.Null(Parse(Bytes.Utf8($"FROM:<{Label('ü', 32)}@b.example>"), out _, out _, out _, out _, out _));
        Assert.Same(Replies.BadSenderSyntax, Parse(Bytes.Utf8($"FROM:<{Label('ü', 33)}@b.example>"), out _, out _, out _, out _, out _));
    }

    [Theory]
    [InlineData(256, true)]
    [InlineData(257, false)]
    public void Should_limit_the_path_to_256_octets_including_the_brackets(int pathLength, bool accepted)
    {
        // "<" + 64 + "@" + domain + ">" with labels of at most 63
        var domainLength = pathLength - 67;
        var domain = $"{Label('a', 63)}.{Label('b', 63)}.{Label('c', domainLength - 128)}";
        var path = $"<{Label('l', 64)}@{domain}>";
        Assert.Equal(pathLength, path.Length);

        var reply = Parse(Bytes.Utf8("FROM:" + path), out _, out var gotDomain, out _, out _, out _);

        Assert.Equal(accepted, reply is null);
        if (accepted) Assert.Equal(domain, gotDomain);
        else Assert.Same(Replies.BadSenderSyntax, reply);
    }

    [Fact]
    public void Should_count_a_source_route_in_the_path_length()
    {
        var mailbox = $"{Label('l', 64)}@{Label('a', 63)}.{Label('b', 63)}.{Label('c', 40)}"; // 233
        var route = "@" + Label('r', 20) + ":";                                          // 22 => 257 with brackets

        Assert.Null(Parse(Bytes.Utf8($"FROM:<{mailbox}>"), out _, out _, out _, out _, out _));
        Assert.Same(Replies.BadSenderSyntax, Parse(Bytes.Utf8($"FROM:<{route}{mailbox}>"), out _, out _, out _, out _, out _));
    }

    [Theory]
    [InlineData(true, 63, 63, 63, 63)]     // 255
    [InlineData(false, 63, 63, 63, 62, 1)] // 256
    public void Should_limit_a_domain_to_255_octets(bool accepted, params int[] labelLengths)
    {
        var domain = string.Join('.', labelLengths.Select((n, i) => Label((char)('a' + i), n)));
        Assert.Equal(accepted ? 255 : 256, domain.Length);
        var nonAscii = false;

        Assert.Equal(accepted, CommandParser.IsValidDomain(Bytes.Utf8(domain), ref nonAscii));
        // Through the parser it is refused either way (a 256-octet domain cannot fit in a 256-octet path).
        Assert.Same(Replies.BadSenderSyntax, Parse(Bytes.Utf8($"FROM:<a@{domain}>"), out _, out _, out _, out _, out _));
    }

    [Theory]
    [InlineData(63, true)]
    [InlineData(64, false)]
    public void Should_limit_a_label_to_63_octets(int length, bool accepted)
    {
        var reply = Parse(Bytes.Utf8($"FROM:<a@{Label('x', length)}.example>"), out _, out _, out _, out _, out _);

        Assert.Equal(accepted, reply is null);
    }

    // ------------------------------------------------------------------ parameters

    [Theory]
    [InlineData("", -1L, BodyType.NotSpecified, false, false)]
    [InlineData(" SIZE=0", 0L, BodyType.NotSpecified, false, false)]
    [InlineData(" SIZE=12345", 12345L, BodyType.NotSpecified, false, false)]
    [InlineData(" size=12345", 12345L, BodyType.NotSpecified, false, false)]
    [InlineData(" SIZE=00000000000000000042", 42L, BodyType.NotSpecified, false, false)]
    [InlineData(" SIZE=99999999999999999999", long.MaxValue, BodyType.NotSpecified, false, false)] // saturates: over any limit
    [InlineData(" BODY=7BIT", -1L, BodyType.SevenBit, false, false)]
    [InlineData(" body=7bit", -1L, BodyType.SevenBit, false, false)]
    [InlineData(" BODY=8BITMIME", -1L, BodyType.EightBitMime, false, false)]
    [InlineData(" Body=8bitMime", -1L, BodyType.EightBitMime, false, false)]
    [InlineData(" SMTPUTF8", -1L, BodyType.NotSpecified, true, false)]
    [InlineData(" smtputf8", -1L, BodyType.NotSpecified, true, false)]
    [InlineData(" AUTH=<>", -1L, BodyType.NotSpecified, false, true)]
    [InlineData(" AUTH=<someone@b.example>", -1L, BodyType.NotSpecified, false, true)]
    [InlineData(" AUTH=someone+2Bx@b.example", -1L, BodyType.NotSpecified, false, true)]
    [InlineData(" SIZE=10 BODY=8BITMIME SMTPUTF8 AUTH=<>", 10L, BodyType.EightBitMime, true, true)]
    [InlineData(" AUTH=<> SMTPUTF8 BODY=7BIT SIZE=10", 10L, BodyType.SevenBit, true, true)]
    [InlineData("    SIZE=10     BODY=7BIT    ", 10L, BodyType.SevenBit, false, false)]
    public void Should_read_the_MAIL_parameters(string suffix, long size, BodyType body, bool smtpUtf8, bool auth)
    {
        foreach (var path in new[] { "<a@b.example>", "<>" })
        {
            var reply = Parse(Bytes.Utf8("FROM:" + path + suffix), out _, out _, out _, out _, out var parameters);

            Assert.Null(ReplyNames.NameOf(reply));
            Assert.Equal(size, parameters.Size);
            Assert.Equal(body, parameters.Body);
            Assert.Equal(smtpUtf8, parameters.SmtpUtf8);
            Assert.Equal(auth, parameters.HasAuth);
        }
    }

    [Theory]
    [InlineData(" SIZE=10 SIZE=20", nameof(Replies.SyntaxError))]           // duplicates
    [InlineData(" SIZE=10 size=10", nameof(Replies.SyntaxError))]
    [InlineData(" BODY=7BIT BODY=8BITMIME", nameof(Replies.SyntaxError))]
    [InlineData(" BODY=7BIT BODY=7BIT", nameof(Replies.SyntaxError))]
    [InlineData(" BODY", nameof(Replies.SyntaxError))]
    [InlineData(" SMTPUTF8 SMTPUTF8", nameof(Replies.SyntaxError))]
    [InlineData(" AUTH=<> AUTH=<>", nameof(Replies.SyntaxError))]
    [InlineData(" SIZE", nameof(Replies.SyntaxError))]                      // malformed values
    [InlineData(" SIZE=", nameof(Replies.SyntaxError))]
    [InlineData(" SIZE=-1", nameof(Replies.SyntaxError))]
    [InlineData(" SIZE=1x", nameof(Replies.SyntaxError))]
    [InlineData(" SIZE=+1", nameof(Replies.SyntaxError))]
    [InlineData(" SIZE=123456789012345678901", nameof(Replies.SyntaxError))] // 21 digits
    [InlineData(" SIZE=1=2", nameof(Replies.SyntaxError))]
    [InlineData(" SMTPUTF8=yes", nameof(Replies.SyntaxError))]
    [InlineData(" AUTH", nameof(Replies.SyntaxError))]
    [InlineData(" AUTH=", nameof(Replies.SyntaxError))]
    [InlineData(" =x", nameof(Replies.SyntaxError))]                        // malformed keywords
    [InlineData(" -X=1", nameof(Replies.SyntaxError))]
    [InlineData(" X_Y=1", nameof(Replies.SyntaxError))]
    [InlineData(" SIZE=\u0001", nameof(Replies.SyntaxError))]
    [InlineData(" BODY=BINARYMIME", nameof(Replies.ParameterNotImplemented))] // needs CHUNKING
    [InlineData(" BODY=8BIT", nameof(Replies.ParameterNotImplemented))]
    [InlineData(" XFOO=bar", nameof(Replies.ParameterNotImplemented))]
    [InlineData(" FOO", nameof(Replies.ParameterNotImplemented))]
    [InlineData(" RET=HDRS", nameof(Replies.ParameterNotImplemented))]      // DSN is not offered
    [InlineData(" ENVID=abc", nameof(Replies.ParameterNotImplemented))]
    [InlineData(" SIZE=10 XFOO", nameof(Replies.ParameterNotImplemented))]
    public void Should_refuse_bad_and_unknown_MAIL_parameters(string suffix, string expected)
    {
        var reply = Parse(Bytes.Utf8("FROM:<a@b.example>" + suffix), out _, out _, out _, out _, out _);

        Assert.Same(ReplyNames.Get(expected), reply);
    }

    [Fact]
    public void Should_check_the_path_before_the_parameters()
    {
        var reply = Parse(Bytes.Utf8("FROM:<a@@b.example> XFOO"), out _, out _, out _, out _, out _);

        Assert.Same(Replies.BadSenderSyntax, reply);
    }
}
