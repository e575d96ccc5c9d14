using System.Globalization;

namespace RelayMta.Protocol.Mail;

/// <summary>Domain names as keys: lower-case ASCII, internationalised labels as A-labels (RFC 5890).</summary>
public static class DomainName
{
    private static readonly IdnMapping Idn = new() { AllowUnassigned = false, UseStd3AsciiRules = false };

    /// <summary>
    /// The comparable form of a domain: lower-case, U-labels turned into A-labels, no trailing dot.
    /// Address literals (<c>[192.0.2.1]</c>) are returned lower-cased as they are.
    /// </summary>
    public static string Normalize(string domain)
    {
        if (domain.Length > 0 && domain[^1] == '.') domain = domain[..^1];
        // Lower-case first: Punycode encodes case, and with InvariantGlobalization the managed
        // IdnMapping does not apply the UTS 46 case mapping, so "BÜCHER" would become another A-label.
        domain = domain.ToLowerInvariant();
        if (domain.StartsWith('[')) return domain;
        foreach (var c in domain)
        {
            if (c > 0x7f)
            {
                try
                {
                    return Idn.GetAscii(domain).ToLowerInvariant();
                }
                catch (ArgumentException)
                {
                    return domain;
                }
            }
        }
        return domain;
    }

    /// <summary>Whether <paramref name="domain"/> is a plausible host name for configuration (letters, digits, hyphens, dots).</summary>
    public static bool IsValidHostName(string domain)
    {
        if (domain.Length is 0 or > 253) return false;
        foreach (var label in domain.TrimEnd('.').Split('.'))
        {
            if (label.Length is 0 or > 63 || label[0] == '-' || label[^1] == '-') return false;
            foreach (var c in label)
                if (!(char.IsAsciiLetterOrDigit(c) || c == '-' || c == '_' || c > 0x7f)) return false;
        }
        return true;
    }
}
