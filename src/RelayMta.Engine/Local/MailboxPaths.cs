using System.Text;

namespace RelayMta.Engine.Local;

/// <summary>Maps a local recipient to its Maildir: <c>&lt;root&gt;/&lt;domain&gt;/&lt;user&gt;</c>.</summary>
public static class MailboxPaths
{
    /// <summary>
    /// The mailbox directory name for a local part: unquoted, lower-cased. Null when the name could
    /// not be a safe directory name (a slash, NUL, a leading dot, or too long).
    /// </summary>
    public static string? MailboxName(string localPart)
    {
        var name = Unquote(localPart).ToLowerInvariant();
        if (name.Length is 0 or > 64 || name[0] == '.' || name.IndexOfAny(['/', '\0', '\\']) >= 0) return null;
        foreach (var c in name)
            if (char.IsControl(c)) return null;
        return name;
    }

    /// <summary>The Maildir of <paramref name="mailboxName"/> at <paramref name="domainKey"/>.</summary>
    public static string For(string root, string domainKey, string mailboxName) => Path.Combine(root, domainKey, mailboxName);

    /// <summary>Splits "local@domain" at the last '@' outside quotes.</summary>
    public static (string Local, string Domain) Split(string address)
    {
        var inQuote = false;
        var at = -1;
        for (var i = 0; i < address.Length; i++)
        {
            var c = address[i];
            if (inQuote && c == '\\') i++;
            else if (c == '"') inQuote = !inQuote;
            else if (!inQuote && c == '@') at = i;
        }
        return at < 0 ? (address, "") : (address[..at], address[(at + 1)..]);
    }

    private static string Unquote(string localPart)
    {
        if (localPart.Length < 2 || localPart[0] != '"' || localPart[^1] != '"') return localPart;
        var sb = new StringBuilder(localPart.Length);
        for (var i = 1; i < localPart.Length - 1; i++)
        {
            if (localPart[i] == '\\' && i + 1 < localPart.Length - 1) i++;
            sb.Append(localPart[i]);
        }
        return sb.ToString();
    }
}
