using System.Text;
using MimeKit;
using RelayMta.IntegrationTests.Infrastructure;

namespace RelayMta.IntegrationTests;

/// <summary>
/// The outbound relay against real things on loopback: a DNS server serving MX/A/null-MX records
/// and scripted SMTP servers as the remote MX hosts.
/// </summary>
public sealed class RelaySpecs
{
    [Fact]
    public async Task Should_deliver_to_the_most_preferred_MX_with_the_message_byte_exact()
    {
        await using var bed = await OutboundBed.StartAsync();
        var primary = bed.Mx(2);
        var backup = bed.Mx(3);
        bed.Route("dest.test", (20, 3), (10, 2));

        // the raw client stuffs its own dot; the relay stores ".leading dot" and must stuff it again on the way out
        var id = await bed.SendAsync("alice@example.test", ["bob@dest.test"], "to the primary", "line one\r\n..leading dot\r\n");

        var message = Assert.Single(await primary.WaitForMessagesAsync());
        Assert.Equal("alice@example.test", message.Sender);
        Assert.Equal(["bob@dest.test"], message.Recipients);
        var text = message.Text;
        Assert.StartsWith("Received: from client.test ([127.0.0.1])\r\n\tby mx.test (RelayMta) with ESMTP id " + id, text);
        Assert.EndsWith("From: <alice@example.test>\r\nSubject: to the primary\r\n\r\nline one\r\n.leading dot\r\n", text);
        Assert.Empty(backup.Messages);
        Assert.True(await bed.SpoolEmptiesAsync(TimeSpan.FromSeconds(10)));
        // PIPELINING was offered, so MAIL, RCPT and DATA went in one write; SIZE was given.
        Assert.Contains(primary.Commands, c => c.Contains("MAIL FROM:<alice@example.test> SIZE=", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Should_fail_over_to_the_next_MX_when_the_first_refuses_connections_or_says_421()
    {
        await using var bed = await OutboundBed.StartAsync();
        // 127.0.0.2 has nothing listening; 127.0.0.3 answers 421; 127.0.0.4 takes the mail.
        var busy = bed.Mx(3, new FakeSmtpBehavior { Banner = "421 4.3.2 too busy" });
        var good = bed.Mx(4);
        bed.Route("dest.test", (10, 2), (20, 3), (30, 4));

        await bed.SendAsync("alice@example.test", ["bob@dest.test"], "failover");

        Assert.Single(await good.WaitForMessagesAsync());
        Assert.Empty(busy.Messages);
        Assert.True(busy.Connections >= 1);
    }

    [Fact]
    public async Task Should_reach_an_MX_host_that_has_only_an_IPv6_address()
    {
        await using var bed = await OutboundBed.StartAsync();
        await using var v6 = FakeSmtpServer.Start(System.Net.IPAddress.IPv6Loopback, bed.Port);
        bed.Dns.AddMx("six.test", 10, "mx.six.test");
        bed.Dns.AddAaaa("mx.six.test", System.Net.IPAddress.IPv6Loopback);

        await bed.SendAsync("alice@example.test", ["bob@six.test"], "over IPv6");

        Assert.Equal(["bob@six.test"], Assert.Single(await v6.WaitForMessagesAsync()).Recipients);
    }

    [Fact]
    public async Task Should_use_the_domain_itself_when_it_has_no_MX()
    {
        await using var bed = await OutboundBed.StartAsync();
        var host = bed.Mx(5);
        bed.Dns.AddA("plain.test", LoopbackPorts.Address(5)); // no MX: implicit MX (RFC 5321 5.1)

        await bed.SendAsync("alice@example.test", ["bob@plain.test"], "implicit");

        Assert.Equal(["bob@plain.test"], Assert.Single(await host.WaitForMessagesAsync()).Recipients);
    }

    [Fact]
    public async Task Should_bounce_at_once_for_a_null_MX_with_5_1_10()
    {
        await using var bed = await OutboundBed.StartAsync();
        bed.Dns.AddNullMx("nomail.test");

        await bed.SendAsync("alice@example.test", ["bob@nomail.test"], "null mx");

        var dsn = await bed.WaitForBounceAsync("alice");
        var group = Assert.Single(OutboundBed.RecipientGroups(dsn));
        Assert.Equal("rfc822; bob@nomail.test", group["Final-Recipient"]);
        Assert.Equal("5.1.10", group["Status"]);
        Assert.True(await bed.SpoolEmptiesAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Should_bounce_a_domain_that_does_not_exist_with_5_1_2()
    {
        await using var bed = await OutboundBed.StartAsync();
        bed.Dns.SetNxDomain("gone.test");

        await bed.SendAsync("alice@example.test", ["bob@gone.test"], "nxdomain");

        var group = Assert.Single(OutboundBed.RecipientGroups(await bed.WaitForBounceAsync("alice")));
        Assert.Equal("5.1.2", group["Status"]);
    }

    [Fact]
    public async Task Should_retry_after_a_4xx_and_deliver_exactly_once()
    {
        await using var bed = await OutboundBed.StartAsync();
        var mx = bed.Mx(2, new FakeSmtpBehavior { FailFirstNTransactions = 1 });
        bed.Route("dest.test", (10, 2));

        await bed.SendAsync("alice@example.test", ["bob@dest.test"], "try again");

        Assert.Single(await mx.WaitForMessagesAsync());
        Assert.True(await bed.SpoolEmptiesAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(2, mx.Transactions);
        Assert.Single(mx.Messages);
        Assert.Empty(bed.Relay.Delivered("alice")); // no bounce
    }

    [Fact]
    public async Task Should_send_a_DSN_that_MimeKit_reads_as_multipart_report_when_the_remote_says_5xx()
    {
        await using var bed = await OutboundBed.StartAsync();
        bed.Mx(2, new FakeSmtpBehavior { OnRcpt = r => r.StartsWith("nobody@", StringComparison.Ordinal) ? "550 5.1.1 <nobody@dest.test>: no such user" : null });
        bed.Route("dest.test", (10, 2));

        await bed.SendAsync("alice@example.test", ["nobody@dest.test"], "to nobody");

        var dsn = await bed.WaitForBounceAsync("alice");
        Assert.Equal("MAILER-DAEMON@mx.test", dsn.From.Mailboxes.Single().Address);
        var report = Assert.IsType<MultipartReport>(dsn.Body);
        Assert.Equal("delivery-status", report.ReportType);
        var group = Assert.Single(OutboundBed.RecipientGroups(dsn));
        Assert.Equal("rfc822; nobody@dest.test", group["Final-Recipient"]);
        Assert.Equal("failed", group["Action"]);
        Assert.Equal("5.1.1", group["Status"]);
        Assert.Contains("550 5.1.1", group["Diagnostic-Code"]);
        Assert.Contains("mx2.dest.test", group["Remote-MTA"]);
        // the original headers come back, the body does not
        Assert.Equal("to nobody", report.OfType<TextRfc822Headers>().Single().Message!.Subject);
        // the bounce itself came from the null sender
        Assert.Contains("Return-Path: <>", File.ReadAllText(bed.Relay.Delivered("alice").Single()));
    }

    [Fact]
    public async Task Should_bounce_with_5_4_7_once_the_queue_lifetime_is_over()
    {
        await using var bed = await OutboundBed.StartAsync("relay-mta.outbound.max-queue-lifetime = 3s");
        var mx = bed.Mx(2, new FakeSmtpBehavior { OnRcpt = _ => "451 4.3.0 come back later" });
        bed.Route("dest.test", (10, 2));

        await bed.SendAsync("alice@example.test", ["bob@dest.test"], "never");

        var group = Assert.Single(OutboundBed.RecipientGroups(await bed.WaitForBounceAsync("alice")));
        Assert.Equal("5.4.7", group["Status"]);
        Assert.Contains("451 4.3.0", group["Diagnostic-Code"]);
        Assert.True(mx.Transactions >= 2);
    }

    [Fact]
    public async Task Should_never_bounce_a_message_from_the_null_sender()
    {
        await using var bed = await OutboundBed.StartAsync();
        var mx = bed.Mx(2, new FakeSmtpBehavior { OnRcpt = _ => "550 5.1.1 no such user" });
        bed.Route("dest.test", (10, 2));

        await bed.SendAsync("", ["bob@dest.test"], "a bounce that bounces");

        await Eventually.TrueAsync(() => mx.Transactions >= 1, TimeSpan.FromSeconds(10));
        Assert.True(await bed.SpoolEmptiesAsync(TimeSpan.FromSeconds(10)));
        Assert.Empty(Directory.Exists(bed.Relay.MailRoot) ? Directory.GetFiles(bed.Relay.MailRoot, "*", SearchOption.AllDirectories) : []);
    }

    [Fact]
    public async Task Should_split_a_message_per_destination_one_transaction_each()
    {
        await using var bed = await OutboundBed.StartAsync();
        var a = bed.Mx(2);
        var b = bed.Mx(3);
        bed.Route("a.test", (10, 2));
        bed.Route("b.test", (10, 3));

        await bed.SendAsync("alice@example.test", ["one@a.test", "two@b.test", "three@a.test", "carol@example.test"], "split");

        Assert.Equal(["one@a.test", "three@a.test"], Assert.Single(await a.WaitForMessagesAsync()).Recipients);
        Assert.Equal(["two@b.test"], Assert.Single(await b.WaitForMessagesAsync()).Recipients);
        await bed.Relay.WaitForDeliveryAsync("carol");
        Assert.Equal(1, a.Transactions);
        Assert.True(await bed.SpoolEmptiesAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Should_keep_per_recipient_results_when_some_fail_some_defer_and_some_succeed()
    {
        await using var bed = await OutboundBed.StartAsync();
        var deferredOnce = 0;
        var mx = bed.Mx(2, new FakeSmtpBehavior
        {
            OnRcpt = r => r switch
            {
                "bad@dest.test" => "550 5.1.1 no such user",
                "later@dest.test" when Interlocked.Increment(ref deferredOnce) == 1 => "450 4.2.1 mailbox busy",
                _ => null,
            },
        });
        bed.Route("dest.test", (10, 2));

        await bed.SendAsync("alice@example.test", ["good@dest.test", "bad@dest.test", "later@dest.test"], "mixed");

        var messages = await mx.WaitForMessagesAsync(2);
        Assert.Equal(["good@dest.test"], messages[0].Recipients);
        Assert.Equal(["later@dest.test"], messages[1].Recipients);
        var group = Assert.Single(OutboundBed.RecipientGroups(await bed.WaitForBounceAsync("alice")));
        Assert.Equal("rfc822; bad@dest.test", group["Final-Recipient"]);
        Assert.True(await bed.SpoolEmptiesAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal(2, mx.Messages.Count);
    }

    [Fact]
    public async Task Should_send_everything_to_the_smarthost_without_looking_up_MX()
    {
        await using var bed = await OutboundBed.StartAsync();
        var smarthost = bed.Mx(9);
        await bed.Relay.DisposeAsync();
        await bed.StartRelayAsync($"relay-mta.relay.smarthost = \"127.0.0.9:{bed.Port}\"");

        await bed.SendAsync("alice@example.test", ["bob@far.test", "carol@other.test"], "via smarthost");

        var message = Assert.Single(await smarthost.WaitForMessagesAsync());
        Assert.Equal(["bob@far.test", "carol@other.test"], message.Recipients);
        Assert.Equal(0, bed.Dns.Queries("far.test"));
        Assert.Equal(0, bed.Dns.Queries("other.test"));
    }

    [Fact]
    public async Task Should_deliver_once_when_restarted_in_the_middle_of_the_retry_schedule()
    {
        using var dir = new TempDirectory();
        await using var bed = await OutboundBed.StartAsync("relay-mta.outbound.retry-intervals = [4s]", dir);
        var mx = bed.Mx(2, new FakeSmtpBehavior { FailFirstNTransactions = 1 });
        bed.Route("dest.test", (10, 2));

        var id = await bed.SendAsync("alice@example.test", ["bob@dest.test", "carol@example.test"], "across a restart");
        await Eventually.TrueAsync(() => mx.Transactions == 1, TimeSpan.FromSeconds(10));
        await bed.Relay.WaitForDeliveryAsync("carol");
        await Eventually.TrueAsync(() => bed.Relay.Runtime.Spool.Find(new(id))?.State.NextAttemptAt is not null, TimeSpan.FromSeconds(10));

        await bed.Relay.StopAsync();
        await bed.StartRelayAsync("relay-mta.outbound.retry-intervals = [4s]", dir);

        Assert.Single(await mx.WaitForMessagesAsync());
        Assert.True(await bed.SpoolEmptiesAsync(TimeSpan.FromSeconds(15)));
        Assert.Single(mx.Messages);
        Assert.Single(bed.Relay.Delivered("carol")); // the local copy was not delivered again
    }

    [Fact]
    public async Task Should_retry_after_the_connection_drops_mid_DATA()
    {
        await using var bed = await OutboundBed.StartAsync();
        var mx = bed.Mx(2, new FakeSmtpBehavior { DropConnectionDuringData = true });
        bed.Route("dest.test", (10, 2));

        await bed.SendAsync("alice@example.test", ["bob@dest.test"], "dropped", new string('x', 200) + "\r\n");
        await Eventually.TrueAsync(() => mx.Transactions >= 1, TimeSpan.FromSeconds(10));
        mx.Behavior.DropConnectionDuringData = false;

        Assert.Single(await mx.WaitForMessagesAsync());
        Assert.True(await bed.SpoolEmptiesAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Should_time_out_a_stalled_server_and_deliver_on_retry()
    {
        await using var bed = await OutboundBed.StartAsync("relay-mta.outbound.timeouts.data-done = 1s");
        var mx = bed.Mx(2, new FakeSmtpBehavior { StallAt = StallAt.DataEnd });
        bed.Route("dest.test", (10, 2));

        await bed.SendAsync("alice@example.test", ["bob@dest.test"], "stalled");
        // The first attempt stalls at the end of DATA until our 1 s time-out gives up; the retry is a new transaction.
        await Eventually.TrueAsync(() => mx.Transactions >= 2, TimeSpan.FromSeconds(15));
        mx.Behavior.StallAt = StallAt.None;

        await mx.WaitForMessagesAsync(1, TimeSpan.FromSeconds(20));
        Assert.True(await bed.SpoolEmptiesAsync(TimeSpan.FromSeconds(15)));
    }

    [Fact]
    public async Task Should_fall_back_to_HELO_and_downgrade_8bit_content_for_an_old_server()
    {
        await using var bed = await OutboundBed.StartAsync();
        var mx = bed.Mx(2, new FakeSmtpBehavior { EhloRefused = true });
        bed.Route("dest.test", (10, 2));

        await bed.SendAsync("alice@example.test", ["bob@dest.test"], "8bit", "Grüße aus Köln\r\n",
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n", " BODY=8BITMIME");

        var message = Assert.Single(await mx.WaitForMessagesAsync());
        Assert.Contains(mx.Commands, c => c.Contains("HELO mx.test", StringComparison.Ordinal));
        Assert.DoesNotContain(mx.Commands, c => c.Contains("BODY=8BITMIME", StringComparison.Ordinal));
        Assert.True(message.Data.All(b => b < 0x80), "the content sent to a server without 8BITMIME must be 7-bit");
        var parsed = MimeMessage.Load(new MemoryStream(message.Data));
        Assert.Equal("Grüße aus Köln", parsed.TextBody!.Trim());
    }

    [Fact]
    public async Task Should_bounce_5_6_7_when_the_message_needs_SMTPUTF8_and_the_server_lacks_it()
    {
        await using var bed = await OutboundBed.StartAsync();
        bed.Mx(2, new FakeSmtpBehavior { Extensions = ["PIPELINING", "8BITMIME"] });
        bed.Route("dest.test", (10, 2));

        await bed.SendAsync("alice@example.test", ["jörg@dest.test"], "utf8", mailParameters: " SMTPUTF8");

        var group = Assert.Single(OutboundBed.RecipientGroups(await bed.WaitForBounceAsync("alice")));
        Assert.Equal("5.6.7", group["Status"]);
    }

    [Fact]
    public async Task Should_reuse_the_connection_for_the_next_message()
    {
        await using var bed = await OutboundBed.StartAsync("relay-mta.outbound.connection-idle-timeout = 5s");
        var mx = bed.Mx(2);
        bed.Route("dest.test", (10, 2));

        await bed.SendAsync("alice@example.test", ["bob@dest.test"], "first");
        await mx.WaitForMessagesAsync(1);
        await bed.SendAsync("alice@example.test", ["carol@dest.test"], "second");
        await mx.WaitForMessagesAsync(2);

        // Whether an RSET goes first depends on how long the connection sat idle: ConnectionReuseSpecs.
        Assert.Equal(1, mx.Connections);
        Assert.Equal(2, mx.CommandsOn(1).Count(c => c.StartsWith("MAIL FROM:", StringComparison.Ordinal)));
    }
}
