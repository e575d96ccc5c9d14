using System.Buffers;
using System.Reflection;
using System.Text;
using CsCheck;
using RelayMta.Protocol.Smtp;
using RelayMta.Protocol.Tests.Support;

namespace RelayMta.Protocol.Tests.Client;

public sealed class ReplyReaderSpecs
{
    private const int Max = ReplyReader.MaxLineLength;

    /// <summary>
    /// Reads <paramref name="input"/> whole and under every splitting (two and three pieces at every
    /// offset, one byte at a time), both as one multi-segment sequence and as successive reads,
    /// asserts they all agree with <paramref name="expected"/>.
    /// </summary>
    private static void AssertEverySplitting(byte[] input, string[] expected)
    {
        Assert.Equal(expected, ReplyWire.OneSequence([input]));
        foreach (var (how, chunks) in Segments.Splittings(input))
        {
            Assert.True(expected.SequenceEqual(ReplyWire.OneSequence(chunks)),
                $"one sequence, {how}: {string.Join(" ; ", ReplyWire.OneSequence(chunks))}");
            Assert.True(expected.SequenceEqual(ReplyWire.Reads(chunks)),
                $"separate reads, {how}: {string.Join(" ; ", ReplyWire.Reads(chunks))}");
        }
    }

    public static TheoryData<string, string, string[]> Wellformed() => new()
    {
        { "a single-line reply", "220 mx.example.com ESMTP Postfix\r\n", ["220|mx.example.com ESMTP Postfix", "rest:"] },
        {
            "a multi-line reply",
            "250-mx.example.com\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
            ["250|mx.example.com|PIPELINING|8BITMIME", "rest:"]
        },
        { "a bare code with no text", "250\r\n", ["250|", "rest:"] },
        { "a code and a space with no text", "250 \r\n", ["250|", "rest:"] },
        { "continuation and last lines with no text", "250-\r\n250\r\n", ["250||", "rest:"] },
        { "bare LF line ends", "250-first\n250 second\n", ["250|first|second", "rest:"] },
        { "CRLF and bare LF mixed in one reply", "250-a\r\n250-b\n250 c\r\n", ["250|a|b|c", "rest:"] },
        { "text after the separator kept as sent", "250  two  spaces - and a hyphen \r\n", ["250| two  spaces - and a hyphen ", "rest:"] },
        {
            "pipelined replies read one after another",
            "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550-5.1.1 No such user\r\n550 5.1.1 Really\r\n354 End data with <CR><LF>.<CR><LF>\r\n",
            ["250|2.1.0 Ok", "250|2.1.5 Ok", "550|5.1.1 No such user|5.1.1 Really", "354|End data with <CR><LF>.<CR><LF>", "rest:"]
        },
        { "the start of the next reply left in the buffer", "250 ok\r\n25", ["250|ok", "rest:25"] },
        { "an unfinished multi-line reply left whole in the buffer", "250 ok\r\n250-a\r\n250-b", ["250|ok", "rest:250-a\\r\\n250-b"] },
        { "a line waiting for its LF left in the buffer", "250 ok\r\n354 go\r", ["250|ok", "rest:354 go\\r"] },
        { "an empty buffer", "", ["rest:"] },
        { "the lowest and highest codes", "200 low\r\n599 high\r\n", ["200|low", "599|high", "rest:"] },
    };

    [Theory]
    [MemberData(nameof(Wellformed))]
    public void Should_read_replies_the_same_however_the_bytes_arrive(string name, string input, string[] expected)
    {
        Assert.NotEmpty(name);
        AssertEverySplitting(Bytes.Raw(input), expected);
    }

