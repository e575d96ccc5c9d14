using System.Globalization;
using System.Text;

namespace RelayMta.IntegrationTests.Infrastructure;

/// <summary>
/// A scripted SMTP conversation (chasquid's .cmy style), one edge case per file in Dialogs/:
/// <code>
/// # comment
/// @config relay-mta.limits.max-recipients = 2     (HOCON layered over the test relay's config)
/// S: 220                                          (read a reply; its last line must start with this text,
///                                                  or any line when the text is "250-...")
/// C: MAIL FROM:&lt;a@b.test&gt;                         (send the line plus CRLF)
/// C~ DATA\r\n.\n                                  (send exactly these bytes; escapes \r \n \t \\ \xNN)
/// S: closed                                       (the server must close the connection)
/// </code>
/// </summary>
public sealed record Dialog(string Name, string Config, IReadOnlyList<Dialog.Step> Steps)
{
    public abstract record Step(int Line);

    public sealed record Send(int Line, byte[] Bytes) : Step(Line);

    public sealed record Expect(int Line, string Prefix) : Step(Line);

    public sealed record ExpectClosed(int Line) : Step(Line);

    public static string Folder => Path.Combine(AppContext.BaseDirectory, "Dialogs");

    public static IEnumerable<object[]> All() =>
        Directory.GetFiles(Folder, "*.smtp").OrderBy(f => f, StringComparer.Ordinal).Select(f => new object[] { Path.GetFileName(f) });

    public static Dialog Load(string fileName)
    {
        var steps = new List<Step>();
        var config = new StringBuilder();
        var lines = File.ReadAllLines(Path.Combine(Folder, fileName));
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            var n = i + 1;
            if (line.Length == 0 || line.StartsWith('#')) continue;
            if (line.StartsWith("@config ", StringComparison.Ordinal)) config.AppendLine(line[8..]);
            else if (line == "C:") steps.Add(new Send(n, "\r\n"u8.ToArray()));
            else if (line.StartsWith("C: ", StringComparison.Ordinal)) steps.Add(new Send(n, Encoding.UTF8.GetBytes(line[3..] + "\r\n")));
            else if (line.StartsWith("C~ ", StringComparison.Ordinal)) steps.Add(new Send(n, Unescape(line[3..])));
            else if (line == "S: closed") steps.Add(new ExpectClosed(n));
            else if (line.StartsWith("S: ", StringComparison.Ordinal)) steps.Add(new Expect(n, line[3..]));
            else throw new FormatException($"{fileName}:{n}: cannot read '{line}'");
        }
        return new Dialog(fileName, config.ToString(), steps);
    }

    public async Task RunAsync(System.Net.IPEndPoint endpoint)
    {
        await using var client = await RawSmtpClient.ConnectAsync(endpoint);
        foreach (var step in Steps)
        {
            switch (step)
            {
                case Send s:
                    await client.SendAsync(s.Bytes);
                    break;
                case Expect e:
                {
                    WireReply reply;
                    try
                    {
                        reply = await client.ReadReplyAsync(TimeSpan.FromSeconds(10));
                    }
                    catch (Exception ex)
                    {
                        throw new Xunit.Sdk.XunitException($"{Name}:{e.Line}: expected '{e.Prefix}' but {ex.Message}");
                    }
                    // "250-SIZE 2048" names a continuation line; anything else is matched to the last line.
                    var continuation = e.Prefix.Length > 3 && e.Prefix[3] == '-';
                    if (continuation ? !reply.Lines.Any(l => l.StartsWith(e.Prefix, StringComparison.Ordinal))
                                     : !reply.Lines[^1].StartsWith(e.Prefix, StringComparison.Ordinal))
                        throw new Xunit.Sdk.XunitException($"{Name}:{e.Line}: expected '{e.Prefix}', got '{reply}'");
                    break;
                }
                case ExpectClosed c:
                    if (!await client.IsClosedAsync(TimeSpan.FromSeconds(10)))
                        throw new Xunit.Sdk.XunitException($"{Name}:{c.Line}: expected the server to close the connection");
                    break;
            }
        }
    }

    private static byte[] Unescape(string text)
    {
        var bytes = new List<byte>();
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c != '\\' || i + 1 >= text.Length)
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(c.ToString()));
                continue;
            }
            var next = text[++i];
            switch (next)
            {
                case 'r': bytes.Add((byte)'\r'); break;
                case 'n': bytes.Add((byte)'\n'); break;
                case 't': bytes.Add((byte)'\t'); break;
                case '\\': bytes.Add((byte)'\\'); break;
                case 'x':
                    bytes.Add(byte.Parse(text.AsSpan(i + 1, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
                    i += 2;
                    break;
                default: throw new FormatException($"unknown escape \\{next}");
            }
        }
        return bytes.ToArray();
    }
}
