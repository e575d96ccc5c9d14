using System.Text;

namespace RelayMta.Protocol.Smtp;

/// <summary>
/// One SMTP reply: a three-digit code, an RFC 3463 enhanced status code and text. The wire form
/// (<c>"250 2.0.0 OK\r\n"</c>, multi-line when the text has several lines) is encoded once, at
/// construction, so writing a static reply is a copy.
/// </summary>
public sealed class SmtpReply
{
    /// <summary>Creates a reply; <paramref name="text"/> may hold several lines separated by '\n'.</summary>
    public SmtpReply(int code, string enhanced, string text)
    {
        if (code is < 200 or > 599) throw new ArgumentOutOfRangeException(nameof(code));
        Code = code;
        Enhanced = enhanced;
        Text = text;
        Utf8 = Encode(code, enhanced, text);
    }

    /// <summary>The three-digit reply code.</summary>
    public int Code { get; }

    /// <summary>The enhanced status code (RFC 3463), e.g. <c>5.1.1</c>; empty for none.</summary>
    public string Enhanced { get; }

    /// <summary>Human-readable text (lines separated by '\n').</summary>
    public string Text { get; }

    /// <summary>The encoded reply, CRLF-terminated, ready to write.</summary>
    public ReadOnlyMemory<byte> Utf8 { get; }

    /// <summary>True for 2xx and 3xx codes.</summary>
    public bool IsPositive => Code < 400;

    /// <summary>True for 4xx codes.</summary>
    public bool IsTransient => Code is >= 400 and < 500;

    /// <summary>True for 5xx codes.</summary>
    public bool IsPermanent => Code >= 500;

    /// <summary>Returns a copy of this reply with other text.</summary>
    public SmtpReply WithText(string text) => new(Code, Enhanced, text);

    /// <inheritdoc />
    public override string ToString() =>
        Enhanced.Length == 0 ? $"{Code} {Text}" : $"{Code} {Enhanced} {Text}";

    private static byte[] Encode(int code, string enhanced, string text)
    {
        var sb = new StringBuilder(text.Length + 16);
        var lines = text.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            sb.Append(code).Append(i == lines.Length - 1 ? ' ' : '-');
            if (enhanced.Length > 0) sb.Append(enhanced).Append(' ');
            sb.Append(lines[i].TrimEnd('\r')).Append("\r\n");
        }
        return Encoding.UTF8.GetBytes(sb.ToString());
    }
}
