using System.Buffers;
using RelayMta.Protocol.Smtp;
using RelayMta.Protocol.Tests.Support;

namespace RelayMta.Protocol.Tests.Client;

/// <summary>Drives <see cref="ReplyReader"/> the way a client's read loop does and records what it saw.</summary>
internal static class ReplyWire
{
    public static string Escape(string raw) => raw.Replace("\r", "\\r").Replace("\n", "\\n");

    /// <summary>"250|first line|second line", escaped.</summary>
    public static string Show(SmtpResponse response) =>
        Escape(response.Code + "|" + string.Join("|", response.Lines));

    /// <summary>
    /// Reads replies off <paramref name="buffer"/> until NeedMore or Invalid, checking on the way that
    /// a reply that is not Complete leaves the buffer and the out value alone. Returns true on Invalid.
    /// </summary>
    private static bool Drain(ref ReadOnlySequence<byte> buffer, List<string> events)
    {
        while (true)
        {
            var before = buffer;
            var status = ReplyReader.TryRead(ref buffer, out var response);
            if (status == ReplyStatus.Complete)
            {
                Assert.NotNull(response);
                Assert.True(buffer.Length < before.Length, "a complete reply must consume bytes");
                events.Add(Show(response));
                continue;
            }
            Assert.Null(response);
            Assert.Equal(before.Length, buffer.Length);
            Assert.Equal(before.Start, buffer.Start);
            if (status == ReplyStatus.Invalid)
            {
                events.Add("Invalid");
                return true;
            }
            Assert.Equal(ReplyStatus.NeedMore, status);
            return false;
        }
    }

    /// <summary>
    /// One read per element of <paramref name="reads"/>; what the previous read left unconsumed
    /// stays in front of the new bytes in its own segment, as a pipe keeps it. Stops at Invalid
    /// (the client drops the connection); otherwise ends with "rest:" and the unconsumed bytes.
    /// </summary>
    public static List<string> Reads(IEnumerable<byte[]> reads)
    {
        var events = new List<string>();
        var pending = Array.Empty<byte>();
        foreach (var read in reads)
        {
            var buffer = Segments.Sequence(pending, read);
            if (Drain(ref buffer, events)) return events;
            pending = buffer.ToArray();
        }
        events.Add("rest:" + Escape(Bytes.Show(pending)));
        return events;
    }

    /// <summary>All chunks as the segments of one sequence, read once.</summary>
    public static List<string> OneSequence(byte[][] chunks)
    {
        var events = new List<string>();
        var buffer = Segments.Sequence(chunks);
        if (Drain(ref buffer, events)) return events;
        events.Add("rest:" + Escape(Bytes.Show(buffer.ToArray())));
        return events;
    }
}
