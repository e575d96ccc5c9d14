using RelayMta.Protocol.Mail;
using RelayMta.Protocol.Tests.Support;

namespace RelayMta.Protocol.Tests.Mail;

public sealed class HeaderScannerSpecs
{
    [Theory]
    // header section ends at the blank line, with a body after it
    [InlineData("A: 1\r\nB: 2\r\n\r\nbody\r\n", true, 14, 0, false)]
    [InlineData("A: 1\r\nB: 2\r\n\r\nbody\r\n", false, 14, 0, false)]
    [InlineData("A: 1\r\n\r\n", true, 8, 0, false)]                   // blank line, empty body
    [InlineData("A: 1\r\n\r\n\r\nX: not a header\r\n", true, 8, 0, false)]
    [InlineData("\r\nbody\r\n", true, 2, 0, false)]                   // no header fields at all
    [InlineData("A: 1\n\nbody", true, 6, 0, false)]                   // bare LF lines are measured too
    // no body: all of a complete message is header
    [InlineData("A: 1\r\nB: 2\r\n", true, 12, 0, false)]
    [InlineData("A: 1\r\nB: 2", true, 10, 0, false)]
    [InlineData("", true, 0, 0, false)]
    // incomplete input without the blank line: unknown yet
    [InlineData("A: 1\r\nB: 2\r\n", false, -1, 0, false)]
    [InlineData("A: 1\r\nB: 2", false, -1, 0, false)]
    [InlineData("A: 1\r\n\r", false, -1, 0, false)]                   // the blank line is not complete yet
    [InlineData("", false, -1, 0, false)]
    public void Should_find_where_the_header_section_ends(string message, bool complete, int length, int received, bool eightBit)
    {
        var info = HeaderScanner.Scan(Bytes.Raw(message), complete);

        Assert.Equal(new HeaderInfo(length, received, eightBit), info);
    }

    [Theory]
    [InlineData("Received: from a\r\nreceived: from b\r\nRECEIVED:from c\r\nSubject: x\r\n\r\n", 3)]
    [InlineData("ReCeIvEd: x\r\n\r\n", 1)]
    [InlineData("X-Received: from a\r\nReceived-SPF: pass\r\n\r\n", 0)] // other fields that merely contain the word
    [InlineData("Subject: x\r\n\tReceived: folded continuation\r\n\r\n", 0)]
    [InlineData("Received: a\r\n\r\nReceived: in the body\r\nReceived: in the body\r\n", 1)]
    [InlineData("Received: a\r\nReceived: b", 2)]
    [InlineData("Received\r\n\r\n", 0)]
    public void Should_count_Received_fields_in_the_header_case_insensitively(string message, int received)
    {
        Assert.Equal(received, HeaderScanner.Scan(Bytes.Raw(message), complete: true).ReceivedCount);
    }

    [Fact]
    public void Should_count_Received_fields_seen_so_far_in_incomplete_input()
    {
        var info = HeaderScanner.Scan(Bytes.Raw("Received: a\r\nReceived: b\r\nReceived: c\r\nSubj"), complete: false);

        Assert.Equal(new HeaderInfo(-1, 3, false), info);
    }

    [Theory]
    [InlineData("Subject: caf\u00c3\u00a9\r\n\r\nbody\r\n", true, true)]
    [InlineData("Subject: x\r\n\r\ncaf\u00c3\u00a9\r\n", true, false)]       // 8-bit body only
    [InlineData("Subject: x\r\n\r\n\u00ff", true, false)]
    [InlineData("Subject: x\r\nFrom: \u0080\r\n", true, true)]              // no body
    [InlineData("Subject: x\r\nFrom: \u0080", false, true)]                 // incomplete
    [InlineData("Subject: plain\r\n\r\n", true, false)]
    public void Should_notice_8_bit_bytes_in_the_header_section_only(string message, bool complete, bool eightBit)
    {
        Assert.Equal(eightBit, HeaderScanner.Scan(Bytes.Raw(message), complete).HeaderHasEightBit);
    }
}
