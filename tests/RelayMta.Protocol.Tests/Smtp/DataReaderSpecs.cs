using System.Buffers;
using RelayMta.Protocol.Smtp;
using RelayMta.Protocol.Tests.Support;

namespace RelayMta.Protocol.Tests.Smtp;

public sealed class DataReaderSpecs
{
    private const DataFlags CR = DataFlags.BareCarriageReturn;
    private const DataFlags LF = DataFlags.BareLineFeed;

    /// <summary>(content as sent after DATA's CRLF, unstuffed output, what is left after it, finished, flags)</summary>
    public static TheoryData<string, string, string, bool, DataFlags> Contents() => new()
    {
        { "hello\r\n.\r\n", "hello\r\n", "", true, DataFlags.None },
        { "a\r\nb\r\n.\r\n", "a\r\nb\r\n", "", true, DataFlags.None },                 // nothing after the terminator
        { ".\r\n", "", "", true, DataFlags.None },                                      // empty message
        { ".\r\nQUIT\r\n", "", "QUIT\r\n", true, DataFlags.None },
        { "\r\n.\r\n", "\r\n", "", true, DataFlags.None },                              // one empty line
        { "..x\r\n.\r\n", ".x\r\n", "", true, DataFlags.None },                         // dot-unstuffing
        { "..\r\n.\r\n", ".\r\n", "", true, DataFlags.None },
        { "a\r\n..\r\n.\r\n", "a\r\n.\r\n", "", true, DataFlags.None },
        { "a\r\n...\r\n.\r\n", "a\r\n..\r\n", "", true, DataFlags.None },
        { "a\r\n..a.b..\r\n.\r\n", "a\r\n.a.b..\r\n", "", true, DataFlags.None },
        { ".a\r\n.\r\n", "a\r\n", "", true, DataFlags.None },                           // RFC 5321 4.5.2: drop the first dot
        { "x.\r\n.\r\n", "x.\r\n", "", true, DataFlags.None },                          // a dot mid-line is content
        { "a.b\r\n .\r\n.\r\n", "a.b\r\n .\r\n", "", true, DataFlags.None },
        { "a\r\n. \r\n.\r\n", "a\r\n \r\n", "", true, DataFlags.None },                 // ". " is no terminator
        { "a\r\n.\r\n.\r\n", "a\r\n", ".\r\n", true, DataFlags.None },                  // the first terminator wins
        { "a\r\n.\r\nMAIL FROM:<b@c.example>\r\nRCPT TO:<d@e.example>\r\n", "a\r\n",
          "MAIL FROM:<b@c.example>\r\nRCPT TO:<d@e.example>\r\n", true, DataFlags.None }, // pipelined next transaction
        { "", "", "", false, DataFlags.None },
        { "a\r\n", "a\r\n", "", false, DataFlags.None },
        { "a\r\n.", "a\r\n", "", false, DataFlags.None },                               // the dot is held back
        { "a\r\n.\r", "a\r\n", "", false, DataFlags.None },                             // so is ".\r"
        { "a\r\n.\rb\r\n.\r\n", "a\r\n\rb\r\n", "", true, CR },                         // ...and released as content
        { "a\r\n.\r\r\n.\r\n", "a\r\n\r\r\n", "", true, CR },
        { "abc.\r\n", "abc.\r\n", "", false, DataFlags.None },
        { "caf\u00c3\u00a9\r\n.\r\n", "caf\u00c3\u00a9\r\n", "", true, DataFlags.EightBit },
        { "\u0080\r\n.\r\n", "\u0080\r\n", "", true, DataFlags.EightBit },
        { "..\u00ff\r\n.\r\n", ".\u00ff\r\n", "", true, DataFlags.EightBit },
        { "a\nb\r\n.\r\n", "a\nb\r\n", "", true, LF },
        { "a\rb\r\n.\r\n", "a\rb\r\n", "", true, CR },
        { "a\r\r\n.\r\n", "a\r\r\n", "", true, CR },
        { "a\r\n\n.\r\n", "a\r\n\n.\r\n", "", false, LF },
        { "\u0000\r\n.\r\n", "\u0000\r\n", "", true, DataFlags.None },
    };

    [Theory]
    [MemberData(nameof(Contents))]
    public void Should_unstuff_and_stop_only_at_CRLF_dot_CRLF_however_the_input_is_split(
        string input, string output, string rest, bool finished, DataFlags flags)
    {
        var run = DataRun.EverySplitting(Bytes.Raw(input));

        Assert.Equal(DataRun.Escape(output), run.Output);
        Assert.Equal(DataRun.Escape(rest), run.Rest);
        Assert.Equal(finished, run.Finished);
        Assert.Equal(flags, run.Flags);
        Assert.Equal(output.Length, run.Size);
    }

    [Fact]
    public void Should_write_large_runs_to_the_sink_not_a_line_at_a_time()
    {
        var body = string.Concat(Enumerable.Repeat("line of text\r\n", 50));
        var sink = new CountingWriter();
        var input = new ReadOnlySequence<byte>(Bytes.Raw(body + ".\r\n"));

        Assert.True(new DataReader().Feed(ref input, sink));

        Assert.Equal(body.Length, sink.Written);
        Assert.Equal(1, sink.Writes);
    }

    // ------------------------------------------------------------------ size limit

