using RelayMta.Protocol.Smtp;
using RelayMta.Protocol.Tests.Support;

namespace RelayMta.Protocol.Tests.Smtp;

/// <summary>
/// SMTP smuggling (CVE-2023-51764 Postfix, CVE-2023-51765 Sendmail, CVE-2023-51766 Exim): an
/// outbound server that passes bare CR/LF through, and an inbound one that takes a non-CRLF
/// "end of data", disagree on where the message ends, and a second, forged transaction rides
/// inside the first. Only CRLF "." CRLF may end DATA; every look-alike must stay content and be
/// flagged so the message can be refused.
/// </summary>
public sealed class DataReaderSmugglingSpecs
{
    private const DataFlags CR = DataFlags.BareCarriageReturn;
    private const DataFlags LF = DataFlags.BareLineFeed;

    private const string Smuggled = "MAIL FROM:<ceo@victim.example>\r\nRCPT TO:<staff@victim.example>\r\nDATA\r\nFrom: ceo@victim.example\r\n\r\npay now\r\n";
    private const string Terminator = ".\r\n";
    private const string NextCommand = "QUIT\r\n";

    /// <summary>The named look-alikes of "\r\n.\r\n", and the flags each must raise.</summary>
    public static TheoryData<string, string, DataFlags> Cases() => new()
    {
        { "LF dot LF", "\n.\n", LF },
        { "LF dot CRLF", "\n.\r\n", LF },
        { "CRLF dot LF", "\r\n.\n", LF },
        { "CR dot CR", "\r.\r", CR },
        { "CR dot CRLF", "\r.\r\n", CR },
        { "dot LF at line start", ".\n", LF },
        { "dot CR at line start", ".\r", CR },
        { "CRLF LF dot CRLF", "\r\n\n.\r\n", LF },
        { "CRLF dot CR", "\r\n.\r", CR },
        { "LF dot CR", "\n.\r", LF | CR },
        { "CR dot LF", "\r.\n", LF | CR },
        { "CRLF dot LF CRLF", "\r\n.\n\r\n", LF },
        { "CRLF dot CR CRLF", "\r\n.\r\r\n", CR },
        { "CRLF CR dot CRLF", "\r\n\r.\r\n", CR },
        { "LF LF dot LF LF", "\n\n.\n\n", LF },
        { "CR CR dot CR CR", "\r\r.\r\r", CR },
        { "LF CRLF dot LF", "\n\r\n.\n", LF },
        { "CRLF dot LF dot CRLF", "\r\n.\n.\r\n", LF },
        { "LF dot dot LF", "\n..\n", LF },
    };

    /// <summary>Where in the message the look-alike appears: mid-line, at a line start, or first thing after DATA.</summary>
    public static readonly string[] Contexts = ["Subject: hi\r\n\r\nbody", "Subject: hi\r\n\r\nbody\r\n", ""];

    [Theory]
    [MemberData(nameof(Cases))]
    public void Should_not_end_DATA_at_a_terminator_look_alike(string name, string lookAlike, DataFlags flags)
    {
        foreach (var before in Contexts)
        {
            // Everything up to, but not including, the real terminator.
            var run = DataRun.EverySplitting(Bytes.Raw(before + lookAlike + Smuggled));

            Assert.False(run.Finished, $"{name} after \"{DataRun.Escape(before)}\" ended DATA");
            Assert.Equal("", run.Rest);
            Assert.Equal(flags, run.Flags);
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Should_keep_the_smuggled_commands_as_content_until_the_real_terminator(string name, string lookAlike, DataFlags flags)
    {
        foreach (var before in Contexts)
        {
            var run = DataRun.EverySplitting(Bytes.Raw(before + lookAlike + Smuggled + Terminator + NextCommand));

            Assert.True(run.Finished, name);
            Assert.Equal(DataRun.Escape(NextCommand), run.Rest);
            Assert.EndsWith(DataRun.Escape(Smuggled), run.Output);
            Assert.StartsWith(DataRun.Escape(before), run.Output);
            Assert.Equal(flags, run.Flags);
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Should_flag_the_look_alike_even_when_it_is_the_last_thing_before_the_real_terminator(string name, string lookAlike, DataFlags flags)
    {
        // e.g. "body\n.\n" + "\r\n.\r\n": the message ends at the real terminator, still flagged.
        var run = DataRun.EverySplitting(Bytes.Raw("body" + lookAlike + "\r\n" + Terminator + NextCommand));

        Assert.True(run.Finished, name);
        Assert.Equal(DataRun.Escape(NextCommand), run.Rest);
        Assert.Equal(flags, run.Flags);
    }

    [Fact]
    public void Should_have_a_distinct_name_and_bytes_for_every_case()
    {
        var cases = Cases().Select(row => ((string)row[0], (string)row[1])).ToList();

        Assert.Equal(cases.Count, cases.Select(c => c.Item1).Distinct().Count());
        Assert.Equal(cases.Count, cases.Select(c => c.Item2).Distinct().Count());
        Assert.DoesNotContain(cases, c => c.Item2.Contains("\r\n.\r\n"));
    }
}
