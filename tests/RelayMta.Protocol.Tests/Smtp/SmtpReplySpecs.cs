using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using RelayMta.Protocol.Smtp;

namespace RelayMta.Protocol.Tests.Smtp;

public sealed class SmtpReplySpecs
{
    private static string Wire(SmtpReply reply) => Encoding.UTF8.GetString(reply.Utf8.Span);

    [Theory]
    [InlineData(250, "2.0.0", "OK", "250 2.0.0 OK\r\n")]
    [InlineData(354, "", "End data with <CR><LF>.<CR><LF>", "354 End data with <CR><LF>.<CR><LF>\r\n")]
    [InlineData(550, "5.1.1", "", "550 5.1.1 \r\n")]
    [InlineData(250, "2.0.0", "first\nsecond\nthird", "250-2.0.0 first\r\n250-2.0.0 second\r\n250 2.0.0 third\r\n")]
    [InlineData(220, "", "mx.example ESMTP\nsecond line", "220-mx.example ESMTP\r\n220 second line\r\n")]
    [InlineData(250, "", "mx.example\nPIPELINING\n8BITMIME", "250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n")]
    [InlineData(250, "2.0.0", "a\r\nb", "250-2.0.0 a\r\n250 2.0.0 b\r\n")] // a CR before the '\n' is not sent twice
    [InlineData(250, "2.0.0", "café", "250 2.0.0 café\r\n")]
    public void Should_encode_the_wire_form(int code, string enhanced, string text, string expected)
    {
        var reply = new SmtpReply(code, enhanced, text);

        Assert.Equal(expected, Wire(reply));
    }

    [Fact]
    public void Should_encode_the_HELP_reply_as_a_multi_line_reply()
    {
        Assert.Equal("214-2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\r\n214 2.0.0 See RFC 5321\r\n",
            Wire(Replies.Help));
    }

    [Theory]
    [InlineData(250, "2.0.0", "OK", "250 2.0.0 OK")]
    [InlineData(354, "", "Go ahead", "354 Go ahead")]
    public void Should_print_code_enhanced_code_and_text(int code, string enhanced, string text, string expected)
    {
        Assert.Equal(expected, new SmtpReply(code, enhanced, text).ToString());
    }

    [Theory]
    [InlineData(214, true, false, false)]
    [InlineData(250, true, false, false)]
    [InlineData(354, true, false, false)]
    [InlineData(421, false, true, false)]
    [InlineData(452, false, true, false)]
    [InlineData(499, false, true, false)]
    [InlineData(500, false, false, true)]
    [InlineData(554, false, false, true)]
    public void Should_classify_the_code(int code, bool positive, bool transient, bool permanent)
    {
        var reply = new SmtpReply(code, "", "x");

        Assert.Equal((positive, transient, permanent), (reply.IsPositive, reply.IsTransient, reply.IsPermanent));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(199)]
    [InlineData(600)]
    [InlineData(-250)]
    public void Should_refuse_a_code_outside_200_to_599(int code)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new SmtpReply(code, "", "x"));
    }

    [Fact]
    public void Should_keep_code_and_enhanced_code_when_the_text_changes()
    {
        var reply = Replies.Ok.WithText("OK: queued as Q1");

        Assert.Equal("250 2.0.0 OK: queued as Q1\r\n", Wire(reply));
        Assert.Equal("250 2.0.0 OK\r\n", Wire(Replies.Ok));
    }

    public static TheoryData<string> AllReplies()
    {
        var data = new TheoryData<string>();
        foreach (var field in typeof(Replies).GetFields(BindingFlags.Public | BindingFlags.Static)) data.Add(field.Name);
        return data;
    }

    private static readonly Regex ReplyLine = new(@"\A(?<code>[2-5][0-9]{2})(?<sep>[- ])((?<class>[245])\.[0-9]{1,3}\.[0-9]{1,3} )?[^\r\n]*\r\n\z");

    [Theory]
    [MemberData(nameof(AllReplies))]
    public void Should_send_every_canned_reply_in_RFC_5321_form_with_a_matching_RFC_3463_class(string name)
    {
        var reply = (SmtpReply)typeof(Replies).GetField(name)!.GetValue(null)!;
        var lines = Regex.Split(Wire(reply), @"(?<=\r\n)").Where(l => l.Length > 0).ToList();

        for (var i = 0; i < lines.Count; i++)
        {
            var m = ReplyLine.Match(lines[i]);
            Assert.True(m.Success, $"{name}: bad line '{lines[i]}'");
            Assert.Equal(reply.Code.ToString(), m.Groups["code"].Value);
            Assert.Equal(i == lines.Count - 1 ? " " : "-", m.Groups["sep"].Value);
            if (reply.Enhanced.Length > 0)
                Assert.Equal(reply.Code.ToString()[0].ToString(), m.Groups["class"].Value);
        }
        // 3xx replies carry no enhanced code (RFC 3463 classes are 2, 4 and 5 only).
        if (reply.Code is >= 300 and < 400) Assert.Equal("", reply.Enhanced);
        else Assert.Matches(@"\A[245]\.[0-9]{1,3}\.[0-9]{1,3}\z", reply.Enhanced);
    }
}
