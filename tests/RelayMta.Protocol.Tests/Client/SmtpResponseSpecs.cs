using System.Buffers;
using RelayMta.Protocol.Smtp;
using RelayMta.Protocol.Tests.Support;

namespace RelayMta.Protocol.Tests.Client;

public sealed class SmtpResponseSpecs
{
    /// <summary>Parses the wire form, so these specs also pin what the reader hands over.</summary>
    private static SmtpResponse Read(string wire)
    {
        var buffer = Segments.Sequence(Bytes.Utf8(wire));
        Assert.Equal(ReplyStatus.Complete, ReplyReader.TryRead(ref buffer, out var response));
        Assert.True(buffer.IsEmpty);
        return response!;
    }

    [Theory]
    [InlineData("550 5.1.1 <nobody@example.com>: Recipient address rejected\r\n", "5.1.1")]
    [InlineData("250 2.0.0 Ok: queued as 4Bx1\r\n", "2.0.0")]
    [InlineData("451 4.7.1 Greylisted, try again later\r\n", "4.7.1")]
    [InlineData("552 5.3.4 Message size exceeds fixed limit\r\n", "5.3.4")]
    [InlineData("550 5.7.1\r\n", "5.7.1")]                                  // the code is the whole text
    [InlineData("550 5.123.456 three-digit subject and detail\r\n", "5.123.456")]
    [InlineData("550-5.7.1 first line has it\r\n550 no code here\r\n", "5.7.1")]
    [InlineData("550-5.7.1 first\r\n550 5.7.1 second\r\n", "5.7.1")]
    public void Should_give_the_enhanced_code_at_the_start_of_the_first_line(string wire, string expected)
    {
        Assert.Equal(expected, Read(wire).Enhanced);
    }

    [Theory]
    [InlineData("250 Ok\r\n")]                                       // absent
    [InlineData("250\r\n")]                                          // no text at all
    [InlineData("250-first line plain\r\n250 2.0.0 only later\r\n")] // only the first line counts
    [InlineData("550 2.0.0 class does not match the code\r\n")]
    [InlineData("250 5.0.0 class does not match the code\r\n")]
    [InlineData("451 5.7.1 class does not match the code\r\n")]
    [InlineData("354 3.0.0 there is no class 3\r\n")]
    [InlineData("550 5.1 two parts\r\n")]
    [InlineData("550 5.1.1.1 four parts\r\n")]
    [InlineData("550 5..1 empty subject\r\n")]
    [InlineData("550 5.1. empty detail\r\n")]
    [InlineData("550 5.1234.1 subject too long\r\n")]
    [InlineData("550 5.1.1234 detail too long\r\n")]
    [InlineData("550 x.1.1 letter class\r\n")]
    [InlineData("550 5.a.1 letter subject\r\n")]
    [InlineData("550 5.1.1; glued punctuation\r\n")]
    [InlineData("550 55.1.1 two-digit class\r\n")]
    [InlineData("550 ５.1.1 non-ASCII digit\r\n")]
    [InlineData("550 5.１.1 non-ASCII digit\r\n")]
    [InlineData("550  5.1.1 leading space\r\n")]
    [InlineData("550 <5.1.1> bracketed\r\n")]
    public void Should_have_no_enhanced_code_when_it_is_absent_mismatched_or_malformed(string wire)
    {
        var response = Read(wire);

        Assert.Null(response.Enhanced);
        Assert.Equal($"{response.Code / 100}.0.0", response.StatusOrDefault);
    }

    [Fact]
    public void Should_have_no_enhanced_code_without_any_line()
    {
        var response = new SmtpResponse(550, []);

        Assert.Null(response.Enhanced);
        Assert.Equal("5.0.0", response.StatusOrDefault);
        Assert.Equal("", response.Text);
    }

    [Theory]
    [InlineData("550 5.1.1 User unknown\r\n", "5.1.1")]
    [InlineData("550 User unknown\r\n", "5.0.0")]
    [InlineData("550 2.0.0 mismatched\r\n", "5.0.0")]
    [InlineData("421 Service not available\r\n", "4.0.0")]
    [InlineData("452 4.2.2 Mailbox full\r\n", "4.2.2")]
    [InlineData("250 2.1.5 Ok\r\n", "2.1.5")]
    [InlineData("250 Ok\r\n", "2.0.0")]
    public void Should_record_the_servers_enhanced_code_or_the_class_default(string wire, string expected)
    {
        Assert.Equal(expected, Read(wire).StatusOrDefault);
    }

    [Theory]
    [InlineData("250 Ok\r\n", "Ok")]
    [InlineData("250\r\n", "")]
    [InlineData("550-5.7.1 Message rejected\r\n550-5.7.1 See https://example.com/why\r\n550 5.7.1 for details\r\n",
        "5.7.1 Message rejected 5.7.1 See https://example.com/why 5.7.1 for details")]
    public void Should_join_the_lines_with_spaces_for_the_text(string wire, string expected)
    {
        var response = Read(wire);

        Assert.Equal(expected, response.Text);
        Assert.Equal($"{response.Code} {expected}", response.ToString());
    }

    [Theory]
    [InlineData(200, true, false, false)]
    [InlineData(220, true, false, false)]
    [InlineData(250, true, false, false)]
    [InlineData(354, true, false, false)]
    [InlineData(399, true, false, false)]
    [InlineData(400, false, true, false)]
    [InlineData(421, false, true, false)]
    [InlineData(451, false, true, false)]
    [InlineData(499, false, true, false)]
    [InlineData(500, false, false, true)]
    [InlineData(554, false, false, true)]
    [InlineData(599, false, false, true)]
    public void Should_classify_the_reply_by_the_first_digit_of_its_code(int code, bool positive, bool transient, bool permanent)
    {
        var response = Read($"{code} text\r\n");

        Assert.Equal(code, response.Code);
        Assert.Equal((positive, transient, permanent), (response.IsPositive, response.IsTransient, response.IsPermanent));
    }
}
