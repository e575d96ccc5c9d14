using RelayMta.Protocol.Smtp;
using RelayMta.Protocol.Tests.Support;

namespace RelayMta.Protocol.Tests.Smtp;

public sealed class ParseVerbSpecs
{
    private static readonly (string Word, SmtpVerb Verb)[] Verbs =
    [
        ("HELO", SmtpVerb.Helo), ("EHLO", SmtpVerb.Ehlo), ("MAIL", SmtpVerb.Mail), ("RCPT", SmtpVerb.Rcpt),
        ("DATA", SmtpVerb.Data), ("RSET", SmtpVerb.Rset), ("NOOP", SmtpVerb.Noop), ("QUIT", SmtpVerb.Quit),
        ("VRFY", SmtpVerb.Vrfy), ("EXPN", SmtpVerb.Expn), ("HELP", SmtpVerb.Help), ("AUTH", SmtpVerb.Auth),
        ("BDAT", SmtpVerb.Bdat), ("STARTTLS", SmtpVerb.StartTls),
    ];

    /// <summary>Every verb in upper, lower, alternating and inverted-alternating case, bare and with an argument.</summary>
    public static TheoryData<string, SmtpVerb> EveryVerbInEveryCase()
    {
        var data = new TheoryData<string, SmtpVerb>();
        foreach (var (word, verb) in Verbs)
        {
            var alternating = new string(word.Select((c, i) => i % 2 == 0 ? char.ToLowerInvariant(c) : c).ToArray());
            var inverted = new string(word.Select((c, i) => i % 2 == 1 ? char.ToLowerInvariant(c) : c).ToArray());
            foreach (var spelling in new[] { word, word.ToLowerInvariant(), alternating, inverted })
            {
                data.Add(spelling, verb);
                data.Add(spelling + " x", verb);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(EveryVerbInEveryCase))]
    public void Should_recognise_every_verb_case_insensitively(string line, SmtpVerb expected)
    {
        var verb = CommandParser.ParseVerb(Bytes.Raw(line), out _);

        Assert.Equal(expected, verb);
    }

    [Fact]
    public void Should_have_a_row_for_every_verb_in_the_enum()
    {
        var covered = Verbs.Select(v => v.Verb).Append(SmtpVerb.Unknown).Order();

        Assert.Equal(Enum.GetValues<SmtpVerb>().Order(), covered);
    }

    [Theory]
    [InlineData("")]
    [InlineData("H")]
    [InlineData("HEL")]
    [InlineData("XYZW")]
    [InlineData("XYZW arg")]
    [InlineData("MAILX")]
    [InlineData("MAILX FROM:<a@b>")]
    [InlineData("MAIL:FROM:<a@b>")]
    [InlineData("MAIL\tFROM:<a@b>")]
    [InlineData("DATA\r")]
    [InlineData("HELOO")]
    [InlineData("STAR")]
    [InlineData("STARTTL")]
    [InlineData("STARTTLSX")]
    [InlineData("START TLS")]
    [InlineData("STARTSSL")]
    [InlineData(" MAIL FROM:<a@b>")]
    [InlineData("M\u00c1IL")]
    [InlineData("\u00cdELO")] // 0xCD | 0x20 = 0xED: setting bit 5 must not turn a high byte into a letter
    public void Should_return_Unknown_for_anything_that_is_not_exactly_a_verb(string line)
    {
        var verb = CommandParser.ParseVerb(Bytes.Raw(line), out var argument);

        Assert.Equal(SmtpVerb.Unknown, verb);
        Assert.True(argument.IsEmpty);
    }

    [Theory]
    [InlineData("NOOP", "")]
    [InlineData("NOOP ", "")]
    [InlineData("NOOP    ", "")]
    [InlineData("MAIL FROM:<a@b>", "FROM:<a@b>")]
    [InlineData("MAIL    FROM:<a@b>   ", "FROM:<a@b>")]
    [InlineData("HELO  client.example  extra  ", "client.example  extra")]
    [InlineData("STARTTLS", "")]
    [InlineData("STARTTLS  now ", "now")]
    [InlineData("VRFY \tuser\t", "\tuser\t")] // only spaces are trimmed
    public void Should_return_the_argument_without_the_separating_and_trailing_spaces(string line, string expected)
    {
        CommandParser.ParseVerb(Bytes.Raw(line), out var argument);

        Assert.Equal(expected, Bytes.Show(argument));
    }

    [Theory]
    [InlineData("client.example", true, "client.example")]
    [InlineData("client.example trailing words", true, "client.example")]
    [InlineData("[192.0.2.1]", true, "[192.0.2.1]")]
    [InlineData("", false, "")]
    [InlineData("bad\u0001name", false, "")]
    [InlineData("bad\u007fname", false, "")]
    public void Should_take_the_first_word_of_HELO_as_the_domain(string argument, bool accepted, string domain)
    {
        var ok = CommandParser.TryParseHelo(Bytes.Raw(argument), out var parsed);

        Assert.Equal(accepted, ok);
        Assert.Equal(domain, Bytes.Show(parsed));
    }

    [Fact]
    public void Should_refuse_a_HELO_name_longer_than_a_domain_may_be()
    {
        Assert.True(CommandParser.TryParseHelo(Bytes.Raw(new string('a', 255)), out _));
        Assert.False(CommandParser.TryParseHelo(Bytes.Raw(new string('a', 256)), out _));
    }
}
