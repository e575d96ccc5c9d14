namespace RelayMta.Protocol.Smtp;

/// <summary>
/// The replies of the receive side. Codes follow RFC 5321 section 4.2 and the enhanced status codes
/// RFC 3463 (and RFC 5248's registry); the text stays short and generic, detail goes to the log.
/// </summary>
public static class Replies
{
#pragma warning disable CS1591 // the names say what they are
    public static readonly SmtpReply Ok = new(250, "2.0.0", "OK");
    public static readonly SmtpReply SenderOk = new(250, "2.1.0", "Sender OK");
    public static readonly SmtpReply RecipientOk = new(250, "2.1.5", "Recipient OK");
    public static readonly SmtpReply ResetOk = new(250, "2.0.0", "Reset OK");
    public static readonly SmtpReply StartData = new(354, "", "End data with <CR><LF>.<CR><LF>");
    public static readonly SmtpReply Bye = new(221, "2.0.0", "Bye");
    public static readonly SmtpReply CannotVerify = new(252, "2.1.5", "Cannot VRFY user, but will accept message and attempt delivery");
    public static readonly SmtpReply Help = new(214, "2.0.0",
        "Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\nSee RFC 5321");

    // 4xx: try again later
    public static readonly SmtpReply ShuttingDown = new(421, "4.3.2", "Service shutting down, closing transmission channel");
    public static readonly SmtpReply TooManyErrors = new(421, "4.7.0", "Too many errors, closing transmission channel");
    public static readonly SmtpReply Timeout = new(421, "4.4.2", "Timeout, closing transmission channel");
    public static readonly SmtpReply TooManyRecipients = new(452, "4.5.3", "Too many recipients");
    public static readonly SmtpReply SpoolFailure = new(451, "4.3.0", "Local error in processing, try again later");
    public static readonly SmtpReply LocalError = new(451, "4.3.0", "Local error in processing");

    // 5xx: syntax and sequence
    public static readonly SmtpReply UnknownCommand = new(500, "5.5.1", "Command unrecognized");
    public static readonly SmtpReply LineTooLong = new(500, "5.5.2", "Line too long");
    public static readonly SmtpReply BareLineFeed = new(500, "5.5.2", "Syntax error: lines must end with <CR><LF>");
    public static readonly SmtpReply InvalidCharacters = new(500, "5.5.2", "Syntax error: invalid characters in command");
    public static readonly SmtpReply EightBitCommand = new(500, "5.5.2", "Syntax error: 8-bit characters in command without SMTPUTF8");
    public static readonly SmtpReply SyntaxError = new(501, "5.5.4", "Syntax error in parameters or arguments");
    public static readonly SmtpReply HeloNeedsDomain = new(501, "5.5.4", "Syntax: HELO/EHLO domain");
    public static readonly SmtpReply NotImplemented = new(502, "5.5.1", "Command not implemented");
    public static readonly SmtpReply BadSequence = new(503, "5.5.1", "Bad sequence of commands");
    public static readonly SmtpReply NeedHelo = new(503, "5.5.1", "Send HELO/EHLO first");
    public static readonly SmtpReply NestedMail = new(503, "5.5.1", "Sender already specified");
    public static readonly SmtpReply NeedMail = new(503, "5.5.1", "Need MAIL before RCPT");
    public static readonly SmtpReply NeedRcpt = new(503, "5.5.1", "Need RCPT before DATA");
    public static readonly SmtpReply NoValidRecipients = new(554, "5.5.1", "No valid recipients");
    public static readonly SmtpReply ParameterNotImplemented = new(555, "5.5.4", "Unsupported MAIL/RCPT parameter");
    public static readonly SmtpReply BadSenderSyntax = new(501, "5.1.7", "Bad sender address syntax");
    public static readonly SmtpReply BadRecipientSyntax = new(501, "5.1.3", "Bad recipient address syntax");
    public static readonly SmtpReply NonAsciiAddress = new(553, "5.6.7", "Non-ASCII address requires SMTPUTF8");

    // 5xx: policy and content
    public static readonly SmtpReply UserUnknown = new(550, "5.1.1", "Mailbox unavailable: user unknown");
    public static readonly SmtpReply MailboxNameNotAllowed = new(553, "5.1.3", "Mailbox name not allowed");
    public static readonly SmtpReply RelayDenied = new(554, "5.7.1", "Relay access denied");
    public static readonly SmtpReply MessageTooBig = new(552, "5.3.4", "Message size exceeds fixed maximum message size");
    public static readonly SmtpReply HeaderTooBig = new(552, "5.3.4", "Message header size exceeds limit");
    public static readonly SmtpReply DataLineTooLong = new(550, "5.6.0", "Message content has a line longer than allowed");
    public static readonly SmtpReply BareLineEndingInData = new(550, "5.6.0", "Message rejected: bare <CR> or <LF> in content (RFC 5321 section 2.3.8)");
    public static readonly SmtpReply MailLoop = new(554, "5.4.6", "Too many Received headers: mail loop detected");
#pragma warning restore CS1591
}
