using System.Buffers;
using RelayMta.Protocol.Smtp;
using RelayMta.Protocol.Tests.Support;

namespace RelayMta.Protocol.Tests.Smtp;

public sealed class LineReaderSpecs
{
    private const int TextLine = 1000;   // RFC 5321 4.5.3.1.6, CRLF included
    private const int CommandLine = 512; // RFC 5321 4.5.3.1.4

    /// <summary>
    /// Drives the reader the way the session loop does: lines until NeedMore, TooLong followed by
    /// TrySkipLine until the over-long line's end has gone by, then "TooLong" is reported.
    /// Each element of <paramref name="reads"/> is what one read delivers; the unconsumed bytes of
    /// the previous read stay in front of it in their own segment, as a pipe keeps them.
    /// </summary>
    private static List<string> Drive(IEnumerable<byte[][]> reads, int maxLength)
    {
        var events = new List<string>();
        var pending = Array.Empty<byte>();
        var discarding = false;
        foreach (var read in reads)
        {
            var buffer = Segments.Sequence(read.Prepend(pending).ToArray());
            while (true)
            {
                if (discarding)
                {
                    if (!LineReader.TrySkipLine(ref buffer)) break;
                    discarding = false;
                    events.Add("TooLong");
                    continue;
                }
                var status = LineReader.TryReadLine(ref buffer, maxLength, out var line);
                if (status == LineStatus.NeedMore) break;
                if (status == LineStatus.TooLong)
                {
                    discarding = true;
                    continue;
                }
                events.Add($"{status}:{Bytes.Show(line.ToArray())}");
            }
            pending = buffer.ToArray();
        }
        events.Add("rest:" + Bytes.Show(pending));
        return events;
    }

    public static TheoryData<string, string, string[]> Scripts() => new()
    {
        {
            "pipelined commands",
            "EHLO client.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n",
            ["Line:EHLO client.example", "Line:MAIL FROM:<a@b.example>", "Line:RCPT TO:<c@d.example>", "Line:DATA", "rest:"]
        },
        {
            "a partial command stays in the buffer",
            "NOOP\r\nRSET\r",
            ["Line:NOOP", "rest:RSET\r"]
        },
        {
            "empty lines",
            "\r\n\r\nNOOP\r\n",
            ["Line:", "Line:", "Line:NOOP", "rest:"]
        },
        {
            "bare LF ends a line that must be refused, and reading goes on",
            "NOOP\nQUIT\r\n\nRSET\r\n",
            ["BareLineFeed:NOOP", "Line:QUIT", "BareLineFeed:", "Line:RSET", "rest:"]
        },
        {
            "bare CR stays inside the line",
            "NO\rOP\r\n\r\r\nA\r\r\n",
            ["Line:NO\rOP", "Line:\r", "Line:A\r", "rest:"]
        },
        {
            "an over-long line is skipped and the next command still read",
            new string('a', 999) + "\r\nNOOP\r\n",
            ["TooLong", "Line:NOOP", "rest:"]
        },
        {
            "an over-long line much longer than the limit",
            new string('b', 2500) + "\r\nQUIT\r\nRS",
            ["TooLong", "Line:QUIT", "rest:RS"]
        },
        {
            "a line of exactly the limit is fine, one more byte is not",
            new string('c', 998) + "\r\n" + new string('d', 999) + "\r\n" + new string('e', 998) + "\r\n",
            ["Line:" + new string('c', 998), "TooLong", "Line:" + new string('e', 998), "rest:"]
        },
        {
            "an over-long line ended by a bare LF is skipped too",
            new string('f', 1200) + "\nNOOP\r\n",
            ["TooLong", "Line:NOOP", "rest:"]
        },
    };

    [Theory]
    [MemberData(nameof(Scripts))]
    public void Should_read_the_same_lines_from_one_segment(string name, string input, string[] expected)
    {
        var events = Drive([[Bytes.Raw(input)]], TextLine);

        Assert.True(expected.SequenceEqual(events), $"{name}: got [{string.Join(" | ", events)}]");
    }

    [Theory]
    [MemberData(nameof(Scripts))]
    public void Should_read_the_same_lines_when_the_input_is_split_at_every_offset_in_one_sequence(string name, string input, string[] expected)
    {
        foreach (var (how, chunks) in Segments.Splittings(Bytes.Raw(input)))
        {
            var events = Drive([chunks], TextLine);

            Assert.True(expected.SequenceEqual(events), $"{name}, {how}: got [{string.Join(" | ", events)}]");
        }
    }

