namespace RelayMta.Protocol.Smtp;

/// <summary>The verbs of the receive side (RFC 5321 section 4.1 and the extensions we speak).</summary>
public enum SmtpVerb : byte
{
    /// <summary>Not a verb we know.</summary>
    Unknown,
#pragma warning disable CS1591
    Helo,
    Ehlo,
    Mail,
    Rcpt,
    Data,
    Rset,
    Noop,
    Quit,
    Vrfy,
    Expn,
    Help,
    StartTls,
    Auth,
    Bdat,
#pragma warning restore CS1591
}
