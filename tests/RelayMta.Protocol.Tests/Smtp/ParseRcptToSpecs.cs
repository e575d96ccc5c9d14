using System.Text;
using RelayMta.Protocol.Smtp;
using RelayMta.Protocol.Tests.Support;

namespace RelayMta.Protocol.Tests.Smtp;

public sealed class ParseRcptToSpecs
{
    [Theory]
    [InlineData("TO:<a@b.example>", "a", "b.example", false, false)]
    [InlineData("to:<a@b.example>", "a", "b.example", false, false)]
    [InlineData("To: <a@b.example>", "a", "b.example", false, false)]
    [InlineData("TO:<Postmaster>", "Postmaster", "", true, false)]
    [InlineData("TO:<postmaster>", "postmaster", "", true, false)]
    [InlineData("TO:<POSTMASTER>", "POSTMASTER", "", true, false)]
    [InlineData("TO:<Postmaster@b.example>", "Postmaster", "b.example", false, false)] // an ordinary address
    [InlineData("TO:<@relay.example:u@c.example>", "u", "c.example", false, false)]
    [InlineData("TO:<@a.example,@b.example:u@c.example>", "u", "c.example", false, false)]
    [InlineData("TO:<\"john doe\"@example.com>", "\"john doe\"", "example.com", false, false)]
    [InlineData("TO:<u@[192.0.2.1]>", "u", "[192.0.2.1]", false, false)]
    [InlineData("TO:<u@[IPv6:2001:db8::1]>", "u", "[IPv6:2001:db8::1]", false, false)]
    [InlineData("TO:<ünicode@bücher.example>", "ünicode", "bücher.example", false, true)]
    [InlineData("TO:<u@bücher.example>", "u", "bücher.example", false, true)]
    public void Should_accept_a_well_formed_forward_path(string argument, string local, string domain, bool postmaster, bool nonAscii)
    {
        var reply = CommandParser.ParseRcptTo(Bytes.Utf8(argument), out var path);

        Assert.Null(ReplyNames.NameOf(reply));
        Assert.Equal(local, Encoding.UTF8.GetString(path.LocalPart));
        Assert.Equal(domain, Encoding.UTF8.GetString(path.Domain));
        Assert.Equal(postmaster, path.IsPostmaster);
        Assert.Equal(nonAscii, path.HasNonAscii);
        Assert.False(path.IsNull);
    }

    [Theory]
    [InlineData("TO:<>")]                        // the null path is for senders only
    [InlineData("TO: <>")]
    [InlineData("TO:")]
    [InlineData("TO:a@b.example")]
    [InlineData("TO:<a@b.example")]
    [InlineData("TO:<a@b.example>x")]
    [InlineData("TO:<\"a@b.example>")]
    [InlineData("TO:<Postmaster2>")]
    [InlineData("TO:<Post master>")]
    [InlineData("TO:<user>")]
    [InlineData("TO:<a@[1.2.3]>")]
    [InlineData("TO:<a@[IPv6:zz]>")]
    [InlineData("TO:<a..b@c.example>")]
    public void Should_reply_501_5_1_3_for_bad_recipient_syntax(string argument)
    {
        var reply = CommandParser.ParseRcptTo(Bytes.Utf8(argument), out _);

        Assert.Same(Replies.BadRecipientSyntax, reply);
    }

    [Theory]
    [InlineData("TO:<\u00ff@b.example>")]
    [InlineData("TO:<a@b\u00c3.example>")]
    [InlineData("TO:<\u00c0\u00afa@b.example>")]
    public void Should_reply_501_5_1_3_for_a_recipient_that_is_not_valid_UTF_8(string raw)
    {
        var reply = CommandParser.ParseRcptTo(Bytes.Raw(raw), out _);

        Assert.Same(Replies.BadRecipientSyntax, reply);
    }

    [Theory]
    [InlineData(64, true)]
    [InlineData(65, false)]
    public void Should_limit_the_recipient_local_part_to_64_octets(int length, bool accepted)
    {
        var reply = CommandParser.ParseRcptTo(Bytes.Utf8($"TO:<{new string('r', length)}@b.example>"), out _);

        if (accepted) Assert.Null(ReplyNames.NameOf(reply));
        else Assert.Same(Replies.BadRecipientSyntax, reply);
    }

    [Theory]
    [InlineData("")]
    [InlineData("TO<a@b.example>")]
    [InlineData("T:<a@b.example>")]
    [InlineData("FROM:<a@b.example>")]
    [InlineData("<a@b.example>")]
    public void Should_reply_501_5_5_4_when_TO_colon_is_missing(string argument)
    {
        var reply = CommandParser.ParseRcptTo(Bytes.Utf8(argument), out _);

        Assert.Same(Replies.SyntaxError, reply);
    }

    [Theory]
    [InlineData("TO:<a@b.example> NOTIFY=NEVER")]
    [InlineData("TO:<a@b.example> ORCPT=rfc822;a@b.example")]
    [InlineData("TO:<a@b.example> SIZE=10")]
    [InlineData("TO:<a@b.example> SMTPUTF8")]
    [InlineData("TO:<a@b.example> BODY=8BITMIME")]
    [InlineData("TO:<a@b.example> X")]
    [InlineData("TO:<Postmaster> X")]
    public void Should_reply_555_for_any_RCPT_parameter(string argument)
    {
        var reply = CommandParser.ParseRcptTo(Bytes.Utf8(argument), out _);

        Assert.Same(Replies.ParameterNotImplemented, reply);
    }

    [Fact]
    public void Should_ignore_trailing_spaces_after_the_forward_path()
    {
        var reply = CommandParser.ParseRcptTo(Bytes.Utf8("TO:<a@b.example>   "), out var path);

        Assert.Null(ReplyNames.NameOf(reply));
        Assert.Equal("b.example", Encoding.UTF8.GetString(path.Domain));
    }
}
