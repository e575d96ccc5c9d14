using System.Buffers;
using RelayMta.Protocol.Smtp;

namespace RelayMta.Protocol.Fuzzing;

/// <summary>
/// Target "stuff": byte 0 seeds how the content is cut into Write calls, byte 1 how the stuffed
/// bytes are cut into reads; the rest is message content as the relay got it. DotStuffer's output
/// must be the same for any cutting, hold no bare CR or LF and no unstuffed line-start dot, and
/// DataReader on the other side must give back the content with its line ends made CRLF, ending
/// exactly at the terminator DotStuffer wrote.
/// </summary>
internal static class StuffTarget
{
    private static readonly byte[] NextCommand = "QUIT\r\n"u8.ToArray();

    public static void Run(ReadOnlySpan<byte> data)
    {
        var writeSeed = Invariant.At(data, 0);
        var readSeed = Invariant.At(data, 1);
        var content = Invariant.After(data, 2).ToArray();

        var stuffer = new DotStuffer();
        var wire = Stuff(stuffer, [content]);
        CheckWire(wire, content.Length == 0);
        foreach (var (name, chunks) in Chunking.Plans(content, writeSeed))
            Invariant.Same(Invariant.Show(wire), Invariant.Show(Stuff(stuffer, chunks)), $"stuffing written as {name} (the stuffer reused)");
        var fresh = new DotStuffer();
        fresh.Write("\r\n.\r"u8, new ArrayBufferWriter<byte>());
        fresh.Reset();
        Invariant.Same(Invariant.Show(wire), Invariant.Show(Stuff(fresh, [content])), "stuffing after Reset");

        var expected = Normalize(content);
        var eightBit = Invariant.HasEightBit(content);
        var received = wire.Concat(NextCommand).ToArray();
        foreach (var (name, chunks) in Chunking.Plans(received, readSeed))
        {
            var reader = new DataReader();
            var sink = new ArrayBufferWriter<byte>();
            var finished = false;
            var rest = new List<byte>();
            foreach (var chunk in chunks)
            {
                if (finished)
                {
                    rest.AddRange(chunk);
                    continue;
                }
                var input = new ReadOnlySequence<byte>(chunk);
                finished = reader.Feed(ref input, sink);
                rest.AddRange(input.ToArray());
            }
            Invariant.That(finished, $"{name}: DataReader did not see the end DotStuffer wrote");
            Invariant.That(rest.SequenceEqual(NextCommand), $"{name}: DataReader ended somewhere else than at DotStuffer's terminator (rest '{Invariant.Show(rest.ToArray())}')");
            if (!sink.WrittenSpan.SequenceEqual(expected))
                Invariant.Fail($"{name}: round trip changed the content\n expected: {Invariant.Show(expected)}\n   actual: {Invariant.Show(sink.WrittenSpan)}");
            var flags = eightBit ? DataFlags.EightBit : DataFlags.None;
            Invariant.That(reader.Flags == flags, $"{name}: the receiver flagged {reader.Flags} (expected {flags})");
            Invariant.That(reader.Size == expected.Length, $"{name}: size {reader.Size}, expected {expected.Length}");
        }
    }

    private static byte[] Stuff(DotStuffer stuffer, byte[][] chunks)
    {
        var output = new ArrayBufferWriter<byte>();
        foreach (var chunk in chunks) stuffer.Write(chunk, output);
        stuffer.Complete(output); // Complete also resets the stuffer for the next message
        return output.WrittenSpan.ToArray();
    }

    /// <summary>What goes on the wire: CRLF lines only, every line-start dot doubled, CRLF "." CRLF once, at the end.</summary>
    private static void CheckWire(byte[] wire, bool empty)
    {
        Invariant.That(empty ? wire.AsSpan().SequenceEqual(".\r\n"u8) : wire.AsSpan().EndsWith("\r\n.\r\n"u8), $"stuffed content ends badly: '{Invariant.Show(wire)}'");
        for (var i = 0; i < wire.Length; i++)
        {
            if (wire[i] == (byte)'\r') Invariant.That(i + 1 < wire.Length && wire[i + 1] == (byte)'\n', $"bare CR at {i} of the stuffed content");
            if (wire[i] == (byte)'\n') Invariant.That(i > 0 && wire[i - 1] == (byte)'\r', $"bare LF at {i} of the stuffed content");
        }
        var body = wire.AsSpan(0, wire.Length - 3); // without the final ".\r\n"
        for (var start = 0; start < body.Length;)
        {
            var lf = body[start..].IndexOf((byte)'\n');
            var line = body.Slice(start, lf); // CR included
            if (line.Length > 0 && line[0] == (byte)'.')
                Invariant.That(line.Length >= 2 && line[1] == (byte)'.', $"line-start dot not doubled at {start} of the stuffed content");
            start += lf + 1;
        }
    }

    /// <summary>The content as the receiver must see it: a bare CR or LF becomes CRLF, and a last line gets its CRLF.</summary>
    private static byte[] Normalize(byte[] content)
    {
        var result = new List<byte>(content.Length + 2);
        for (var i = 0; i < content.Length; i++)
        {
            var b = content[i];
            if (b == (byte)'\r')
            {
                result.Add((byte)'\r');
                result.Add((byte)'\n');
                if (i + 1 < content.Length && content[i + 1] == (byte)'\n') i++;
            }
            else if (b == (byte)'\n')
            {
                result.Add((byte)'\r');
                result.Add((byte)'\n');
            }
            else
            {
                result.Add(b);
            }
        }
        if (result.Count > 0 && result[^1] != (byte)'\n') result.AddRange("\r\n"u8.ToArray());
        return result.ToArray();
    }
}