    public static TheoryData<string, string, string[]> Malformed() => new()
    {
        { "letters instead of a code", "abc ok\r\n", ["Invalid"] },
        { "a two-digit code", "25 ok\r\n", ["Invalid"] },
        { "a two-digit code alone", "25\r\n", ["Invalid"] },
        { "a letter inside the code", "2x0 ok\r\n", ["Invalid"] },
        { "a non-ASCII digit-like byte", "2\u00b20 ok\r\n", ["Invalid"] },
        { "an empty line", "\r\n", ["Invalid"] },
        { "an empty line with a bare LF", "\n", ["Invalid"] },
        { "a space before the code", " 250 ok\r\n", ["Invalid"] },
        { "code 199", "199 below\r\n", ["Invalid"] },
        { "code 100", "100 below\r\n", ["Invalid"] },
        { "code 000", "000 zero\r\n", ["Invalid"] },
        { "code 600", "600 above\r\n", ["Invalid"] },
        { "code 999", "999 above\r\n", ["Invalid"] },
        { "a different code on the last line", "250-a\r\n251 b\r\n", ["Invalid"] },
        { "a different class on a later line", "250-a\r\n250-b\r\n550 c\r\n", ["Invalid"] },
        { "an underscore as separator", "250_ok\r\n", ["Invalid"] },
        { "a tab as separator", "250\tok\r\n", ["Invalid"] },
        { "a fourth digit", "2500 ok\r\n", ["Invalid"] },
        { "a bad separator on a continuation line", "250-a\r\n250+b\r\n", ["Invalid"] },
        { "garbage after a good reply", "250 ok\r\nhello\r\n", ["250|ok", "Invalid"] },
        { "a bad line inside an unfinished reply", "250-a\r\nxyz\r\n250 b", ["Invalid"] },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void Should_call_a_malformed_reply_invalid_however_the_bytes_arrive(string name, string input, string[] expected)
    {
        Assert.NotEmpty(name);
        AssertEverySplitting(Bytes.Raw(input), expected);
    }

    [Fact]
    public void Should_need_more_for_every_proper_prefix_of_a_reply_and_leave_the_buffer_alone()
    {
        var wire = Bytes.Raw("250-mx.example.com\r\n250-SIZE 1000\r\n250 HELP\r\n");
        for (var length = 0; length < wire.Length; length++)
        {
            var buffer = Segments.Sequence(wire[..length].Select(b => new[] { b }).ToArray());
            var status = ReplyReader.TryRead(ref buffer, out var response);
            Assert.True(status == ReplyStatus.NeedMore, $"prefix of {length} bytes gave {status}");
            Assert.Null(response);
            Assert.Equal(length, buffer.Length);
        }

        var whole = Segments.Sequence(wire.Select(b => new[] { b }).ToArray());
        Assert.Equal(ReplyStatus.Complete, ReplyReader.TryRead(ref whole, out var complete));
        Assert.Equal(["mx.example.com", "SIZE 1000", "HELP"], complete!.Lines);
        Assert.True(whole.IsEmpty);
    }

    [Fact]
    public void Should_take_one_reply_per_call_from_a_pipelined_buffer_fed_byte_by_byte()
    {
        var wire = Bytes.Raw("250 2.1.0 Sender ok\r\n452 4.5.3 Too many recipients\r\n250 2.1.5 Ok\r\n554 5.5.1 No valid recipients\r\n");
        var chunks = wire.Select(b => new[] { b }).ToArray();

        var events = ReplyWire.Reads(chunks);

        Assert.Equal(["250|2.1.0 Sender ok", "452|4.5.3 Too many recipients", "250|2.1.5 Ok", "554|5.5.1 No valid recipients", "rest:"], events);
    }

    [Fact]
    public void Should_decode_the_text_as_UTF8_even_when_a_character_is_split_between_segments()
    {
        var wire = Bytes.Utf8("250-Grüße aus Köln\r\n250 日本語\r\n");
        foreach (var (how, chunks) in Segments.Splittings(wire))
        {
            var buffer = Segments.Sequence(chunks);
            Assert.True(ReplyReader.TryRead(ref buffer, out var response) == ReplyStatus.Complete, how);
            Assert.Equal(["Grüße aus Köln", "日本語"], response!.Lines);
        }
    }

    [Fact]
    public void Should_accept_a_line_of_exactly_the_maximum_length_before_its_line_end()
    {
        // The limit counts the bytes before the LF: code, separator, text and any CR.
        var lf = "250 " + new string('a', Max - 4) + "\n";
        var crlf = "250 " + new string('b', Max - 5) + "\r\n";

        Assert.Equal(["250|" + new string('a', Max - 4), "rest:"], ReplyWire.OneSequence([Bytes.Raw(lf)]));
        Assert.Equal(["250|" + new string('b', Max - 5), "rest:"], ReplyWire.OneSequence([Bytes.Raw(crlf)]));
    }

    [Theory]
    [InlineData("\n")]
    [InlineData("\r\n")]
    public void Should_call_a_line_one_byte_over_the_maximum_invalid(string lineEnd)
    {
        var line = "250 " + new string('a', Max - 4 - (lineEnd.Length - 1) + 1) + lineEnd;
        var wire = Bytes.Raw(line + "250 next\r\n");

        Assert.Equal(["Invalid"], ReplyWire.OneSequence([wire]));
        Assert.Equal(["Invalid"], ReplyWire.Reads(Segments.Cut(wire, 100, Max - 1, Max, Max + 1)));
    }

    [Fact]
    public void Should_wait_for_a_line_end_until_the_buffer_exceeds_the_maximum_then_call_it_invalid()
    {
        var atLimit = Bytes.Raw("250 " + new string('a', Max - 4));
        var overLimit = Bytes.Raw("250 " + new string('a', Max - 3));

        var waiting = Segments.Sequence(atLimit[..1000], atLimit[1000..]);
        Assert.Equal(ReplyStatus.NeedMore, ReplyReader.TryRead(ref waiting, out _));
        Assert.Equal(Max, waiting.Length);

        var refused = Segments.Sequence(overLimit[..1000], overLimit[1000..]);
        Assert.Equal(ReplyStatus.Invalid, ReplyReader.TryRead(ref refused, out var none));
        Assert.Null(none);
    }

    [Fact]
    public void Should_call_an_over_long_continuation_line_invalid_with_or_without_its_newline()
    {
        var head = "250-mx.example.com\r\n250-";
        var withNewline = Bytes.Raw(head + new string('x', Max) + "\r\n250 OK\r\n");
        var withoutNewline = Bytes.Raw(head + new string('x', Max));

        Assert.Equal(["Invalid"], ReplyWire.OneSequence([withNewline]));
        Assert.Equal(["Invalid"], ReplyWire.OneSequence([withoutNewline]));
        Assert.Equal(["Invalid"], ReplyWire.Reads(Segments.Cut(withoutNewline, 10, 30, 2000)));
    }

    [Fact]
    public void Should_count_the_line_limit_from_the_start_of_each_line_not_of_the_buffer()
    {
        // Many lines each well under the limit add up to far more than it.
        var lines = Enumerable.Range(0, 20).Select(i => $"250-{new string((char)('a' + i), Max / 2)}\r\n");
        var wire = Bytes.Raw(string.Concat(lines) + "250 end\r\n");

        var events = ReplyWire.Reads(Segments.Cut(wire, 3 * Max, 7 * Max));

        Assert.Equal(2, events.Count);
        Assert.EndsWith("|end", events[0]);
        Assert.Equal("rest:", events[1]);
    }

    [Fact]
    public void Should_call_a_reply_of_endless_continuation_lines_invalid_instead_of_waiting_for_more()
    {
        var wire = Bytes.Raw(string.Concat(Enumerable.Repeat("250-x\r\n", 5000)));
        var buffer = Segments.Sequence(wire);

        Assert.Equal(ReplyStatus.Invalid, ReplyReader.TryRead(ref buffer, out _));
    }

    [Fact]
    public void Should_read_a_reply_of_a_few_hundred_lines()
    {
        var wire = Bytes.Raw(string.Concat(Enumerable.Repeat("250-x\r\n", 500)) + "250 y\r\n");
        var buffer = Segments.Sequence(wire);

        Assert.Equal(ReplyStatus.Complete, ReplyReader.TryRead(ref buffer, out var response));
        Assert.Equal(501, response!.Lines.Count);
        Assert.Equal("y", response.Lines[^1]);
    }

    public static TheoryData<string> ServerReplies() =>
        new(typeof(Replies).GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.FieldType == typeof(SmtpReply)).Select(f => f.Name));

