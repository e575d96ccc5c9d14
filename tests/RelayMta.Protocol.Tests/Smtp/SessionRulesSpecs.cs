using RelayMta.Protocol.Smtp;
using RelayMta.Protocol.Tests.Support;

namespace RelayMta.Protocol.Tests.Smtp;

public sealed class SessionRulesSpecs
{
    private const string Ok = "allowed";

    // One row per state × verb. Expected: "allowed", or the Replies field that must come back.
    public static TheoryData<SessionState, SmtpVerb, string> Table() => new()
    {
        // Connected: banner sent, no HELO/EHLO yet
        { SessionState.Connected, SmtpVerb.Unknown, Ok },
        { SessionState.Connected, SmtpVerb.Helo, Ok },
        { SessionState.Connected, SmtpVerb.Ehlo, Ok },
        { SessionState.Connected, SmtpVerb.Mail, nameof(Replies.NeedHelo) },
        { SessionState.Connected, SmtpVerb.Rcpt, nameof(Replies.NeedHelo) },
        { SessionState.Connected, SmtpVerb.Data, nameof(Replies.NeedHelo) },
        { SessionState.Connected, SmtpVerb.Rset, Ok },
        { SessionState.Connected, SmtpVerb.Noop, Ok },
        { SessionState.Connected, SmtpVerb.Quit, Ok },
        { SessionState.Connected, SmtpVerb.Vrfy, Ok },
        { SessionState.Connected, SmtpVerb.Expn, Ok },
        { SessionState.Connected, SmtpVerb.Help, Ok },
        { SessionState.Connected, SmtpVerb.StartTls, nameof(Replies.NeedHelo) },
        { SessionState.Connected, SmtpVerb.Auth, nameof(Replies.NeedHelo) },
        { SessionState.Connected, SmtpVerb.Bdat, Ok },
        // Ready: greeted, no transaction
        { SessionState.Ready, SmtpVerb.Unknown, Ok },
        { SessionState.Ready, SmtpVerb.Helo, Ok },
        { SessionState.Ready, SmtpVerb.Ehlo, Ok },
        { SessionState.Ready, SmtpVerb.Mail, Ok },
        { SessionState.Ready, SmtpVerb.Rcpt, nameof(Replies.NeedMail) },
        { SessionState.Ready, SmtpVerb.Data, nameof(Replies.NeedMail) },
        { SessionState.Ready, SmtpVerb.Rset, Ok },
        { SessionState.Ready, SmtpVerb.Noop, Ok },
        { SessionState.Ready, SmtpVerb.Quit, Ok },
        { SessionState.Ready, SmtpVerb.Vrfy, Ok },
        { SessionState.Ready, SmtpVerb.Expn, Ok },
        { SessionState.Ready, SmtpVerb.Help, Ok },
        { SessionState.Ready, SmtpVerb.StartTls, Ok },
        { SessionState.Ready, SmtpVerb.Auth, Ok },
        { SessionState.Ready, SmtpVerb.Bdat, Ok },
        // MailGiven: MAIL accepted, no recipient yet
        { SessionState.MailGiven, SmtpVerb.Unknown, Ok },
        { SessionState.MailGiven, SmtpVerb.Helo, Ok },
        { SessionState.MailGiven, SmtpVerb.Ehlo, Ok },
        { SessionState.MailGiven, SmtpVerb.Mail, nameof(Replies.NestedMail) },
        { SessionState.MailGiven, SmtpVerb.Rcpt, Ok },
        { SessionState.MailGiven, SmtpVerb.Data, nameof(Replies.NeedRcpt) },
        { SessionState.MailGiven, SmtpVerb.Rset, Ok },
        { SessionState.MailGiven, SmtpVerb.Noop, Ok },
        { SessionState.MailGiven, SmtpVerb.Quit, Ok },
        { SessionState.MailGiven, SmtpVerb.Vrfy, Ok },
        { SessionState.MailGiven, SmtpVerb.Expn, Ok },
        { SessionState.MailGiven, SmtpVerb.Help, Ok },
        { SessionState.MailGiven, SmtpVerb.StartTls, nameof(Replies.BadSequence) }, // RFC 3207 4.2: not mid-transaction
        { SessionState.MailGiven, SmtpVerb.Auth, nameof(Replies.BadSequence) },     // RFC 4954 4: not mid-transaction
        { SessionState.MailGiven, SmtpVerb.Bdat, Ok },
        // RecipientGiven: at least one RCPT accepted
        { SessionState.RecipientGiven, SmtpVerb.Unknown, Ok },
        { SessionState.RecipientGiven, SmtpVerb.Helo, Ok },
        { SessionState.RecipientGiven, SmtpVerb.Ehlo, Ok },
        { SessionState.RecipientGiven, SmtpVerb.Mail, nameof(Replies.NestedMail) },
        { SessionState.RecipientGiven, SmtpVerb.Rcpt, Ok },
        { SessionState.RecipientGiven, SmtpVerb.Data, Ok },
        { SessionState.RecipientGiven, SmtpVerb.Rset, Ok },
        { SessionState.RecipientGiven, SmtpVerb.Noop, Ok },
        { SessionState.RecipientGiven, SmtpVerb.Quit, Ok },
        { SessionState.RecipientGiven, SmtpVerb.Vrfy, Ok },
        { SessionState.RecipientGiven, SmtpVerb.Expn, Ok },
        { SessionState.RecipientGiven, SmtpVerb.Help, Ok },
        { SessionState.RecipientGiven, SmtpVerb.StartTls, nameof(Replies.BadSequence) },
        { SessionState.RecipientGiven, SmtpVerb.Auth, nameof(Replies.BadSequence) },
        { SessionState.RecipientGiven, SmtpVerb.Bdat, Ok },
    };

    [Theory]
    [MemberData(nameof(Table))]
    public void Should_allow_the_verb_or_give_the_sequencing_reply(SessionState state, SmtpVerb verb, string expected)
    {
        var reply = SessionRules.Check(state, verb);

        if (expected == Ok) Assert.Null(ReplyNames.NameOf(reply));
        else Assert.Same(ReplyNames.Get(expected), reply);
    }

    [Fact]
    public void Should_have_exactly_one_row_for_every_state_and_verb()
    {
        var rows = Table().Select(r => ((SessionState)r[0], (SmtpVerb)r[1])).ToList();
        var all = Enum.GetValues<SessionState>().SelectMany(s => Enum.GetValues<SmtpVerb>().Select(v => (s, v))).ToList();

        Assert.Equal(all.Count, rows.Count);
        Assert.Equal(all.OrderBy(x => x), rows.OrderBy(x => x));
    }

    [Fact]
    public void Should_refuse_only_with_503_5_5_1()
    {
        foreach (var state in Enum.GetValues<SessionState>())
        foreach (var verb in Enum.GetValues<SmtpVerb>())
        {
            var reply = SessionRules.Check(state, verb);
            if (reply is null) continue;
            Assert.True((503, "5.5.1") == (reply.Code, reply.Enhanced), $"{state} × {verb}: {reply}");
        }
    }
}
