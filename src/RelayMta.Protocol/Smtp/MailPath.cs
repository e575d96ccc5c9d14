namespace RelayMta.Protocol.Smtp;

/// <summary>A parsed reverse-path or forward-path; the spans point into the command line.</summary>
public readonly ref struct MailPath
{
    internal MailPath(ReadOnlySpan<byte> localPart, ReadOnlySpan<byte> domain, bool isNull, bool isPostmaster, bool hasNonAscii)
    {
        LocalPart = localPart;
        Domain = domain;
        IsNull = isNull;
        IsPostmaster = isPostmaster;
        HasNonAscii = hasNonAscii;
    }

    /// <summary>The local part as sent (quotes included for a quoted string).</summary>
    public ReadOnlySpan<byte> LocalPart { get; }

    /// <summary>The domain or address literal; empty for the null path and bare Postmaster.</summary>
    public ReadOnlySpan<byte> Domain { get; }

    /// <summary>True for the null reverse-path <c>&lt;&gt;</c>.</summary>
    public bool IsNull { get; }

    /// <summary>True for <c>&lt;Postmaster&gt;</c> without a domain (RFC 5321 4.5.1).</summary>
    public bool IsPostmaster { get; }

    /// <summary>True when the path as sent holds UTF-8, in the address or in an ignored source route (needs SMTPUTF8).</summary>
    public bool HasNonAscii { get; }
}

/// <summary>What MAIL FROM's parameters said.</summary>
public struct MailParameters
{
    /// <summary>SIZE= value (RFC 1870), or -1 when absent.</summary>
    public long Size;

    /// <summary>BODY= value (RFC 6152).</summary>
    public BodyType Body;

    /// <summary>SMTPUTF8 given (RFC 6531).</summary>
    public bool SmtpUtf8;

    /// <summary>AUTH= given (RFC 4954).</summary>
    public bool HasAuth;
}

/// <summary>The BODY parameter of MAIL.</summary>
public enum BodyType : byte
{
    /// <summary>No BODY parameter.</summary>
    NotSpecified,
    /// <summary>BODY=7BIT.</summary>
    SevenBit,
    /// <summary>BODY=8BITMIME.</summary>
    EightBitMime,
}
