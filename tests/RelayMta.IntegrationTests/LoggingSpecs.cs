using System.Text.Json;
using System.Text.RegularExpressions;
using RelayMta.IntegrationTests.Infrastructure;

namespace RelayMta.IntegrationTests;

/// <summary>The log as operators read it: text or JSON lines, on standard output and in <c>log.file</c>.</summary>
public sealed partial class LoggingSpecs
{
    [Fact]
    public async Task Text_lines_go_to_standard_output_and_to_the_log_file_alike()
    {
        using var dir = new TempDirectory();
        var (output, file, id) = await RunOneMessageAsync(dir, "text");

        foreach (var lines in new[] { output, file })
        {
            var accepted = Assert.Single(lines, l => l.Contains(": accepted from=<a@sender.test>", StringComparison.Ordinal));
            Assert.Matches(TextAccepted(), accepted);
            Assert.Contains(lines, l => l.Contains($"{id}: to=<bob@localhost>, relay=local, tls=none", StringComparison.Ordinal) && l.Contains("status=sent", StringComparison.Ordinal));
            Assert.Contains(lines, l => l.EndsWith($"{id}: removed", StringComparison.Ordinal));
            Assert.All(lines, l => Assert.Matches(TextLine(), l));
        }
    }

    [Fact]
    public async Task Json_format_writes_one_whole_object_per_line_with_the_event_fields()
    {
        using var dir = new TempDirectory();
        var (output, file, id) = await RunOneMessageAsync(dir, "json");

        foreach (var lines in new[] { output, file })
        {
            // Every line is one JSON object, including those whose parameters are addresses or end
            // points (the listening line), which a plain serialiser cannot write.
            var events = lines.Select(l => JsonDocument.Parse(l).RootElement).ToList();
            Assert.All(events, e =>
            {
                Assert.Equal(JsonValueKind.Object, e.ValueKind);
                Assert.True(e.TryGetProperty("Timestamp", out _));
                Assert.True(e.TryGetProperty("LogLevel", out _));
                Assert.True(e.TryGetProperty("Category", out _));
                Assert.True(e.TryGetProperty("Message", out _));
            });
            var listening = Assert.Single(events, e => e.GetProperty("Message").GetString()!.StartsWith("listening for SMTP on ", StringComparison.Ordinal));
            Assert.Matches(@"^127\.0\.0\.1:\d+$", listening.GetProperty("Endpoint").GetString());
            var accepted = Assert.Single(events, e => e.GetProperty("Message").GetString()!.Contains("accepted from=<a@sender.test>", StringComparison.Ordinal));
            Assert.Equal("RelayMta.Smtpd", accepted.GetProperty("Category").GetString());
            Assert.Equal("Information", accepted.GetProperty("LogLevel").GetString());
            Assert.Equal(id, accepted.GetProperty("QueueId").GetString());
            Assert.Equal("a@sender.test", accepted.GetProperty("Sender").GetString());
            Assert.Contains(events, e => e.GetProperty("Message").GetString() == $"{id}: removed");
        }
    }

    /// <summary>Runs the real executable, sends one message to a local mailbox, stops it; its output and log file.</summary>
    private static async Task<(List<string> Output, List<string> File, string QueueId)> RunOneMessageAsync(TempDirectory dir, string format)
    {
        var config = dir.Combine("relay.hocon");
        var logFile = dir.Combine("log", "relay.log");
        await File.WriteAllTextAsync(config, $$"""
            relay-mta {
              listen = ["127.0.0.1:0"]
              admin.listen = ""
              spool-dir = "{{TestRelay.Escape(dir.Combine("spool"))}}"
              local.mailbox-root = "{{TestRelay.Escape(dir.Combine("mail"))}}"
              log { format = {{format}}, file = "{{TestRelay.Escape(logFile)}}" }
            }
            """);
        string id;
        using (var relay = RelayProcess.Start("--config", config))
        {
            var endpoint = await relay.WaitListeningAsync();
            await using (var client = await RawSmtpClient.ConnectAsync(endpoint))
            {
                await client.ReadReplyAsync();
                await client.CommandAsync("EHLO log.test");
                await client.CommandAsync("MAIL FROM:<a@sender.test>");
                await client.CommandAsync("RCPT TO:<bob@localhost>");
                await client.CommandAsync("DATA");
                var reply = await client.CommandAsync("Subject: log me\r\n\r\nx\r\n.");
                Assert.Equal(250, reply.Code);
                id = QueuedAs().Match(reply.ToString()).Groups[1].Value;
                await client.CommandAsync("QUIT");
            }
            await Eventually.TrueAsync(() => relay.Output.Any(l => l.Contains($"{id}: removed", StringComparison.Ordinal)),
                TimeSpan.FromSeconds(20), () => "the message was not delivered; output:\n" + string.Join("\n", relay.Output));
            relay.Terminate();
            Assert.Equal(0, await relay.WaitForExitAsync(TimeSpan.FromSeconds(60)));
            var output = relay.Output.Where(l => l.Length > 0).ToList();
            var file = (await File.ReadAllLinesAsync(logFile)).Where(l => l.Length > 0).ToList();
            Assert.NotEmpty(output);
            // The file holds the same events as standard output (timestamps may differ by the writer).
            Assert.Equal(output.Count, file.Count);
            return (output, file, id);
        }
    }

    [GeneratedRegex(@"queued as ([0-9A-Z]{13})")]
    private static partial Regex QueuedAs();

    [GeneratedRegex(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info: RelayMta\.Smtpd\[\d+\] [0-9A-Z]{13}: accepted from=<a@sender\.test> size=\d+ nrcpt=1 client=\S+ session=\d+$")]
    private static partial Regex TextAccepted();

    // A line starts with a timestamp and a level, or is the continuation of an exception.
    [GeneratedRegex(@"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (trce|dbug|info|warn|fail|crit): \S+\[\d+\] |\s|\S+Exception)")]
    private static partial Regex TextLine();
}