    [Theory]
    [MemberData(nameof(Scripts))]
    public void Should_read_the_same_lines_when_the_input_arrives_in_separate_reads_split_at_every_offset(string name, string input, string[] expected)
    {
        foreach (var (how, chunks) in Segments.Splittings(Bytes.Raw(input)))
        {
            var events = Drive(chunks.Select(c => new[] { c }), TextLine);

            Assert.True(expected.SequenceEqual(events), $"{name}, {how}: got [{string.Join(" | ", events)}]");
        }
    }

    [Fact]
    public void Should_return_the_line_without_its_CRLF_and_advance_past_it()
    {
        var buffer = Segments.Sequence(Bytes.Raw("NOOP\r\nQUIT\r\n"));

        var status = LineReader.TryReadLine(ref buffer, CommandLine, out var line);

        Assert.Equal(LineStatus.Line, status);
        Assert.Equal("NOOP", Bytes.Show(line.ToArray()));
        Assert.Equal("QUIT\r\n", Bytes.Show(buffer.ToArray()));
    }

    [Theory]
    [InlineData("")]
    [InlineData("NOOP")]
    [InlineData("NOOP\r")]
    [InlineData("\r")]
    public void Should_need_more_and_consume_nothing_without_a_line_end(string input)
    {
        var buffer = Segments.Sequence(Bytes.Raw(input));

        var status = LineReader.TryReadLine(ref buffer, CommandLine, out _);

        Assert.Equal(LineStatus.NeedMore, status);
        Assert.Equal(input, Bytes.Show(buffer.ToArray()));
    }

    [Theory]
    [InlineData(998, "\r\n", LineStatus.Line)]
    [InlineData(999, "\r\n", LineStatus.TooLong)]
    [InlineData(998, "\r", LineStatus.NeedMore)]  // 999 bytes: the LF may still come
    [InlineData(999, "", LineStatus.NeedMore)]
    [InlineData(999, "\r", LineStatus.TooLong)]   // 1000 bytes and no LF: cannot fit any more
    [InlineData(1000, "", LineStatus.TooLong)]
    [InlineData(999, "\n", LineStatus.BareLineFeed)]
    [InlineData(1000, "\n", LineStatus.TooLong)]
    public void Should_allow_998_octets_and_CRLF_in_a_1000_octet_text_line(int contentLength, string end, LineStatus expected)
    {
        var buffer = Segments.Sequence(Bytes.Raw(new string('x', contentLength) + end));

        var status = LineReader.TryReadLine(ref buffer, TextLine, out var line);

        Assert.Equal(expected, status);
        if (expected is LineStatus.Line or LineStatus.BareLineFeed) Assert.Equal(contentLength, line.Length);
    }

    [Theory]
    [InlineData(510, LineStatus.Line)]
    [InlineData(511, LineStatus.TooLong)]
    public void Should_allow_510_octets_and_CRLF_in_a_512_octet_command_line(int contentLength, LineStatus expected)
    {
        var buffer = Segments.Sequence(Bytes.Raw(new string('x', contentLength) + "\r\n"));

        Assert.Equal(expected, LineReader.TryReadLine(ref buffer, CommandLine, out _));
    }

    [Fact]
    public void Should_not_consume_past_the_limit_when_a_line_is_too_long()
    {
        // Kestrel's rule: look at no more than the limit. The line's own LF and the pipelined
        // command after it must still be there for TrySkipLine and the next TryReadLine.
        var buffer = Segments.Sequence(Bytes.Raw(new string('x', 1500) + "\r\nNOOP\r\n"));

        var status = LineReader.TryReadLine(ref buffer, TextLine, out _);

        Assert.Equal(LineStatus.TooLong, status);
        Assert.True(buffer.Length >= "\r\nNOOP\r\n".Length - 1, $"only {buffer.Length} bytes left");
        Assert.EndsWith("\nNOOP\r\n", Bytes.Show(buffer.ToArray()));
        Assert.True(LineReader.TrySkipLine(ref buffer));
        Assert.Equal("NOOP\r\n", Bytes.Show(buffer.ToArray()));
    }

    [Theory]
    [InlineData("tail of a long line\r\nNOOP\r\n", true, "NOOP\r\n")]
    [InlineData("tail\nNOOP\r\n", true, "NOOP\r\n")]
    [InlineData("\nNOOP\r\n", true, "NOOP\r\n")]
    [InlineData("\n", true, "")]
    [InlineData("no line end yet", false, "")]
    [InlineData("ends in CR\r", false, "")]
    [InlineData("", false, "")]
    public void Should_skip_up_to_and_including_the_next_LF(string input, bool found, string rest)
    {
        foreach (var (how, chunks) in Segments.Splittings(Bytes.Raw(input)))
        {
            var buffer = Segments.Sequence(chunks);

            var skipped = LineReader.TrySkipLine(ref buffer);

            Assert.True(found == skipped, how);
            Assert.True(rest == Bytes.Show(buffer.ToArray()), how);
        }
    }
}
