namespace RelayMta.Protocol.Smtp;

/// <summary>A reply received from a remote SMTP server (the client side's view of <see cref="SmtpReply"/>).</summary>
/// <param name="Code">The three-digit code.</param>
/// <param name="Lines">The text of each line, without the code and separator.</param>
public sealed record SmtpResponse(int Code, IReadOnlyList<string> Lines)
{
    /// <summary>2xx or 3xx.</summary>
    public bool IsPositive => Code < 400;

    /// <summary>4xx: try again later.</summary>
    public bool IsTransient => Code is >= 400 and < 500;

    /// <summary>5xx: will not work.</summary>
    public bool IsPermanent => Code >= 500;

    /// <summary>
    /// The RFC 3463 enhanced status code at the start of the first line (e.g. <c>5.1.1</c>), when the
    /// server sent one whose class matches the reply code; otherwise null.
    /// </summary>
    public string? Enhanced
    {
        get
        {
            if (Lines.Count == 0) return null;
            var text = Lines[0];
            var space = text.IndexOf(' ');
            var word = space < 0 ? text : text[..space];
            return IsEnhancedCode(word) && word[0] - '0' == Code / 100 ? word : null;
        }
    }

    /// <summary>All lines joined, for logs and bounces.</summary>
    public string Text => string.Join(" ", Lines);

    /// <summary>The enhanced code to record: the server's, or the class default (X.0.0).</summary>
    public string StatusOrDefault => Enhanced ?? $"{Code / 100}.0.0";

    /// <inheritdoc />
    public override string ToString() => $"{Code} {Text}";

    private static bool IsEnhancedCode(string word)
    {
        // class "." subject "." detail: 2|4|5 . 1*3digit . 1*3digit
        var parts = word.Split('.');
        return parts.Length == 3 && parts[0] is "2" or "4" or "5" &&
               parts[1].Length is >= 1 and <= 3 && parts[1].All(char.IsAsciiDigit) &&
               parts[2].Length is >= 1 and <= 3 && parts[2].All(char.IsAsciiDigit);
    }
}
