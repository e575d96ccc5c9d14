using RelayMta.IntegrationTests.Infrastructure;

namespace RelayMta.IntegrationTests;

/// <summary>Many sessions at once, each with its own connection actor; every message delivered.</summary>
public sealed class ConcurrencySpecs
{
    [Fact]
    public async Task Three_hundred_concurrent_sessions_are_all_delivered()
    {
        const int sessions = 300;
        await using var relay = await TestRelay.StartAsync();

        // Open every connection first so they really are concurrent, then run the transactions.
        var clients = await Task.WhenAll(Enumerable.Range(0, sessions).Select(_ => RawSmtpClient.ConnectAsync(relay.Endpoint)));
        try
        {
            var replies = await Task.WhenAll(clients.Select(async (c, i) =>
            {
                await c.ReadReplyAsync();
                await c.CommandAsync("EHLO load.test");
                await c.SendAsync($"MAIL FROM:<s{i}@sender.test>\r\nRCPT TO:<user{i % 10}@example.test>\r\nDATA\r\n");
                await c.ReadReplyAsync();
                await c.ReadReplyAsync();
                await c.ReadReplyAsync();
                return await c.CommandAsync($"Subject: message {i}\r\n\r\nbody {i}\r\n.");
            }));
            Assert.All(replies, r => Assert.Equal(250, r.Code));
            Assert.Equal(sessions, replies.Select(r => r.LastText).Distinct().Count()); // distinct queue ids
        }
        finally
        {
            foreach (var c in clients) await c.DisposeAsync();
        }

        await Eventually.TrueAsync(() => Enumerable.Range(0, 10).Sum(u => relay.Delivered($"user{u}").Length) == sessions,
            TimeSpan.FromSeconds(60));
        await Eventually.TrueAsync(() => relay.Runtime.Spool.Count == 0, TimeSpan.FromSeconds(10));
        var (commits, syncs) = relay.Runtime.Spool.CommitCounters;
        Assert.True(commits > syncs, $"group commit should share flushes: {commits} records, {syncs} syncs");
    }
}
