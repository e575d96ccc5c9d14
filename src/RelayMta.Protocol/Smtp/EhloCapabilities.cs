using System.Globalization;

namespace RelayMta.Protocol.Smtp;

/// <summary>What a server said it supports in its EHLO reply (RFC 5321 4.1.1.1 and the extension RFCs).</summary>
public sealed record EhloCapabilities
{
    /// <summary>Nothing (the server only speaks HELO).</summary>
    public static readonly EhloCapabilities None = new();

    /// <summary>RFC 2920.</summary>
    public bool Pipelining { get; init; }

    /// <summary>RFC 1870: the SIZE keyword was offered.</summary>
    public bool Size { get; init; }

    /// <summary>RFC 1870: the announced maximum, 0 or null when none.</summary>
    public long? MaxSize { get; init; }

    /// <summary>RFC 6152.</summary>
    public bool EightBitMime { get; init; }

    /// <summary>RFC 6531.</summary>
    public bool SmtpUtf8 { get; init; }

    /// <summary>RFC 3207.</summary>
    public bool StartTls { get; init; }

    /// <summary>RFC 2034.</summary>
    public bool EnhancedStatusCodes { get; init; }

    /// <summary>RFC 3030.</summary>
    public bool Chunking { get; init; }

    /// <summary>RFC 3461.</summary>
    public bool Dsn { get; init; }

    /// <summary>RFC 4954: the SASL mechanisms offered, upper-case.</summary>
    public IReadOnlySet<string> AuthMechanisms { get; init; } = new HashSet<string>();

    /// <summary>Reads the extension lines of an EHLO reply (the first line is the server's greeting).</summary>
    public static EhloCapabilities Parse(SmtpResponse ehlo)
    {
        var caps = new EhloCapabilities();
        var auth = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 1; i < ehlo.Lines.Count; i++)
        {
            var words = ehlo.Lines[i].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (words.Length == 0) continue;
            switch (words[0].ToUpperInvariant())
            {
                case "PIPELINING": caps = caps with { Pipelining = true }; break;
                case "SIZE":
                    long? max = words.Length > 1 && long.TryParse(words[1], NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0 ? n : null;
                    caps = caps with { Size = true, MaxSize = max };
                    break;
                case "8BITMIME": caps = caps with { EightBitMime = true }; break;
                case "SMTPUTF8": caps = caps with { SmtpUtf8 = true }; break;
                case "STARTTLS": caps = caps with { StartTls = true }; break;
                case "ENHANCEDSTATUSCODES": caps = caps with { EnhancedStatusCodes = true }; break;
                case "CHUNKING": caps = caps with { Chunking = true }; break;
                case "DSN": caps = caps with { Dsn = true }; break;
                case "AUTH":
                    foreach (var m in words.Skip(1)) auth.Add(m.ToUpperInvariant());
                    break;
                default:
                    // "AUTH=LOGIN PLAIN" is an old, non-standard form some servers still send.
                    if (words[0].StartsWith("AUTH=", StringComparison.OrdinalIgnoreCase))
                    {
                        if (words[0].Length > 5) auth.Add(words[0][5..].ToUpperInvariant());
                        foreach (var m in words.Skip(1)) auth.Add(m.ToUpperInvariant());
                    }
                    break;
            }
        }
        return caps with { AuthMechanisms = auth };
    }
}
