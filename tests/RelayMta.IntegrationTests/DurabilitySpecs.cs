using System.Collections.Concurrent;
using System.Net;
using System.Text.RegularExpressions;
using RelayMta.IntegrationTests.Infrastructure;

namespace RelayMta.IntegrationTests;

/// <summary>
/// A 250 after DATA is a promise: the message is on disk. These tests run the real executable,
/// kill it with SIGKILL (no flushing, no clean-up), start it again on the same spool, and check
/// that every acknowledged message is delivered.
/// </summary>
public sealed partial class DurabilitySpecs
{
    private static string WriteConfig(TempDirectory dir, string mailRoot)
    {
        var path = dir.Combine("relay.hocon");
        File.WriteAllText(path, $$"""
            relay-mta {
              hostname = "mx.test"
              listen = ["127.0.0.1:0"]
              admin.listen = ""
              spool-dir = "{{TestRelay.Escape(dir.Combine("spool"))}}"
              local {
                domains = ["example.test"]
                mailbox-root = "{{TestRelay.Escape(mailRoot)}}"
              }
            }
            """);
        return path;
    }

    [Fact]
    public async Task Acknowledged_messages_survive_kill_9_and_are_delivered_after_restart()
    {
        using var dir = new TempDirectory();
        // The mailbox root is a plain file at first, so local delivery fails (temporary error) and
        // every accepted message is still queued when the process is killed.
        var mailRoot = dir.Combine("mail");
        File.WriteAllText(mailRoot, "not a directory");
        var config = WriteConfig(dir, mailRoot);

        var acknowledged = new List<string>();
        using (var first = RelayProcess.Start("--config", config))
        {
            var endpoint = await first.WaitListeningAsync();
            for (var i = 0; i < 20; i++) acknowledged.Add(await SendAsync(endpoint, $"m{i}"));
            first.KillHard();
        }

        File.Delete(mailRoot); // the disk problem is fixed before the restart
        using var second = RelayProcess.Start("--config", config);
        await second.WaitListeningAsync();
        await Eventually.TrueAsync(() => Delivered(mailRoot).Count >= acknowledged.Count, TimeSpan.FromSeconds(30),
            () => $"{Delivered(mailRoot).Count} of {acknowledged.Count} delivered");
        Assert.Equal(acknowledged.OrderBy(x => x), Delivered(mailRoot).Values.Distinct().OrderBy(x => x));
        Assert.Contains(second.Output, l => l.Contains("recovered 20 queued messages", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Messages_acknowledged_under_concurrent_load_survive_a_kill_at_a_random_moment()
    {
        using var dir = new TempDirectory();
        var mailRoot = dir.Combine("mail");
        var config = WriteConfig(dir, mailRoot);
        var acknowledged = new ConcurrentBag<string>();

        using (var first = RelayProcess.Start("--config", config))
        {
            var endpoint = await first.WaitListeningAsync();
            using var stop = new CancellationTokenSource();
            var senders = Enumerable.Range(0, 16).Select(s => Task.Run(async () =>
            {
                for (var i = 0; i < 200 && !stop.IsCancellationRequested; i++)
                {
                    try
                    {
                        acknowledged.Add(await SendAsync(endpoint, $"s{s}-{i}"));
                    }
                    catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or InvalidDataException)
                    {
                        return; // the server died under us: this message was never acknowledged
                    }
                }
            })).ToList();
            var killAfter = 100 + Random.Shared.Next(200);
            await Eventually.TrueAsync(() => acknowledged.Count >= killAfter, TimeSpan.FromSeconds(60));
            first.KillHard();
            stop.Cancel();
            await Task.WhenAll(senders);
        }

        using var second = RelayProcess.Start("--config", config);
        await second.WaitListeningAsync();
        var expected = acknowledged.ToHashSet();
        await Eventually.TrueAsync(() => expected.IsSubsetOf(Delivered(mailRoot).Values), TimeSpan.FromSeconds(60),
            () => $"{expected.Except(Delivered(mailRoot).Values).Count()} of {expected.Count} acknowledged messages missing");
    }

    /// <summary>Sends one message whose Subject is <paramref name="tag"/>; returns the tag once 250 came back.</summary>
    private static async Task<string> SendAsync(IPEndPoint endpoint, string tag)
    {
        await using var client = await RawSmtpClient.ConnectAsync(endpoint);
        await Expect(client.ReadReplyAsync(), 220);
        await Expect(client.CommandAsync("EHLO durability.test"), 250);
        await Expect(client.CommandAsync("MAIL FROM:<load@sender.test>"), 250);
        await Expect(client.CommandAsync("RCPT TO:<bob@example.test>"), 250);
        await Expect(client.CommandAsync("DATA"), 354);
        await Expect(client.CommandAsync($"Subject: {tag}\r\n\r\nbody of {tag}\r\n."), 250);
        return tag;
    }

    private static async Task Expect(Task<WireReply> reply, int code)
    {
        var r = await reply;
        if (r.Code != code) throw new InvalidDataException($"expected {code}, got {r}");
    }

    /// <summary>Delivered files of bob@example.test mapped to their Subject.</summary>
    private static Dictionary<string, string> Delivered(string mailRoot)
    {
        var dir = Path.Combine(mailRoot, "example.test", "bob", "new");
        if (!Directory.Exists(dir)) return new();
        return Directory.GetFiles(dir).ToDictionary(f => f, f => SubjectLine().Match(File.ReadAllText(f)).Groups[1].Value);
    }

    [GeneratedRegex(@"\r\nSubject: (\S+)\r\n")]
    private static partial Regex SubjectLine();
}
