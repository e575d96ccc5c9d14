namespace RelayMta.Protocol.Smtp;

/// <summary>Where an SMTP server session stands (RFC 5321 3.3 and 4.1.4).</summary>
public enum SessionState : byte
{
    /// <summary>Banner sent; no HELO/EHLO yet.</summary>
    Connected,
    /// <summary>HELO/EHLO done, no transaction open.</summary>
    Ready,
    /// <summary>MAIL accepted, no recipient accepted yet.</summary>
    MailGiven,
    /// <summary>At least one RCPT accepted.</summary>
    RecipientGiven,
}

/// <summary>
/// The command sequencing table: state × verb → allowed or the 503 to send. One table, so a 503 is
/// "not in the table" rather than an <c>if</c> in each handler (the SmtpServer library's state table).
/// </summary>
public static class SessionRules
{
    // Bit per verb; one mask per state.
    private static readonly uint[] Allowed = BuildTable();

    /// <summary>Returns null when <paramref name="verb"/> may run in <paramref name="state"/>, else the reply.</summary>
    public static SmtpReply? Check(SessionState state, SmtpVerb verb)
    {
        if ((Allowed[(int)state] & (1u << (int)verb)) != 0) return null;
        return verb switch
        {
            SmtpVerb.Mail when state == SessionState.Connected => Replies.NeedHelo,
            SmtpVerb.Mail => Replies.NestedMail,
            SmtpVerb.Rcpt when state == SessionState.Connected => Replies.NeedHelo,
            SmtpVerb.Rcpt => Replies.NeedMail,
            SmtpVerb.Data when state == SessionState.Connected => Replies.NeedHelo,
            SmtpVerb.Data when state == SessionState.Ready => Replies.NeedMail,
            SmtpVerb.Data => Replies.NeedRcpt,
            SmtpVerb.Auth or SmtpVerb.StartTls when state == SessionState.Connected => Replies.NeedHelo,
            _ => Replies.BadSequence,
        };
    }

    private static uint[] BuildTable()
    {
        static uint Bits(params SmtpVerb[] verbs) => verbs.Aggregate(0u, (m, v) => m | 1u << (int)v);
        var always = Bits(SmtpVerb.Helo, SmtpVerb.Ehlo, SmtpVerb.Rset, SmtpVerb.Noop, SmtpVerb.Quit, SmtpVerb.Vrfy,
            SmtpVerb.Expn, SmtpVerb.Help, SmtpVerb.Unknown, SmtpVerb.Bdat);
        var table = new uint[4];
        table[(int)SessionState.Connected] = always;
        table[(int)SessionState.Ready] = always | Bits(SmtpVerb.Mail, SmtpVerb.StartTls, SmtpVerb.Auth);
        table[(int)SessionState.MailGiven] = always | Bits(SmtpVerb.Rcpt);
        table[(int)SessionState.RecipientGiven] = always | Bits(SmtpVerb.Rcpt, SmtpVerb.Data);
        return table;
    }
}
