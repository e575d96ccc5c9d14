using System.Diagnostics;
using System.Net;
using System.Text;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;
using RelayMta.IntegrationTests.Infrastructure;

namespace RelayMta.IntegrationTests.Fixtures;

/// <summary>The fake remote SMTP server, driven by a real client (MailKit) and by raw bytes.</summary>
public sealed class FakeSmtpServerSpecs
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private static async Task<SmtpClient> ConnectAsync(FakeSmtpServer server, SmtpClient? client = null)
    {
        client ??= new SmtpClient();
        client.LocalDomain = "relay.test";
        client.Timeout = 10_000;
        await client.ConnectAsync(server.Endpoint.Address.ToString(), server.Endpoint.Port, SecureSocketOptions.None);
        return client;
    }

    private static MimeMessage Message(string from, params string[] to)
    {
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse(from));
        foreach (var t in to) message.To.Add(MailboxAddress.Parse(t));
        message.Subject = "fixture";
        message.Body = new TextPart("plain") { Text = "hello" };
        return message;
    }

    private static async Task<RawSmtpClient> RawAsync(FakeSmtpServer server, string greeting = "EHLO relay.test")
    {
        var client = await RawSmtpClient.ConnectAsync(server.Endpoint);
        Assert.Equal(220, (await client.ReadReplyAsync()).Code);
        Assert.Equal(250, (await client.CommandAsync(greeting)).Code);
        return client;
    }

    [Fact]
    public async Task Should_accept_a_MailKit_message_and_record_it_byte_exact()
    {
        await using var server = FakeSmtpServer.Start(IPAddress.Loopback, 0);
        var raw = "From: a@sender.test\r\nTo: b@remote.test\r\nSubject: exact\r\nMIME-Version: 1.0\r\n" +
                  "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
                  "Grüße\r\n.leading dot\r\n..two dots\r\n.\r\nlast line\r\n";
        var bytes = Encoding.UTF8.GetBytes(raw);

        using (var client = await ConnectAsync(server))
        {
            Assert.True(client.Capabilities.HasFlag(SmtpCapabilities.Pipelining));
            Assert.False(client.Capabilities.HasFlag(SmtpCapabilities.StartTLS)); // no TlsCertificate, no STARTTLS
            Assert.Equal(52428800u, client.MaxSize);
            await client.SendAsync(MimeMessage.Load(new MemoryStream(bytes)), MailboxAddress.Parse("a@sender.test"),
                [MailboxAddress.Parse("b@remote.test"), MailboxAddress.Parse("c@remote.test")]);
            await client.DisconnectAsync(true);
        }

        var message = Assert.Single(server.Messages);
        Assert.Equal("a@sender.test", message.Sender);
        Assert.Equal(["b@remote.test", "c@remote.test"], message.Recipients);
        Assert.Equal(bytes, message.Data);
        Assert.Equal("8BITMIME", message.Parameter("body"));
        Assert.Null(message.Tls);
        Assert.Equal(1, message.ConnectionId);
        Assert.Equal(["EHLO relay.test", "MAIL", "RCPT", "RCPT", "DATA", "QUIT"], server.CommandsOn(1).Select(c => c.Split(' ')[0] == "EHLO" ? c : c.Split(' ')[0]));
        Assert.StartsWith("#1 MAIL FROM:<a@sender.test>", server.Commands[1]);
        Assert.Equal(1, server.Transactions);
        Assert.Equal(1, server.Connections);
        await Eventually.TrueAsync(() => server.CurrentConnections == 0, Wait);
        Assert.Empty(server.Errors);
    }

    [Fact]
    public async Task Should_record_only_accepted_recipients_when_one_is_rejected()
    {
        var behavior = new FakeSmtpBehavior { OnRcpt = r => r.StartsWith("nobody@", StringComparison.Ordinal) ? "550 5.1.1 no such user" : null };
        await using var server = FakeSmtpServer.Start(IPAddress.Loopback, 0, behavior);

        var client = new TolerantClient();
        using (await ConnectAsync(server, client))
        {
            await client.SendAsync(Message("a@sender.test", "b@remote.test", "nobody@remote.test", "c@remote.test"));
            await client.DisconnectAsync(true);
        }

        var (address, code, text) = Assert.Single(client.Rejected);
        Assert.Equal(("nobody@remote.test", 550, "5.1.1 no such user"), (address, code, text.Trim()));
        var message = Assert.Single(server.Messages);
        Assert.Equal(["b@remote.test", "c@remote.test"], message.Recipients);
        Assert.Contains("#1 RCPT TO:<nobody@remote.test>", server.Commands);
    }

    [Fact]
    public async Task Should_answer_451_to_the_first_transactions_then_accept()
    {
        await using var server = FakeSmtpServer.Start(IPAddress.Loopback, 0, new FakeSmtpBehavior { FailFirstNTransactions = 2 });

        using var client = await ConnectAsync(server);
        for (var i = 0; i < 2; i++)
        {
            var e = await Assert.ThrowsAsync<SmtpCommandException>(() => client.SendAsync(Message("a@sender.test", "b@remote.test")));
            Assert.Equal(SmtpErrorCode.MessageNotAccepted, e.ErrorCode);
            Assert.Equal(451, (int)e.StatusCode);
            Assert.Contains("try later", e.Message);
        }
        await client.SendAsync(Message("a@sender.test", "b@remote.test"));

        Assert.Single(server.Messages);
        Assert.Equal(3, server.Transactions);
    }

    [Fact]
    public async Task Should_let_OnDataEnd_see_the_message_and_reject_it()
    {
        var behavior = new FakeSmtpBehavior { OnDataEnd = m => m.Text.Contains("Subject: spam", StringComparison.Ordinal) ? "554 5.7.1 rejected as spam" : null };
        await using var server = FakeSmtpServer.Start(IPAddress.Loopback, 0, behavior);

        using var client = await ConnectAsync(server);
        var spam = Message("a@sender.test", "b@remote.test");
        spam.Subject = "spam";
        var e = await Assert.ThrowsAsync<SmtpCommandException>(() => client.SendAsync(spam));
        Assert.Equal(554, (int)e.StatusCode);
        await client.SendAsync(Message("a@sender.test", "b@remote.test"));

        Assert.Contains("Subject: fixture", Assert.Single(server.Messages).Text);
    }

    [Fact]
    public async Task Should_refuse_EHLO_so_the_client_falls_back_to_HELO_without_parameters()
    {
        await using var server = FakeSmtpServer.Start(IPAddress.Loopback, 0, new FakeSmtpBehavior { EhloRefused = true });

        using (var client = await ConnectAsync(server))
        {
            Assert.Equal(SmtpCapabilities.None, client.Capabilities);
            await client.SendAsync(Message("a@sender.test", "b@remote.test"));
            await client.DisconnectAsync(true);
        }
        Assert.Equal(["EHLO relay.test", "HELO relay.test", "MAIL FROM:<a@sender.test>"], server.CommandsOn(1).Take(3));
        Assert.Equal("", Assert.Single(server.Messages).MailParameters);

        // After HELO, ESMTP parameters are a protocol error (RFC 5321 4.1.1.11).
        await using var raw = await RawSmtpClient.ConnectAsync(server.Endpoint);
        await raw.ReadReplyAsync();
        Assert.Equal(502, (await raw.CommandAsync("EHLO relay.test")).Code);
        Assert.Equal(250, (await raw.CommandAsync("HELO relay.test")).Code);
        Assert.Equal(555, (await raw.CommandAsync("MAIL FROM:<a@sender.test> SIZE=10")).Code);
    }

    [Fact]
    public async Task Should_answer_a_pipelined_group_in_order_and_unstuff_dots_ending_only_at_CRLF_dot_CRLF()
    {
        var behavior = new FakeSmtpBehavior { OnRcpt = r => r == "x@remote.test" ? "550 5.1.1 no such user" : null };
        await using var server = FakeSmtpServer.Start(IPAddress.Loopback, 0, behavior);
        await using var client = await RawAsync(server);

        await client.SendAsync("MAIL FROM:<> SIZE=100 BODY=8BITMIME\r\nRCPT TO:<b@remote.test>\r\nRCPT TO:<x@remote.test>\r\nRCPT TO:<c@remote.test>\r\nDATA\r\n");
        int[] codes = [(await client.ReadReplyAsync()).Code, (await client.ReadReplyAsync()).Code, (await client.ReadReplyAsync()).Code,
            (await client.ReadReplyAsync()).Code, (await client.ReadReplyAsync()).Code];
        Assert.Equal([250, 250, 550, 250, 354], codes);

        // "\n.\n" and "\r.\n" are not the end; a leading dot is removed once; bare LF and CR are kept.
        var content = "Subject: dots\r\n\r\n..one\r\n...two\r\n.\tdot tab\r\nbare\n.\nNOOP\r\ncr\r.\r\nend\r\n";
        await client.SendAsync(content + ".\r\nQUIT\r\n");
        var end = await client.ReadReplyAsync();
        var quit = await client.ReadReplyAsync();

        Assert.Equal(250, end.Code);
        Assert.Equal(221, quit.Code); // so "NOOP" inside the content was not taken as a command
        var message = Assert.Single(server.Messages);
        var expected = "Subject: dots\r\n\r\n.one\r\n..two\r\n\tdot tab\r\nbare\n.\nNOOP\r\ncr\r.\r\nend\r\n";
        Assert.Equal(Encoding.UTF8.GetBytes(expected), message.Data);
        Assert.Equal("", message.Sender);
        Assert.Equal(["b@remote.test", "c@remote.test"], message.Recipients);
        Assert.Equal("SIZE=100 BODY=8BITMIME", message.MailParameters);
        Assert.Equal("100", message.Parameter("SIZE"));
        Assert.Null(message.Parameter("SMTPUTF8"));
    }

    [Fact]
    public async Task Should_drop_the_connection_during_DATA_and_keep_nothing()
    {
        await using var server = FakeSmtpServer.Start(IPAddress.Loopback, 0, new FakeSmtpBehavior { DropConnectionDuringData = true });

        using var client = await ConnectAsync(server);
        var big = Message("a@sender.test", "b@remote.test");
        big.Body = new TextPart("plain") { Text = string.Concat(Enumerable.Repeat("0123456789012345678901234567890123456789\r\n", 20_000)) };
        var e = await Record.ExceptionAsync(() => client.SendAsync(big));

        Assert.NotNull(e);
        Assert.IsNotType<SmtpCommandException>(e); // no reply at all, the connection just went away
        Assert.False(client.IsConnected);
        Assert.Empty(server.Messages);
        Assert.Equal("DATA", server.CommandsOn(1)[^1]);
        await Eventually.TrueAsync(() => server.CurrentConnections == 0, Wait);
    }

    [Fact]
    public async Task Should_close_right_after_the_reply_at_the_end_of_DATA_when_asked_without_a_421()
    {
        var behavior = new FakeSmtpBehavior { CloseAfterDataEnd = m => m.Recipients.Contains("last@remote.test") };
        await using var server = FakeSmtpServer.Start(IPAddress.Loopback, 0, behavior);
        await using var client = await RawAsync(server);

        foreach (var rcpt in new[] { "b@remote.test", "last@remote.test" })
        {
            Assert.Equal(250, (await client.CommandAsync("MAIL FROM:<a@sender.test>")).Code);
            Assert.Equal(250, (await client.CommandAsync($"RCPT TO:<{rcpt}>")).Code);
            Assert.Equal(354, (await client.CommandAsync("DATA")).Code);
            Assert.Equal(250, (await client.CommandAsync("Subject: x\r\n\r\nhello\r\n.")).Code);
        }

        Assert.True(await client.IsClosedAsync(Wait)); // the 250, then FIN: no 421 in between
        Assert.Equal(2, server.Messages.Count);
        Assert.Equal(1, server.Connections);
        Assert.Empty(server.Errors);
    }

    [Fact]
    public async Task Should_count_connections_total_current_and_peak()
    {
        await using var server = FakeSmtpServer.Start(IPAddress.Loopback, 0);

        var clients = new List<RawSmtpClient>();
        for (var i = 0; i < 3; i++) clients.Add(await RawAsync(server));
        await Eventually.TrueAsync(() => server.CurrentConnections == 3, Wait, () => $"current {server.CurrentConnections}");
        Assert.Equal(3, server.MaxConcurrentConnections);

        await clients[0].DisposeAsync();
        Assert.Equal(221, (await clients[1].CommandAsync("QUIT")).Code);
        await Eventually.TrueAsync(() => server.CurrentConnections == 1, Wait, () => $"current {server.CurrentConnections}");
        await using (await RawAsync(server))
        {
            await Eventually.TrueAsync(() => server.CurrentConnections == 2, Wait);
        }
        await clients[2].DisposeAsync();
        await clients[1].DisposeAsync();

        await Eventually.TrueAsync(() => server.CurrentConnections == 0, Wait, () => $"current {server.CurrentConnections}");
        Assert.Equal(4, server.Connections);
        Assert.Equal(3, server.MaxConcurrentConnections);
        Assert.Equal(4, server.Commands.Count(c => c.EndsWith(" EHLO relay.test", StringComparison.Ordinal)));
        Assert.Contains("#4 EHLO relay.test", server.Commands);
    }

    [Fact]
    public async Task Should_stall_at_the_chosen_stage_forever_or_for_a_while()
    {
        var behavior = new FakeSmtpBehavior { StallAt = StallAt.Rcpt };
        await using var server = FakeSmtpServer.Start(IPAddress.Loopback, 0, behavior);

        await using (var client = await RawAsync(server))
        {
            await client.SendAsync("MAIL FROM:<a@sender.test>\r\nRCPT TO:<b@remote.test>\r\n");
            Assert.Equal(250, (await client.ReadReplyAsync()).Code); // replies already due are still sent
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.ReadReplyAsync(TimeSpan.FromMilliseconds(300)));
        }
        await Eventually.TrueAsync(() => server.CurrentConnections == 0, Wait); // the stalled session notices the client leaving

        // With a delay the reply comes, late.
        behavior.StallAt = StallAt.Mail;
        behavior.StallBeforeReply = TimeSpan.FromMilliseconds(300);
        await using (var client = await RawAsync(server))
        {
            var clock = Stopwatch.StartNew();
            Assert.Equal(250, (await client.CommandAsync("MAIL FROM:<a@sender.test>")).Code);
            Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(250), $"answered after {clock.Elapsed}");
        }

        // A stalled banner: the client gets nothing at all.
        behavior.StallAt = StallAt.Banner;
        behavior.StallBeforeReply = null;
        await using (var client = await RawSmtpClient.ConnectAsync(server.Endpoint))
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.ReadReplyAsync(TimeSpan.FromMilliseconds(300)));
        }
        Assert.Empty(server.Errors);
    }

    [Fact]
    public async Task Should_listen_on_the_same_port_at_several_loopback_addresses()
    {
        var (a, b) = (LoopbackPorts.Address(2), LoopbackPorts.Address(3));
        var port = LoopbackPorts.FindPortFreeOn(a, b);
        await using var first = FakeSmtpServer.Start(a, port, new FakeSmtpBehavior { Banner = "220 mx1.remote.test ESMTP" });
        await using var second = FakeSmtpServer.Start(b, port, new FakeSmtpBehavior { Banner = "220 mx2.remote.test ESMTP" });

        await using var c1 = await RawSmtpClient.ConnectAsync(new IPEndPoint(a, port));
        await using var c2 = await RawSmtpClient.ConnectAsync(new IPEndPoint(b, port));

        Assert.Equal(new IPEndPoint(a, port), first.Endpoint);
        Assert.Equal("220 mx1.remote.test ESMTP", (await c1.ReadReplyAsync()).Lines[0]);
        Assert.Equal("220 mx2.remote.test ESMTP", (await c2.ReadReplyAsync()).Lines[0]);
        Assert.Equal(1, first.Connections);
        Assert.Equal(1, second.Connections);
        Assert.NotEqual(port, LoopbackPorts.FindPortFreeOn(a, b)); // never handed out twice
    }

    [Fact]
    public async Task Should_enforce_command_order_and_advertised_parameters()
    {
        var behavior = new FakeSmtpBehavior
        {
            Extensions = ["PIPELINING", "SIZE 1000", "ENHANCEDSTATUSCODES"],
            OnMail = s => s == "blocked@sender.test" ? "550 5.7.1 go away\n550 5.7.1 and stay away" : null,
        };
        await using var server = FakeSmtpServer.Start(IPAddress.Loopback, 0, behavior);
        await using var client = await RawSmtpClient.ConnectAsync(server.Endpoint);
        await client.ReadReplyAsync();

        Assert.Equal(503, (await client.CommandAsync("MAIL FROM:<a@sender.test>")).Code);
        var ehlo = await client.CommandAsync("EHLO relay.test");
        Assert.Equal(["250-fake.test greets relay.test", "250-PIPELINING", "250-SIZE 1000", "250 ENHANCEDSTATUSCODES"], ehlo.Lines);
        Assert.Equal(503, (await client.CommandAsync("RCPT TO:<b@remote.test>")).Code);
        Assert.Equal(555, (await client.CommandAsync("MAIL FROM:<a@sender.test> BODY=8BITMIME")).Code); // 8BITMIME not advertised
        Assert.Equal(552, (await client.CommandAsync("MAIL FROM:<a@sender.test> SIZE=1001")).Code);
        Assert.Equal(553, (await client.CommandAsync("MAIL FROM:<grüße@sender.test>")).Code); // SMTPUTF8 not advertised
        var blocked = await client.CommandAsync("MAIL FROM:<blocked@sender.test>");
        Assert.Equal(["550-5.7.1 go away", "550 5.7.1 and stay away"], blocked.Lines);
        Assert.Equal(250, (await client.CommandAsync("MAIL FROM:<a@sender.test>")).Code);
        Assert.Equal(503, (await client.CommandAsync("MAIL FROM:<a@sender.test>")).Code);
        Assert.Equal(501, (await client.CommandAsync("RCPT TO:b@remote.test")).Code);
        Assert.Equal(554, (await client.CommandAsync("DATA")).Code);
        Assert.Equal(250, (await client.CommandAsync("RSET")).Code);
        Assert.Equal(503, (await client.CommandAsync("DATA")).Code);
        Assert.Equal(250, (await client.CommandAsync("NOOP")).Code);
        Assert.Equal(500, (await client.CommandAsync("STARTTLS")).Code);
        Assert.Equal(221, (await client.CommandAsync("QUIT")).Code);
        Assert.True(await client.IsClosedAsync(Wait));

        Assert.Equal(7, server.Transactions); // every MAIL command, refused ones included
        Assert.Empty(server.Messages);
    }

    [Fact]
    public async Task Should_close_after_a_421_and_refuse_service_after_a_554_banner()
    {
        var behavior = new FakeSmtpBehavior { OnMail = _ => "421 4.7.0 too busy, closing" };
        await using var server = FakeSmtpServer.Start(IPAddress.Loopback, 0, behavior);

        await using (var client = await RawAsync(server))
        {
            Assert.Equal(421, (await client.CommandAsync("MAIL FROM:<a@sender.test>")).Code);
            Assert.True(await client.IsClosedAsync(Wait));
        }

        behavior.Banner = "554 5.3.2 no service for you";
        await using (var client = await RawSmtpClient.ConnectAsync(server.Endpoint))
        {
            Assert.Equal(554, (await client.ReadReplyAsync()).Code);
            Assert.Equal(503, (await client.CommandAsync("EHLO relay.test")).Code);
            Assert.Equal(221, (await client.CommandAsync("QUIT")).Code);
        }
        Assert.Empty(server.Errors);
    }

    [Fact]
    public async Task Should_answer_an_overlong_command_line_with_500_and_hang_up()
    {
        await using var server = FakeSmtpServer.Start(IPAddress.Loopback, 0);
        await using var client = await RawAsync(server);

        await client.SendAsync("NOOP " + new string('x', 70_000) + "\r\n");

        Assert.Equal("500 5.5.6 line too long", (await client.ReadReplyAsync()).Lines[0]);
        Assert.True(await client.IsClosedAsync(Wait));
        Assert.Empty(server.Errors);
    }

    /// <summary>MailKit throws on the first rejected recipient by default; a relay carries on with the rest.</summary>
    private sealed class TolerantClient : SmtpClient
    {
        public List<(string Address, int Code, string Text)> Rejected { get; } = [];

        protected override void OnRecipientNotAccepted(MimeMessage message, MailboxAddress mailbox, SmtpResponse response) =>
            Rejected.Add((mailbox.Address, (int)response.StatusCode, response.Response));
    }
}
