using System.Buffers;
using CsCheck;
using RelayMta.Protocol.Smtp;
using RelayMta.Protocol.Tests.Support;

namespace RelayMta.Protocol.Tests.Client;

public sealed class DotStufferSpecs
{
    private static string Escape(string raw) => raw.Replace("\r", "\\r").Replace("\n", "\\n");

    /// <summary>One Write per chunk, then Complete; the output as raw bytes.</summary>
    private static byte[] Stuff(IEnumerable<byte[]> chunks, DotStuffer? stuffer = null)
    {
        stuffer ??= new DotStuffer();
        var output = new ArrayBufferWriter<byte>();
        foreach (var chunk in chunks) stuffer.Write(chunk, output);
        stuffer.Complete(output);
        return output.WrittenSpan.ToArray();
    }

    private static string StuffShown(params string[] chunks) => Escape(Bytes.Show(Stuff(chunks.Select(Bytes.Raw))));

    /// <summary>The DATA content as the next hop reads it: (finished, unstuffed content, what is left, flags).</summary>
    private static (bool Finished, byte[] Content, byte[] Left, DataFlags Flags) Unstuff(byte[] wire)
    {
        var reader = new DataReader();
        var sink = new ArrayBufferWriter<byte>();
        var input = Segments.Sequence(wire);
        var finished = reader.Feed(ref input, sink);
        return (finished, sink.WrittenSpan.ToArray(), input.ToArray(), reader.Flags);
    }

    /// <summary>A CR not followed by LF or an LF not preceded by CR, or -1.</summary>
    private static int BareLineEnd(byte[] bytes)
    {
        for (var i = 0; i < bytes.Length; i++)
        {
            if (bytes[i] == '\r' && (i + 1 == bytes.Length || bytes[i + 1] != '\n')) return i;
            if (bytes[i] == '\n' && (i == 0 || bytes[i - 1] != '\r')) return i;
        }
        return -1;
    }

