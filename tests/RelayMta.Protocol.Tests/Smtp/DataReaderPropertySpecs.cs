using CsCheck;
using RelayMta.Protocol.Smtp;
using RelayMta.Protocol.Tests.Support;

namespace RelayMta.Protocol.Tests.Smtp;

public sealed class DataReaderPropertySpecs
{
    /// <summary>A text line without its CRLF: any bytes but CR and LF, often starting with dots.</summary>
    private static readonly Gen<byte[]> Line =
        Gen.Select(Gen.Int[0, 3], Gen.Byte.Array[0, 40], (dots, bytes) =>
            Enumerable.Repeat((byte)'.', dots).Concat(bytes.Where(b => b is not ((byte)'\r' or (byte)'\n'))).ToArray());

    private static readonly Gen<byte[][]> Lines = Line.Array[0, 25];

    /// <summary>Where to cut the wire bytes; taken modulo the length so every offset is reachable.</summary>
    private static readonly Gen<int[]> Cuts = Gen.Int[0, 10_000].Array[0, 8];

    /// <summary>The sending side's job (RFC 5321 4.5.2): double a leading dot, end with CRLF "." CRLF.</summary>
    private static byte[] Stuff(byte[][] lines)
    {
        var wire = new List<byte>();
        foreach (var line in lines)
        {
            if (line.Length > 0 && line[0] == (byte)'.') wire.Add((byte)'.');
            wire.AddRange(line);
            wire.AddRange("\r\n"u8.ToArray());
        }
        wire.AddRange(".\r\n"u8.ToArray());
        return wire.ToArray();
    }

    private static byte[][] CutAt(byte[] bytes, int[] cuts) =>
        Segments.Cut(bytes, cuts.Select(c => c % (bytes.Length + 1)).Distinct().Order().ToArray());

    [Fact]
    public void Should_give_back_exactly_the_original_lines_after_stuffing_and_any_segmentation()
    {
        Gen.Select(Lines, Cuts).Sample((lines, cuts) =>
        {
            var body = lines.SelectMany(l => l.Concat("\r\n"u8.ToArray())).ToArray();
            var wire = Stuff(lines).Concat("QUIT\r\n"u8.ToArray()).ToArray();
            var chunks = CutAt(wire, cuts);
            var eightBit = body.Any(b => b >= 0x80);
            var longest = lines.Length == 0 ? 0 : lines.Max(l => l.Length) + 2;
            var expected = new DataRun(true, DataRun.Escape(Bytes.Show(body)), "QUIT\\r\\n",
                eightBit ? DataFlags.EightBit : DataFlags.None, body.Length, longest);

            DataRun.AssertSame(expected, DataRun.OneSequence(chunks), "one sequence");
            DataRun.AssertSame(expected, DataRun.SeparateReads(chunks), "separate reads");
            DataRun.AssertSame(expected, DataRun.Spans(chunks), "spans");
        });
    }

    /// <summary>Bytes from the alphabet that matters to the state machine, so CR/LF/dot combinations are dense.</summary>
    private static readonly Gen<byte[]> Noise =
        Gen.OneOf("\r\n.a\u00ff"u8.ToArray().Select(b => (IGen<byte>)Gen.Const(b)).ToArray()).Array[0, 60];

    [Fact]
    public void Should_not_depend_on_how_arbitrary_input_is_segmented()
    {
        Gen.Select(Noise, Cuts).Sample((input, cuts) =>
        {
            var whole = DataRun.OneSequence([input]);
            var chunks = CutAt(input, cuts);

            DataRun.AssertSame(whole, DataRun.OneSequence(chunks), "one sequence");
            DataRun.AssertSame(whole, DataRun.SeparateReads(chunks), "separate reads");
            DataRun.AssertSame(whole, DataRun.Spans(chunks), "spans");
        });
    }

    [Fact]
    public void Should_end_arbitrary_input_exactly_after_the_first_CRLF_dot_CRLF_at_a_line_start()
    {
        Gen.Select(Noise, Noise).Sample((before, after) =>
        {
            // Put a real terminator after "before" (made to end with CRLF) and check DATA ends there
            // unless "before" already held one.
            var head = before.Concat("\r\n"u8.ToArray()).ToArray();
            var input = head.Concat(".\r\n"u8.ToArray()).Concat(after).ToArray();

            var run = DataRun.OneSequence([input]);

            Assert.True(run.Finished);
            var firstEnd = FirstTerminatorEnd(input);
            Assert.Equal(DataRun.Escape(Bytes.Show(input.AsSpan(firstEnd))), run.Rest);
        });
    }

    /// <summary>Reference: the end of the first CRLF "." CRLF, where the content's start counts as after a CRLF.</summary>
    private static int FirstTerminatorEnd(byte[] input)
    {
        var text = "\r\n" + Bytes.Show(input);
        var at = text.IndexOf("\r\n.\r\n", StringComparison.Ordinal);
        return at + 5 - 2;
    }
}