    [Theory]
    [InlineData(10, "0123456789", true)]
    [InlineData(17, "0123456789abcdef\r", true)]
    [InlineData(18, "0123456789abcdef\r\n", false)] // exactly the limit is fine
    [InlineData(19, "0123456789abcdef\r\n", false)]
    [InlineData(0, "", true)]
    public void Should_stop_writing_at_the_size_limit_but_read_on_to_the_terminator(int maxSize, string written, bool tooLarge)
    {
        var run = DataRun.EverySplitting(Bytes.Raw("0123456789abcdef\r\n.\r\nQUIT\r\n"), maxSize);

        Assert.Equal(DataRun.Escape(written), run.Output);
        Assert.Equal(tooLarge, (run.Flags & DataFlags.TooLarge) != 0);
        Assert.True(run.Finished);
        Assert.Equal("QUIT\\r\\n", run.Rest);
        Assert.Equal(18, run.Size); // counts past the limit
    }

    [Fact]
    public void Should_not_flag_an_empty_message_as_too_large_with_a_zero_limit()
    {
        var run = DataRun.EverySplitting(Bytes.Raw(".\r\n"), maxSize: 0);

        Assert.True(run.Finished);
        Assert.Equal(DataFlags.None, run.Flags);
    }

    [Fact]
    public void Should_keep_unstuffing_and_looking_for_the_terminator_after_the_limit()
    {
        var input = "0123456789\r\n..stuffed\r\nevil\n.\nMAIL FROM:<x@y.example>\r\n.\r\nQUIT\r\n";

        var run = DataRun.EverySplitting(Bytes.Raw(input), maxSize: 5);

        Assert.True(run.Finished);
        Assert.Equal("QUIT\\r\\n", run.Rest);
        Assert.Equal("01234", run.Output);
        Assert.Equal(DataFlags.TooLarge | DataFlags.BareLineFeed, run.Flags);
        Assert.Equal("0123456789\r\n.stuffed\r\nevil\n.\nMAIL FROM:<x@y.example>\r\n".Length, run.Size);
    }

    // ------------------------------------------------------------------ longest line

    [Theory]
    [InlineData(".\r\n", 0)]
    [InlineData("ab\r\nabcdef\r\n.\r\n", 8)]
    [InlineData("abcdef\r\nab\r\n.\r\n", 8)]
    [InlineData("\r\n.\r\n", 2)]
    [InlineData("a\nb\r\n.\r\n", 5)]   // a bare LF does not end a line
    [InlineData("a\rb\r\n.\r\n", 5)]
    [InlineData("..abc\r\n.\r\n", 6)]  // RFC 5321 4.5.3.1.6: the transparency dot does not count
    [InlineData("..\r\n.\r\n", 3)]
    [InlineData("a\r\n.\rb\r\n.\r\n", 4)]
    public void Should_measure_the_longest_line_with_its_CRLF(string input, int longest)
    {
        var run = DataRun.EverySplitting(Bytes.Raw(input));

        Assert.Equal(longest, run.LongestLine);
    }

    [Theory]
    [InlineData("", 998, 1000)]
    [InlineData("", 999, 1001)]
    [InlineData(".", 997, 1000)] // 998 octets starting with a dot: 1001 on the wire, 1000 as a text line
    public void Should_measure_full_length_text_lines(string prefix, int contentLength, int longest)
    {
        var line = prefix + new string('x', contentLength);
        var stuffed = line.StartsWith('.') ? "." + line : line;

        var run = DataRun.EverySplitting(Bytes.Raw("short\r\n" + stuffed + "\r\nshort\r\n.\r\n"));

        Assert.Equal(longest, run.LongestLine);
    }

    // ------------------------------------------------------------------ reuse

    [Fact]
    public void Should_start_afresh_after_Reset()
    {
        var reader = new DataReader(maxSize: 4);
        var sink = new ArrayBufferWriter<byte>();
        var first = new ReadOnlySequence<byte>(Bytes.Raw("abc\ndef\r\u00ff\r\n.\r\n"));
        Assert.True(reader.Feed(ref first, sink));
        Assert.Equal(DataFlags.BareLineFeed | DataFlags.BareCarriageReturn | DataFlags.TooLarge | DataFlags.EightBit, reader.Flags);

        reader.Reset(maxSize: 100);
        var second = new ReadOnlySequence<byte>(Bytes.Raw(".\r\n"));
        var finished = reader.Feed(ref second, sink);

        Assert.True(finished);
        Assert.Equal(DataFlags.None, reader.Flags);
        Assert.Equal(0, reader.Size);
        Assert.Equal(0, reader.LongestLine);
    }

    [Fact]
    public void Should_forget_a_held_back_dot_on_Reset()
    {
        var reader = new DataReader();
        var sink = new ArrayBufferWriter<byte>();
        var first = new ReadOnlySequence<byte>(Bytes.Raw("a\r\n.\r"));
        Assert.False(reader.Feed(ref first, sink));

        reader.Reset(long.MaxValue);
        sink.Clear();
        var second = new ReadOnlySequence<byte>(Bytes.Raw("\nb\r\n.\r\n"));
        Assert.True(reader.Feed(ref second, sink));

        Assert.Equal("\\nb\\r\\n", DataRun.Escape(Bytes.Show(sink.WrittenSpan)));
        Assert.Equal(DataFlags.BareLineFeed, reader.Flags);
    }

    private sealed class CountingWriter : IBufferWriter<byte>
    {
        private byte[] _buffer = new byte[4096];
        public int Written { get; private set; }
        public int Writes { get; private set; }

        public void Advance(int count)
        {
            Written += count;
            Writes++;
        }

        public Memory<byte> GetMemory(int sizeHint = 0) => _buffer = new byte[Math.Max(sizeHint, 4096)];

        public Span<byte> GetSpan(int sizeHint = 0) => GetMemory(sizeHint).Span;
    }
}
