using System.Net.Sockets;
using RelayMta.IntegrationTests.Infrastructure;

namespace RelayMta.IntegrationTests;

/// <summary>Time-outs, draining on shutdown, SIGTERM.</summary>
public sealed class LifecycleSpecs
{
    [Fact]
    public async Task An_idle_session_gets_421_4_4_2_after_the_command_timeout()
    {
        await using var relay = await TestRelay.StartAsync("relay-mta.limits.command-timeout = 1s");
        await using var client = await RawSmtpClient.ConnectAsync(relay.Endpoint);
        await client.ReadReplyAsync();
        var reply = await client.ReadReplyAsync(TimeSpan.FromSeconds(20));
        Assert.Equal("421 4.4.2 Timeout, closing transmission channel", reply.Lines[^1]);
        Assert.True(await client.IsClosedAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task A_stalled_DATA_gets_421_after_the_data_timeout_and_nothing_is_stored()
    {
        await using var relay = await TestRelay.StartAsync("relay-mta.limits.data-timeout = 1s");
        await using var client = await RawSmtpClient.ConnectAsync(relay.Endpoint);
        await client.ReadReplyAsync();
        await client.CommandAsync("EHLO slow.test");
        await client.CommandAsync("MAIL FROM:<a@sender.test>");
        await client.CommandAsync("RCPT TO:<bob@example.test>");
        Assert.Equal(354, (await client.CommandAsync("DATA")).Code);
        await client.SendAsync("Subject: never finished\r\n\r\nhalf a bo");
        Assert.Equal(421, (await client.ReadReplyAsync(TimeSpan.FromSeconds(20))).Code);
        Assert.True(await client.IsClosedAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(0, relay.Runtime.Spool.Count);
        Assert.Empty(Directory.GetFiles(Path.Combine(relay.SpoolDir, "bodies")));
    }

    [Fact]
    public async Task Shutdown_lets_an_open_transaction_finish_and_closes_idle_sessions_with_421()
    {
        await using var relay = await TestRelay.StartAsync("relay-mta.shutdown.drain-timeout = 20s");
        await using var busy = await RawSmtpClient.ConnectAsync(relay.Endpoint);
        await using var idle = await RawSmtpClient.ConnectAsync(relay.Endpoint);
        await busy.ReadReplyAsync();
        await idle.ReadReplyAsync();
        await idle.CommandAsync("EHLO idle.test");
        await busy.CommandAsync("EHLO busy.test");
        await busy.CommandAsync("MAIL FROM:<a@sender.test>");
        await busy.CommandAsync("RCPT TO:<bob@example.test>");
        Assert.Equal(354, (await busy.CommandAsync("DATA")).Code);
        await busy.SendAsync("Subject: in flight\r\n\r\nfirst half\r\n");
        var endpoint = relay.Endpoint;

        var stopping = relay.Host.StopAsync();

        Assert.Equal("421 4.3.2 Service shutting down, closing transmission channel", (await idle.ReadReplyAsync()).Lines[^1]);
        Assert.True(await idle.IsClosedAsync(TimeSpan.FromSeconds(10)));
        await Assert.ThrowsAnyAsync<SocketException>(async () =>
        {
            using var late = new TcpClient();
            await late.ConnectAsync(endpoint);
            // a connection that slipped into the backlog is closed without a banner
            var buffer = new byte[64];
            if (await late.GetStream().ReadAsync(buffer) == 0) throw new SocketException((int)SocketError.ConnectionReset);
        });

        // The transaction in flight completes normally...
        var accepted = await busy.CommandAsync("second half\r\n.");
        Assert.Equal(250, accepted.Code);
        // ...and the next command is told we are going away.
        Assert.Equal(421, (await busy.CommandAsync("MAIL FROM:<a@sender.test>")).Code);
        Assert.True(await busy.IsClosedAsync(TimeSpan.FromSeconds(10)));
        await stopping;
    }

    [Fact]
    public async Task Past_the_drain_deadline_sessions_get_421_and_unfinished_messages_are_not_stored()
    {
        await using var relay = await TestRelay.StartAsync("relay-mta.shutdown.drain-timeout = 1s");
        await using var client = await RawSmtpClient.ConnectAsync(relay.Endpoint);
        await client.ReadReplyAsync();
        await client.CommandAsync("EHLO slow.test");
        await client.CommandAsync("MAIL FROM:<a@sender.test>");
        await client.CommandAsync("RCPT TO:<bob@example.test>");
        await client.CommandAsync("DATA");
        await client.SendAsync("Subject: slow\r\n\r\nnever ends");

        var stopping = relay.Host.StopAsync();
        Assert.Equal(421, (await client.ReadReplyAsync(TimeSpan.FromSeconds(20))).Code);
        await stopping;
        Assert.Equal(0, relay.Runtime.Spool.Count);
    }

    [Fact]
    public async Task SIGHUP_reloads_the_configuration_without_dropping_a_session_and_refuses_a_broken_file()
    {
        using var dir = new TempDirectory();
        var config = dir.Combine("relay.hocon");
        string Config(string domains) => $$"""
            relay-mta {
              listen = ["127.0.0.1:0"]
              admin.listen = ""
              spool-dir = "{{TestRelay.Escape(dir.Combine("spool"))}}"
              local.mailbox-root = "{{TestRelay.Escape(dir.Combine("mail"))}}"
              local.recipients = existing
              local.domains = [{{domains}}]
            }
            """;
        await File.WriteAllTextAsync(config, Config("\"one.test\""));
        Directory.CreateDirectory(dir.Combine("mail", "one.test", "bob"));
        Directory.CreateDirectory(dir.Combine("mail", "two.test", "bob"));
        using var relay = RelayProcess.Start("--config", config);
        var endpoint = await relay.WaitListeningAsync();
        await using var client = await RawSmtpClient.ConnectAsync(endpoint);
        await client.ReadReplyAsync();
        await client.CommandAsync("EHLO hup.test");
        await client.CommandAsync("MAIL FROM:<a@sender.test>");
        // two.test is not local yet: with "existing", a domain that is not ours is relayed, so ask
        // about a user that does not exist on a domain that will become ours.
        Assert.Equal(250, (await client.CommandAsync("RCPT TO:<bob@one.test>")).Code);
        Assert.Equal(250, (await client.CommandAsync("RCPT TO:<nobody@two.test>")).Code); // relayed (loopback may relay)

        await File.WriteAllTextAsync(config, Config("\"one.test\", \"two.test\""));
        relay.Hangup();
        await Eventually.TrueAsync(() => relay.Output.Any(l => l.Contains("reloaded local domains", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(20), () => "the reload was not logged");

        // The same session goes on, judged by the new settings: two.test is local now.
        Assert.Equal(550, (await client.CommandAsync("RCPT TO:<nobody@two.test>")).Code);
        Assert.Equal(250, (await client.CommandAsync("RCPT TO:<bob@two.test>")).Code);

        // A file that does not load is refused with the reason, and the settings stay.
        await File.WriteAllTextAsync(config, Config("\"one.test\"") + "\nrelay-mta.limits.max-recipients = many\n");
        relay.Hangup();
        await Eventually.TrueAsync(() => relay.Output.Any(l => l.Contains("reload refused", StringComparison.Ordinal) && l.Contains("max-recipients", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(20), () => "the refusal was not logged");
        Assert.Equal(550, (await client.CommandAsync("RCPT TO:<nobody@two.test>")).Code);
        Assert.Equal(221, (await client.CommandAsync("QUIT")).Code);
    }

    [Fact]
    public async Task SIGTERM_exits_0_and_keeps_the_queue()
    {
        using var dir = new TempDirectory();
        var config = dir.Combine("relay.hocon");
        await File.WriteAllTextAsync(config, $$"""
            relay-mta {
              listen = ["127.0.0.1:0"]
              admin.listen = ""
              spool-dir = "{{TestRelay.Escape(dir.Combine("spool"))}}"
              local.mailbox-root = "{{TestRelay.Escape(dir.Combine("mail"))}}"
            }
            """);
        using (var relay = RelayProcess.Start("--config", config))
        {
            var endpoint = await relay.WaitListeningAsync();
            await using (var client = await RawSmtpClient.ConnectAsync(endpoint))
            {
                await client.ReadReplyAsync();
                await client.CommandAsync("EHLO term.test");
                await client.CommandAsync("MAIL FROM:<a@sender.test>");
                Assert.Equal(250, (await client.CommandAsync("RCPT TO:<someone@remote.test>")).Code);
                await client.CommandAsync("DATA");
                Assert.Equal(250, (await client.CommandAsync("Subject: for later\r\n\r\nx\r\n.")).Code);
            }
            relay.Terminate();
            Assert.Equal(0, await relay.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        }

        using var again = RelayProcess.Start("--config", config);
        await again.WaitListeningAsync();
        Assert.Contains(again.Output, l => l.Contains("recovered 1 queued messages", StringComparison.Ordinal));
    }
}