    public static TheoryData<string, string, string> Cases() => new()
    {
        { "an empty message", "", ".\r\n" },
        { "content ending in CRLF gets no extra CRLF", "Subject: hi\r\n\r\nHello\r\n", "Subject: hi\r\n\r\nHello\r\n.\r\n" },
        { "content without a final CRLF gets one", "Subject: hi\r\n\r\nHello", "Subject: hi\r\n\r\nHello\r\n.\r\n" },
        { "an empty last line is kept", "a\r\n\r\n", "a\r\n\r\n.\r\n" },
        { "only a CRLF", "\r\n", "\r\n.\r\n" },
        { "a leading dot on the first line", ".hidden\r\n", "..hidden\r\n.\r\n" },
        { "a lone dot on the first line", ".\r\n", "..\r\n.\r\n" },
        { "a lone dot without CRLF", ".", "..\r\n.\r\n" },
        { "a leading dot on a later line", "a\r\n.b\r\nc\r\n", "a\r\n..b\r\nc\r\n.\r\n" },
        { "a lone dot on a later line", "a\r\n.\r\nb\r\n", "a\r\n..\r\nb\r\n.\r\n" },
        { "two leading dots become three", "..\r\n..x\r\n", "...\r\n...x\r\n.\r\n" },
        { "dots on consecutive lines", ".\r\n.\r\n.", "..\r\n..\r\n..\r\n.\r\n" },
        { "dots mid-line and at a line end untouched", "a.b. c.\r\nx..\r\n", "a.b. c.\r\nx..\r\n.\r\n" },
        { "a space before a dot is not a leading dot", " .x\r\n", " .x\r\n.\r\n" },
        { "bare LF becomes CRLF", "a\nb\n", "a\r\nb\r\n.\r\n" },
        { "bare CR becomes CRLF", "a\rb\r", "a\r\nb\r\n.\r\n" },
        { "a leading dot after a bare LF", "a\n.b", "a\r\n..b\r\n.\r\n" },
        { "a leading dot after a bare CR", "a\r.b", "a\r\n..b\r\n.\r\n" },
        { "CR CR LF is a bare CR then a CRLF", "a\r\r\nb", "a\r\n\r\nb\r\n.\r\n" },
        { "LF CR is two line ends", "a\n\rb", "a\r\n\r\nb\r\n.\r\n" },
        { "a lone bare LF", "\n", "\r\n.\r\n" },
        { "a lone bare CR", "\r", "\r\n.\r\n" },
        { "several bare line ends in a row", "\n\n\r\r", "\r\n\r\n\r\n\r\n.\r\n" },
        { "a terminator inside the content", "a\r\n.\r\nMAIL FROM:<x@y>\r\n", "a\r\n..\r\nMAIL FROM:<x@y>\r\n.\r\n" },
        { "the bare LF smuggling shape", "a\n.\nRSET\n", "a\r\n..\r\nRSET\r\n.\r\n" },
        { "the bare CR smuggling shape", "a\r.\rRSET\r", "a\r\n..\r\nRSET\r\n.\r\n" },
        { "the CRLF dot LF smuggling shape", "a\r\n.\nRSET\r\n", "a\r\n..\r\nRSET\r\n.\r\n" },
        { "8-bit and NUL bytes pass through", "\u00ff\u0000.\u0080\r\n", "\u00ff\u0000.\u0080\r\n.\r\n" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Should_stuff_the_content_the_same_however_it_is_chunked(string name, string input, string expected)
    {
        Assert.NotEmpty(name);
        var bytes = Bytes.Raw(input);
        var want = Escape(expected);

        Assert.Equal(want, StuffShown(input));
        foreach (var (how, chunks) in Segments.Splittings(bytes))
        {
            var got = Escape(Bytes.Show(Stuff(chunks)));
            Assert.True(want == got, $"{how}: expected {want}, got {got}");
        }
    }

    [Fact]
    public void Should_join_a_CR_at_the_end_of_one_chunk_with_the_LF_starting_the_next()
    {
        Assert.Equal("a\\r\\nb\\r\\n.\\r\\n", StuffShown("a\r", "\nb"));
        Assert.Equal("a\\r\\n..b\\r\\n.\\r\\n", StuffShown("a\r", "\n.b"));
        Assert.Equal("a\\r\\n\\r\\n.\\r\\n", StuffShown("a\r", "", "\n", "\r", "\n"));
    }

    [Fact]
    public void Should_end_a_bare_CR_at_the_end_of_one_chunk_before_a_dot_starting_the_next()
    {
        Assert.Equal("a\\r\\n..b\\r\\n.\\r\\n", StuffShown("a\r", ".b"));
        Assert.Equal("a\\r\\nb\\r\\n.\\r\\n", StuffShown("a\r", "b"));
        Assert.Equal("a\\r\\n.\\r\\n", StuffShown("a\r")); // the CR is the last thing written
    }

    [Fact]
    public void Should_stuff_a_dot_at_the_start_of_a_chunk_that_starts_a_line()
    {
        Assert.Equal("a\\r\\n..b\\r\\n.\\r\\n", StuffShown("a\r\n", ".b"));
        Assert.Equal("a\\r\\n..b\\r\\n.\\r\\n", StuffShown("a\n", ".b"));
        Assert.Equal("ab.c\\r\\n.\\r\\n", StuffShown("ab", ".c"));     // not at a line start
    }

    [Fact]
    public void Should_start_fresh_after_Complete()
    {
        var stuffer = new DotStuffer();

        var first = Stuff([Bytes.Raw("one\r")], stuffer);
        var second = Stuff([Bytes.Raw(".two")], stuffer);
        var third = Stuff([], stuffer);

        Assert.Equal("one\\r\\n.\\r\\n", Escape(Bytes.Show(first)));
        Assert.Equal("..two\\r\\n.\\r\\n", Escape(Bytes.Show(second)));
        Assert.Equal(".\\r\\n", Escape(Bytes.Show(third)));
    }

    [Fact]
    public void Should_forget_a_half_written_message_on_Reset()
    {
        var stuffer = new DotStuffer();
        var discarded = new ArrayBufferWriter<byte>();
        stuffer.Write(Bytes.Raw("half a line\r"), discarded);

        stuffer.Reset();

        Assert.Equal("..x\\r\\n.\\r\\n", Escape(Bytes.Show(Stuff([Bytes.Raw(".x")], stuffer))));
        stuffer.Write(Bytes.Raw("more"), discarded);
        stuffer.Reset();
        Assert.Equal(".\\r\\n", Escape(Bytes.Show(Stuff([], stuffer))));
    }

    [Fact]
    public void Should_copy_a_large_chunk_with_nothing_to_change_unchanged()
    {
        var line = Bytes.Raw(new string('x', 998) + "\r\n");
        var chunk = Enumerable.Repeat(line, 100).SelectMany(l => l).ToArray();

        var wire = Stuff([chunk, chunk]);

        Assert.Equal(chunk.Concat(chunk).Concat(".\r\n"u8.ToArray()), wire);
    }

    // ---- properties ----

    /// <summary>A line without its line end: any bytes but CR and LF, often starting with dots.</summary>
    private static readonly Gen<byte[]> Line =
        Gen.Select(Gen.Int[0, 3], Gen.Byte.Array[0, 40], (dots, bytes) =>
            Enumerable.Repeat((byte)'.', dots).Concat(bytes.Where(b => b is not ((byte)'\r' or (byte)'\n'))).ToArray());

    /// <summary>Where to cut the content; taken modulo the length so every offset is reachable.</summary>
    private static readonly Gen<int[]> Cuts = Gen.Int[0, 10_000].Array[0, 8];

    private static byte[][] CutAt(byte[] bytes, int[] cuts) =>
        Segments.Cut(bytes, cuts.Select(c => c % (bytes.Length + 1)).Distinct().Order().ToArray());

    [Fact]
    public void Should_give_back_the_original_CRLF_content_after_stuffing_any_chunking_and_unstuffing()
    {
        Gen.Select(Line.Array[0, 20], Gen.Bool, Cuts).Sample((lines, finalCrlf, cuts) =>
        {
            // Lines joined by CRLF; the last one with or without its CRLF.
            var content = string.Join("\r\n", lines.Select(l => Bytes.Show(l)));
            if (finalCrlf && lines.Length > 0) content += "\r\n";
            var bytes = Bytes.Raw(content);
            var expected = bytes.Length == 0 || content.EndsWith("\r\n", StringComparison.Ordinal)
                ? bytes
                : bytes.Concat("\r\n"u8.ToArray()).ToArray();

            var wire = Stuff(CutAt(bytes, cuts));

            Assert.Equal(-1, BareLineEnd(wire));
            var (finished, unstuffed, rest, flags) = Unstuff(wire.Concat("QUIT\r\n"u8.ToArray()).ToArray());
            Assert.True(finished);
            Assert.Equal(expected, unstuffed);
            Assert.Equal("QUIT\r\n"u8.ToArray(), rest);
            Assert.Equal(bytes.Any(b => b >= 0x80) ? DataFlags.EightBit : DataFlags.None, flags);
        }, iter: 3000);
    }

    /// <summary>Arbitrary bytes: dense in CR, LF and dots, sometimes anything at all.</summary>
    private static readonly Gen<byte[]> Noise =
        Gen.OneOf(
            Gen.OneOf("\r\n.a\u00ff"u8.ToArray().Select(b => (IGen<byte>)Gen.Const(b)).ToArray()).Array[0, 60],
            Gen.Byte.Array[0, 60]);

    /// <summary>The reference: every CR LF, bare CR and bare LF as CRLF, and a final CRLF if missing.</summary>
    private static byte[] Normalise(byte[] input)
    {
        var result = new List<byte>();
        for (var i = 0; i < input.Length; i++)
        {
            if (input[i] == '\r' && i + 1 < input.Length && input[i + 1] == '\n') i++;
            if (input[i] is (byte)'\r' or (byte)'\n') result.AddRange("\r\n"u8.ToArray());
            else result.Add(input[i]);
        }
        if (result.Count > 0 && result[^1] != '\n') result.AddRange("\r\n"u8.ToArray());
        return result.ToArray();
    }

    [Fact]
    public void Should_never_send_a_bare_line_end_and_always_end_with_the_terminator_for_arbitrary_bytes()
    {
        Gen.Select(Noise, Cuts).Sample((input, cuts) =>
        {
            var wire = Stuff(CutAt(input, cuts));

            Assert.Equal(-1, BareLineEnd(wire));
            if (input.Length == 0) Assert.Equal(".\r\n"u8.ToArray(), wire);
            else Assert.True(wire.AsSpan().EndsWith("\r\n.\r\n"u8), Escape(Bytes.Show(wire)));

            var (finished, unstuffed, rest, flags) = Unstuff(wire);
            Assert.True(finished);
            Assert.Empty(rest);
            Assert.Equal(input.Any(b => b >= 0x80) ? DataFlags.EightBit : DataFlags.None, flags);
            Assert.Equal(Normalise(input), unstuffed);
        }, iter: 3000);
    }
}