    [Theory]
    [MemberData(nameof(ServerReplies))]
    public void Should_read_back_every_reply_our_own_server_sends(string name)
    {
        var sent = ReplyNames.Get(name);
        var buffer = Segments.Sequence(sent.Utf8.ToArray(), "250 next\r\n"u8.ToArray());

        Assert.Equal(ReplyStatus.Complete, ReplyReader.TryRead(ref buffer, out var read));
        Assert.Equal(sent.Code, read!.Code);
        Assert.Equal(sent.Text.Split('\n').Length, read.Lines.Count);
        Assert.Equal(sent.Enhanced.Length == 0 ? null : sent.Enhanced, read.Enhanced);
        Assert.Equal((sent.IsPositive, sent.IsTransient, sent.IsPermanent), (read.IsPositive, read.IsTransient, read.IsPermanent));
        Assert.Equal("250 next\r\n", Encoding.ASCII.GetString(buffer.ToArray()));
    }

    // ---- properties ----

    /// <summary>Reply text: printable ASCII (any byte but CR and LF would do; ASCII keeps the model trivial).</summary>
    private static readonly Gen<string> Text = Gen.String[Gen.Char[' ', '~'], 0, 30];

    private static readonly Gen<(int Code, string[] Lines, bool[] BareLf)> Reply =
        Gen.Int[200, 599].SelectMany(code => Gen.Int[1, 5].SelectMany(n =>
            Gen.Select(Text.Array[n], Gen.Bool.Array[n], (lines, lf) => (code, lines, lf))));

    /// <summary>Where to cut the wire bytes; taken modulo the length so every offset is reachable.</summary>
    private static readonly Gen<int[]> Cuts = Gen.Int[0, 10_000].Array[0, 10];

    private static byte[][] CutAt(byte[] bytes, int[] cuts) =>
        Segments.Cut(bytes, cuts.Select(c => c % (bytes.Length + 1)).Distinct().Order().ToArray());

    [Fact]
    public void Should_read_back_any_sequence_of_pipelined_replies_however_they_are_cut()
    {
        Gen.Select(Reply.Array[0, 6], Text, Cuts).Sample((replies, tail, cuts) =>
        {
            var wire = new StringBuilder();
            var expected = new List<string>();
            foreach (var (code, lines, bareLf) in replies)
            {
                for (var i = 0; i < lines.Length; i++)
                {
                    var text = lines[i];
                    // "250" alone is only a complete last line when there is no text.
                    var separator = i == lines.Length - 1 ? (text.Length == 0 && bareLf[i] ? "" : " ") : "-";
                    wire.Append(code).Append(separator).Append(text).Append(bareLf[i] ? "\n" : "\r\n");
                }
                expected.Add(ReplyWire.Escape(code + "|" + string.Join("|", lines)));
            }
            // An unfinished line after the last reply: must be left in the buffer untouched.
            var rest = tail.Length == 0 ? "" : "250-" + tail;
            wire.Append(rest);
            expected.Add("rest:" + ReplyWire.Escape(rest));
            var chunks = CutAt(Encoding.ASCII.GetBytes(wire.ToString()), cuts);

            Assert.Equal(expected, ReplyWire.Reads(chunks));
            Assert.Equal(expected, ReplyWire.OneSequence(chunks));
        }, iter: 2000);
    }

    /// <summary>Bytes dense in what matters to the reader: digits, separators, line ends.</summary>
    private static readonly Gen<byte[]> Noise =
        Gen.OneOf("2505 -\r\nx"u8.ToArray().Select(b => (IGen<byte>)Gen.Const(b)).ToArray()).Array[0, 40];

    [Fact]
    public void Should_not_depend_on_how_arbitrary_input_is_cut()
    {
        Gen.Select(Noise, Cuts).Sample((input, cuts) =>
        {
            var whole = ReplyWire.OneSequence([input]);
            var chunks = CutAt(input, cuts);

            Assert.Equal(whole, ReplyWire.OneSequence(chunks));
            Assert.Equal(whole, ReplyWire.Reads(chunks));
        }, iter: 2000);
    }
}
