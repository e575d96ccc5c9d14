using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using ARSoft.Tools.Net.Dns;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;
using RelayMta.Engine.Inbound;
using RelayMta.IntegrationTests.Infrastructure;

namespace RelayMta.IntegrationTests;

/// <summary>
/// The Prometheus text at the admin listener's <c>/metrics</c> against real traffic over loopback:
/// SMTP clients (raw sockets and MailKit), fake MX hosts and the in-test DNS server. Every test starts
/// its own relay (each has its own registry, which the first test checks), so counts are exact.
/// Counters that are bumped before the SMTP reply is written are read at once; everything that
/// happens after the reply (deliveries, gauges on their 1 s tick, sessions ending) is polled with a deadline.
/// </summary>
public sealed class MetricsSpecs : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    private readonly TempDirectory _dir = new();
    private readonly TestCa _ca = TestCa.Create();

    public void Dispose()
    {
        _ca.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public async Task Should_count_sessions_and_refusals_per_relay_and_return_sessions_open_to_zero()
    {
        // Loopback is not allowed to relay here, so the per-address limits apply to it: 3 at once, 4 a minute.
        await using var relay = await TestRelay.StartAsync("""
            relay-mta {
              admin.listen = "127.0.0.1:0"
              relay.allowed-networks = []
              limits { greet-delay = 0s, max-sessions-per-ip = 3, connections-per-ip-per-minute = 4 }
            }
            """);
        // Loopback may relay here (exempt from the per-address limits), but there is room for one session only.
        await using var other = await TestRelay.StartAsync("""
            relay-mta {
              admin.listen = "127.0.0.1:0"
              limits.max-sessions = 1
            }
            """);
        using var admin = AdminClient.For(relay);
        using var otherAdmin = AdminClient.For(other);
        Assert.NotSame(relay.Runtime.Metrics.Registry, other.Runtime.Metrics.Registry);

        var before = await ScrapeAsync(admin);
        AssertFamilies(before);
        Assert.Equal(0, before.Value("relaymta_sessions_total"));
        Assert.Equal(0, before.Value("relaymta_sessions_open"));

        var clients = new List<RawSmtpClient>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                var client = await RawSmtpClient.ConnectAsync(relay.Endpoint);
                clients.Add(client);
                Assert.Equal(220, (await client.ReadReplyAsync()).Code);
            }
            // The session is counted before its banner is written.
            var three = await ScrapeAsync(admin);
            Assert.Equal(3, three.Value("relaymta_sessions_total"));
            Assert.Equal(3, three.Value("relaymta_sessions_open"));

            // A fourth connection from the address is refused at connect: no session, one refusal.
            await RefusedAsync(relay.Endpoint);
            var refused = await ScrapeAsync(admin);
            Assert.Equal(new Dictionary<string, double> { ["max-sessions-per-ip"] = 1 }, refused.ByLabel("relaymta_connections_refused_total", "reason"));
            Assert.Equal(3, refused.Value("relaymta_sessions_total"));
            Assert.Equal(3, refused.Value("relaymta_sessions_open"));

            // Two say QUIT, one just hangs up.
            Assert.Equal(221, (await clients[0].CommandAsync("QUIT")).Code);
            Assert.Equal(221, (await clients[1].CommandAsync("QUIT")).Code);
            await clients[2].DisposeAsync();
            var closed = await ScrapeUntilAsync(admin, s => s.Value("relaymta_sessions_open") == 0, "sessions_open back to 0");
            Assert.Equal(3, closed.Value("relaymta_sessions_total"));
        }
        finally
        {
            foreach (var c in clients) await c.DisposeAsync();
        }

        // A real client with a message (the address's 4th connection this minute): one more session, one
        // accepted message, and it ends too.
        using (var mailKit = new SmtpClient())
        {
            await mailKit.ConnectAsync(relay.Endpoint.Address.ToString(), relay.Endpoint.Port, SecureSocketOptions.None);
            await mailKit.SendAsync(Message("alice@sender.test", ["bob@example.test"], "sessions"));
            await mailKit.DisconnectAsync(true);
        }
        var after = await ScrapeUntilAsync(admin, s => s.Value("relaymta_sessions_open") == 0, "sessions_open back to 0 after MailKit");
        Assert.Equal(4, after.Value("relaymta_sessions_total"));
        Assert.Equal(1, after.Value("relaymta_messages_accepted_total"));

        // A 5th connection in the minute is refused for the rate, with no session open.
        await RefusedAsync(relay.Endpoint);
        var rate = await ScrapeAsync(admin);
        Assert.Equal(new Dictionary<string, double> { ["max-sessions-per-ip"] = 1, ["connection-rate"] = 1 },
            rate.ByLabel("relaymta_connections_refused_total", "reason"));
        Assert.Equal(4, rate.Value("relaymta_sessions_total"));

        // The other relay saw none of it; its own traffic stays in its own registry.
        var untouched = await ScrapeAsync(otherAdmin);
        Assert.Equal(0, untouched.Value("relaymta_sessions_total"));
        Assert.Equal(0, untouched.Value("relaymta_messages_accepted_total"));
        Assert.Empty(untouched.Samples("relaymta_connections_refused_total"));
        await using (var client = await RawSmtpClient.ConnectAsync(other.Endpoint))
        {
            Assert.Equal(220, (await client.ReadReplyAsync()).Code);
            await RefusedAsync(other.Endpoint); // the relay-wide limit applies to loopback too
            Assert.Equal(221, (await client.CommandAsync("QUIT")).Code);
        }
        var otherAfter = await ScrapeUntilAsync(otherAdmin, s => s.Value("relaymta_sessions_open") == 0, "the other relay's session to end");
        Assert.Equal(1, otherAfter.Value("relaymta_sessions_total"));
        Assert.Equal(new Dictionary<string, double> { ["max-sessions"] = 1 }, otherAfter.ByLabel("relaymta_connections_refused_total", "reason"));
        var mine = await ScrapeAsync(admin);
        Assert.Equal(4, mine.Value("relaymta_sessions_total"));
        Assert.Equal(2, mine.Samples("relaymta_connections_refused_total").Count);
    }

    [Fact]
    public async Task Should_count_accepted_messages_and_every_rejection_reason()
    {
        // Not allowed to relay (relay-denied), only existing mailboxes (user-unknown), small limits, and a
        // message rate that the transactions below use up exactly.
        const int mailCommandsBeforeRateLimit = 8;
        using var dir = new TempDirectory();
        Directory.CreateDirectory(dir.Combine("mail", "example.test", "bob"));
        await using var relay = await TestRelay.StartAsync($$"""
            relay-mta {
              admin.listen = "127.0.0.1:0"
              relay.allowed-networks = []
              local.recipients = existing
              limits {
                greet-delay = 200ms
                max-message-size = 8192
                max-header-size = 1024
                max-line-length = 1000
                max-received-headers = 2
                max-recipients = 1
                messages-per-ip-per-minute = {{mailCommandsBeforeRateLimit}}
              }
            }
            """, dir);
        using var admin = AdminClient.For(relay);

        await using (var client = await RawSmtpClient.ConnectAsync(relay.Endpoint))
        {
            Assert.Equal(220, (await client.ReadReplyAsync()).Code);
            Assert.Equal(250, (await client.CommandAsync("EHLO client.test")).Code);

            // RFC 1870: a declared size over the limit is refused at MAIL (and not counted against the rate).
            Assert.Equal(552, (await client.CommandAsync("MAIL FROM:<a@remote.test> SIZE=100000")).Code);

            // MAIL 1: three refused recipients, one good, and the message is accepted.
            Assert.Equal(250, (await client.CommandAsync("MAIL FROM:<a@remote.test>")).Code);
            Assert.Equal(554, (await client.CommandAsync("RCPT TO:<x@elsewhere.test>")).Code);
            Assert.Equal(550, (await client.CommandAsync("RCPT TO:<nobody@example.test>")).Code);
            Assert.Equal(553, (await client.CommandAsync("RCPT TO:<a/b@example.test>")).Code);
            Assert.Equal(553, (await client.CommandAsync("RCPT TO:<jörg@example.test>")).Code); // 8-bit without SMTPUTF8
            Assert.Equal(250, (await client.CommandAsync("RCPT TO:<bob@example.test>")).Code);
            Assert.Equal(452, (await client.CommandAsync("RCPT TO:<bob2@example.test>")).Code); // over max-recipients
            Assert.Equal(250, (await DataAsync(client, "From: <a@remote.test>\r\nSubject: first\r\n\r\nhello\r\n")).Code);

            var big = string.Concat(Enumerable.Repeat(new string('b', 98) + "\r\n", 110)); // 11,000 bytes
            var padding = string.Concat(Enumerable.Range(0, 30).Select(i => $"X-Pad-{i:00}: {new string('p', 50)}\r\n")); // ~1,900 bytes
            var loop = string.Concat(Enumerable.Range(0, 3).Select(i => $"Received: from hop{i}.test by hop{i + 1}.test; Mon, 1 Jan 2024 00:00:0{i} +0000\r\n"));
            var refusals = new (string Content, int Code)[]
            {
                ("Subject: big\r\n\r\n" + big, 552),                                   // MAIL 2: too-large (after the data)
                ("Subject: bare\r\n\r\nhello\nworld\r\n", 550),                         // MAIL 3: bare-line-ending
                ("Subject: long\r\n\r\n" + new string('l', 1500) + "\r\n", 550),         // MAIL 4: line-too-long
                (padding + "Subject: header\r\n\r\nhello\r\n", 552),                     // MAIL 5: header-too-large
                (loop + "Subject: loop\r\n\r\nhello\r\n", 554),                          // MAIL 6: mail-loop
            };
            foreach (var (content, code) in refusals)
            {
                Assert.Equal(250, (await client.CommandAsync("MAIL FROM:<a@remote.test>")).Code);
                Assert.Equal(250, (await client.CommandAsync("RCPT TO:<bob@example.test>")).Code);
                var reply = await DataAsync(client, content);
                Assert.True(reply.Code == code, $"expected {code} for {content[..Math.Min(20, content.Length)]}..., got {reply}");
            }

            // MAIL 7: accepted.
            Assert.Equal(250, (await client.CommandAsync("MAIL FROM:<a@remote.test>")).Code);
            Assert.Equal(250, (await client.CommandAsync("RCPT TO:<bob@example.test>")).Code);
            Assert.Equal(250, (await DataAsync(client, "From: <a@remote.test>\r\nSubject: second\r\n\r\nhello again\r\n")).Code);

            // MAIL 8: every recipient refused, so DATA has none to take.
            Assert.Equal(250, (await client.CommandAsync("MAIL FROM:<a@remote.test>")).Code);
            Assert.Equal(550, (await client.CommandAsync("RCPT TO:<nobody@example.test>")).Code);
            Assert.Equal(554, (await client.CommandAsync("DATA")).Code);
            Assert.Equal(250, (await client.CommandAsync("RSET")).Code);

            // MAIL 9: over the per-address message rate.
            Assert.Equal(450, (await client.CommandAsync("MAIL FROM:<a@remote.test>")).Code);
            Assert.Equal(221, (await client.CommandAsync("QUIT")).Code);
        }

        // A client that talks before the greeting (postscreen's early talker) is refused.
        await using (var early = await RawSmtpClient.ConnectAsync(relay.Endpoint))
        {
            await early.SendAsync("EHLO early.test\r\n");
            Assert.Equal(554, (await early.ReadReplyAsync()).Code);
        }

        // Rejections and acceptances are counted before the reply is sent: no waiting needed.
        var s = await ScrapeAsync(admin);
        Assert.Equal(2, s.Value("relaymta_messages_accepted_total"));
        Assert.Equal(new Dictionary<string, double>
        {
            ["relay-denied"] = 1,
            ["user-unknown"] = 2,
            ["non-ascii-address"] = 1,
            ["too-many-recipients"] = 1,
            ["no-valid-recipients"] = 1,
            ["mailbox-name"] = 1,
            ["too-large"] = 2, // one at MAIL (SIZE=), one after the data
            ["bare-line-ending"] = 1,
            ["line-too-long"] = 1,
            ["header-too-large"] = 1,
            ["mail-loop"] = 1,
            ["rate-limit"] = 1,
            ["early-talker"] = 1,
        }, s.ByLabel("relaymta_messages_rejected_total", "reason"));
        // Only the accepted messages were committed to the spool; the refused ones never were.
        AssertHistogram(s, "relaymta_spool_commit_seconds", 2, maxSum: 60);

        var delivered = await ScrapeUntilAsync(admin, x => x.Counter("relaymta_deliveries_total", ("result", "sent"), ("class", "local")) >= 2,
            "two local deliveries");
        Assert.Equal(2, relay.Delivered("bob").Length);
        Assert.Equal(new Dictionary<(string, string), double> { [("sent", "local")] = 2 }, Deliveries(delivered));
        AssertHistogram(delivered, "relaymta_delivery_latency_seconds", 2, maxSum: 60, ("class", "local"));
        Assert.Equal(0, delivered.Value("relaymta_bounces_total"));
    }

    [Fact]
    public async Task Should_count_deliveries_by_result_and_class_and_show_the_deferred_queue_in_the_gauges()
    {
        await using var bed = await OutboundBed.StartAsync("""
            relay-mta {
              admin.listen = "127.0.0.1:0"
              outbound.retry-intervals = [1h]
            }
            """);
        using var admin = AdminClient.For(bed.Relay);
        bed.Route("ok.test", (10, 2));
        bed.Route("defer.test", (10, 3));
        bed.Route("reject.test", (10, 4));
        var ok = bed.Mx(2);
        var defer = bed.Mx(3, new FakeSmtpBehavior { OnRcpt = _ => "451 4.3.0 try later" });
        var reject = bed.Mx(4, new FakeSmtpBehavior { OnRcpt = _ => "550 5.1.1 no such user" });

        var clock = Stopwatch.StartNew();
        await bed.SendAsync("alice@example.test", ["bob@example.test", "carol@ok.test", "dave@defer.test", "erin@reject.test"], "four ways");

        // bob: local; carol: sent; dave: deferred; erin: bounced, and the DSN goes to alice (local).
        var settled = await ScrapeUntilAsync(admin, s =>
                s.Counter("relaymta_deliveries_total", ("result", "sent"), ("class", "local")) >= 2
                && s.Counter("relaymta_deliveries_total", ("result", "sent"), ("class", "remote")) >= 1
                && s.Counter("relaymta_deliveries_total", ("result", "deferred"), ("class", "remote")) >= 1
                && s.Counter("relaymta_deliveries_total", ("result", "bounced"), ("class", "remote")) >= 1
                && s.Value("relaymta_queue_messages") == 1 && s.Value("relaymta_queue_recipients") == 1
                && s.Value("relaymta_queue_oldest_age_seconds") > 0,
            "every recipient tried once, the DSN delivered, and only the deferred recipient left in the gauges");
        Assert.Equal(new Dictionary<(string, string), double>
        {
            [("sent", "local")] = 2,
            [("sent", "remote")] = 1,
            [("deferred", "remote")] = 1,
            [("bounced", "remote")] = 1,
        }, Deliveries(settled));
        Assert.Equal(1, settled.Value("relaymta_bounces_total"));
        Assert.Single(bed.Relay.Delivered("alice")); // the DSN
        Assert.Single(bed.Relay.Delivered("bob"));
        Assert.Single(ok.Messages);
        Assert.Empty(defer.Messages);
        Assert.Empty(reject.Messages);
        Assert.Equal(1, settled.Value("relaymta_messages_accepted_total"));
        // The DSN went into the spool too, but it was not received over SMTP: only the message is in the histogram.
        AssertHistogram(settled, "relaymta_spool_commit_seconds", 1, maxSum: Elapsed(clock));
        // Latency is observed for final deliveries only.
        AssertHistogram(settled, "relaymta_delivery_latency_seconds", 2, maxSum: 2 * Elapsed(clock), ("class", "local"));
        AssertHistogram(settled, "relaymta_delivery_latency_seconds", 1, maxSum: Elapsed(clock), ("class", "remote"));

        // The age gauge is the deferred message's age: positive, not older than the test, and growing on each tick.
        var age = settled.Value("relaymta_queue_oldest_age_seconds");
        Assert.InRange(age, double.Epsilon, Elapsed(clock));
        var older = await ScrapeUntilAsync(admin, s => s.Value("relaymta_queue_oldest_age_seconds") > age, "the oldest age to grow");
        Assert.InRange(older.Value("relaymta_queue_oldest_age_seconds"), age, Elapsed(clock));
        Assert.Equal(1, older.Value("relaymta_queue_messages"));
        Assert.Equal(1, older.Value("relaymta_queue_recipients"));

        // The deferring host recovers; a retry delivers the last recipient and the queue empties.
        defer.Behavior.OnRcpt = null;
        var retry = await admin.PostAsync("api/retry");
        Assert.True(retry.Status == HttpStatusCode.OK, retry.ToString());
        var drained = await ScrapeUntilAsync(admin, s =>
                s.Counter("relaymta_deliveries_total", ("result", "sent"), ("class", "remote")) >= 2
                && s.Value("relaymta_queue_messages") == 0 && s.Value("relaymta_queue_recipients") == 0
                && s.Value("relaymta_queue_oldest_age_seconds") == 0,
            "the retried recipient sent and the queue gauges back to 0");
        Assert.Equal(new Dictionary<(string, string), double>
        {
            [("sent", "local")] = 2,
            [("sent", "remote")] = 2,
            [("deferred", "remote")] = 1,
            [("bounced", "remote")] = 1,
        }, Deliveries(drained));
        Assert.Single(defer.Messages);
        Assert.Equal(1, drained.Value("relaymta_bounces_total"));
        AssertHistogram(drained, "relaymta_delivery_latency_seconds", 2, maxSum: 2 * Elapsed(clock), ("class", "remote"));
        AssertHistogram(drained, "relaymta_spool_commit_seconds", 1, maxSum: Elapsed(clock));

        // The spool's journal counters are the spool's own, read at scrape time.
        await AssertSpoolCountersAsync(admin, bed.Relay);
    }

    [Fact]
    public async Task Should_count_DNS_lookups_and_only_SERVFAIL_as_a_failure()
    {
        const int dnsRetries = 1; // OutboundBed's dns.retries
        await using var bed = await OutboundBed.StartAsync("""
            relay-mta {
              admin.listen = "127.0.0.1:0"
              outbound.retry-intervals = [1h]
            }
            """);
        using var admin = AdminClient.For(bed.Relay);
        bed.Route("good.test", (10, 2));                          // MX, then A and AAAA of mx2.good.test
        bed.Dns.AddA("implicit.test", LoopbackPorts.Address(3));  // no MX (NODATA): A and AAAA of the domain itself
        bed.Dns.SetServFail("servfail.test");                     // temporary: deferred
        // nx.test is not configured at all: NXDOMAIN, permanent: bounced, but the lookup did not fail.
        var good = bed.Mx(2);
        var implicitHost = bed.Mx(3);

        await bed.SendAsync("alice@example.test", ["a@good.test", "b@implicit.test", "c@servfail.test", "d@nx.test"], "dns");

        var settled = await ScrapeUntilAsync(admin, s =>
                s.Counter("relaymta_deliveries_total", ("result", "sent"), ("class", "remote")) >= 2
                && s.Counter("relaymta_deliveries_total", ("result", "deferred"), ("class", "remote")) >= 1
                && s.Counter("relaymta_deliveries_total", ("result", "bounced"), ("class", "remote")) >= 1
                && s.Counter("relaymta_deliveries_total", ("result", "sent"), ("class", "local")) >= 1,
            "two remote deliveries, one deferral, one bounce and its DSN");
        Assert.Single(good.Messages);
        Assert.Single(implicitHost.Messages);
        Assert.Equal(new Dictionary<(string, string), double>
        {
            [("sent", "remote")] = 2,
            [("deferred", "remote")] = 1,
            [("bounced", "remote")] = 1,
            [("sent", "local")] = 1,
        }, Deliveries(settled));
        Assert.Equal(1, settled.Value("relaymta_bounces_total"));

        // What the DNS server saw: one query per lookup, plus the retries of the SERVFAIL one.
        Assert.Equal(1, bed.Dns.Queries("good.test", RecordType.Mx));
        Assert.Equal(1, bed.Dns.Queries("mx2.good.test", RecordType.A));
        Assert.Equal(1, bed.Dns.Queries("mx2.good.test", RecordType.Aaaa));
        Assert.Equal(1, bed.Dns.Queries("implicit.test", RecordType.Mx));
        Assert.Equal(1, bed.Dns.Queries("implicit.test", RecordType.A));
        Assert.Equal(1, bed.Dns.Queries("implicit.test", RecordType.Aaaa));
        Assert.Equal(1, bed.Dns.Queries("nx.test"));
        Assert.Equal(1 + dnsRetries, bed.Dns.Queries("servfail.test", RecordType.Mx));
        Assert.Equal(1 + dnsRetries, bed.Dns.Queries("servfail.test"));

        // The metrics count lookups (a query and its retries are one lookup): 3 + 3 + 1 + 1. Only the
        // SERVFAIL lookup failed: NXDOMAIN and NODATA are answers.
        Assert.Equal(8, settled.Value("relaymta_dns_lookups_total"));
        Assert.Equal(1, settled.Value("relaymta_dns_failures_total"));
    }

    [Fact]
    public async Task Should_count_TLS_sessions_inbound_and_outbound_and_not_count_failed_or_plain_ones()
    {
        var certPem = _dir.Combine("relay.pem");
        var keyPem = _dir.Combine("relay.key");
        _ca.Issue("mx.test", "127.0.0.1").WritePem(certPem, keyPem);
        await using var bed = await OutboundBed.StartAsync($$"""
            relay-mta {
              admin.listen = "127.0.0.1:0"
              tls { certificate = "{{TestRelay.Escape(certPem)}}", key = "{{TestRelay.Escape(keyPem)}}" }
              tls-listen = ["127.0.0.1:0"]
            }
            """);
        using var admin = AdminClient.For(bed.Relay);
        bed.Route("secure.test", (10, 2));
        bed.Route("plain.test", (10, 3));
        var secureMx = bed.Mx(2, new FakeSmtpBehavior { TlsCertificate = _ca.Issue("mx2.secure.test") });
        var plainMx = bed.Mx(3);

        // A plain session, and one that asks for STARTTLS but hangs up instead of the handshake.
        await using (var plain = await RawSmtpClient.ConnectAsync(bed.Relay.Endpoint))
        {
            Assert.Equal(220, (await plain.ReadReplyAsync()).Code);
            Assert.Contains((await plain.CommandAsync("EHLO client.test")).Lines, l => l.EndsWith("STARTTLS", StringComparison.Ordinal));
            Assert.Equal(221, (await plain.CommandAsync("QUIT")).Code);
        }
        await using (var aborted = await RawSmtpClient.ConnectAsync(bed.Relay.Endpoint))
        {
            Assert.Equal(220, (await aborted.ReadReplyAsync()).Code);
            Assert.Equal(250, (await aborted.CommandAsync("EHLO client.test")).Code);
            Assert.Equal(220, (await aborted.CommandAsync("STARTTLS")).Code);
        }
        var noTls = await ScrapeUntilAsync(admin, s => s.Value("relaymta_sessions_open") == 0 && s.Value("relaymta_sessions_total") == 2,
            "both sessions over");
        Assert.Empty(noTls.Samples("relaymta_tls_sessions_total"));

        // STARTTLS on the SMTP listener (to two remote domains, one of which offers STARTTLS)...
        using (var startTls = new SmtpClient { ServerCertificateValidationCallback = _ca.ValidationCallback("mx.test") })
        using (var socket = new Socket(SocketType.Stream, ProtocolType.Tcp))
        {
            await socket.ConnectAsync(bed.Relay.Endpoint);
            await startTls.ConnectAsync(socket, "mx.test", bed.Relay.Endpoint.Port, SecureSocketOptions.StartTls);
            Assert.True(startTls.IsSecure);
            await startTls.SendAsync(Message("alice@example.test", ["bob@secure.test", "carol@plain.test"], "starttls"));
            await startTls.DisconnectAsync(true);
        }
        // ... and implicit TLS on the TLS listener (to a local mailbox).
        var implicitEndpoint = bed.Relay.Runtime.EndpointsOf(ListenerKind.ImplicitTls).Single();
        using (var implicitTls = new SmtpClient { ServerCertificateValidationCallback = _ca.ValidationCallback("mx.test") })
        using (var socket = new Socket(SocketType.Stream, ProtocolType.Tcp))
        {
            await socket.ConnectAsync(implicitEndpoint);
            await implicitTls.ConnectAsync(socket, "mx.test", implicitEndpoint.Port, SecureSocketOptions.SslOnConnect);
            Assert.True(implicitTls.IsSecure);
            await implicitTls.SendAsync(Message("alice@example.test", ["dave@example.test"], "implicit"));
            await implicitTls.DisconnectAsync(true);
        }

        var secured = Assert.Single(await secureMx.WaitForMessagesAsync());
        var plainMessage = Assert.Single(await plainMx.WaitForMessagesAsync());
        Assert.NotNull(secured.Tls);
        Assert.Null(plainMessage.Tls);
        await bed.Relay.WaitForDeliveryAsync("dave");
        var s = await ScrapeUntilAsync(admin, x =>
                x.Value("relaymta_sessions_open") == 0
                && x.Counter("relaymta_deliveries_total", ("result", "sent"), ("class", "remote")) >= 2
                && x.Counter("relaymta_deliveries_total", ("result", "sent"), ("class", "local")) >= 1,
            "the TLS sessions over and the three recipients delivered");
        Assert.Equal(4, s.Value("relaymta_sessions_total"));
        Assert.Equal(2, s.Value("relaymta_messages_accepted_total"));
        Assert.Equal(1, secureMx.TlsHandshakes); // one connection, over TLS; the plain MX offered none
        Assert.Equal(new Dictionary<string, double> { ["inbound"] = 2, ["outbound"] = secureMx.TlsHandshakes },
            s.ByLabel("relaymta_tls_sessions_total", "direction"));
    }

    // ------------------------------------------------------------------ helpers

    /// <summary>Connects, expects the 421 a connection refused at connect gets, and the close that follows.</summary>
    private static async Task RefusedAsync(IPEndPoint endpoint)
    {
        await using var client = await RawSmtpClient.ConnectAsync(endpoint);
        var reply = await client.ReadReplyAsync();
        Assert.True(reply.Code == 421, $"expected 421 at connect, got {reply}");
        Assert.True(await client.IsClosedAsync(TimeSpan.FromSeconds(10)), "the refused connection stayed open");
    }

    private static double Elapsed(Stopwatch clock) => clock.Elapsed.TotalSeconds + 1; // +1: wall clock vs monotonic clock slack

    private static MimeMessage Message(string from, IEnumerable<string> to, string subject)
    {
        var m = new MimeMessage();
        m.From.Add(MailboxAddress.Parse(from));
        foreach (var t in to) m.To.Add(MailboxAddress.Parse(t));
        m.Subject = subject;
        m.Body = new TextPart("plain") { Text = "hello" };
        return m;
    }

    /// <summary>DATA, the content (which ends with CRLF) and the terminating dot; the reply to the end of data.</summary>
    private static async Task<WireReply> DataAsync(RawSmtpClient client, string content)
    {
        Assert.Equal(354, (await client.CommandAsync("DATA")).Code);
        await client.SendAsync(content + ".\r\n");
        return await client.ReadReplyAsync();
    }

    private static Dictionary<(string Result, string Class), double> Deliveries(Scrape s) =>
        s.Samples("relaymta_deliveries_total").ToDictionary(x => (x.Labels["result"], x.Labels["class"]), x => x.Value);

    /// <summary>Every metric RelayMetrics defines, with its type, is in the exposition (also before any traffic).</summary>
    private static void AssertFamilies(Scrape s)
    {
        var expected = new Dictionary<string, string>
        {
            ["relaymta_sessions_open"] = "gauge",
            ["relaymta_sessions_total"] = "counter",
            ["relaymta_connections_refused_total"] = "counter",
            ["relaymta_messages_accepted_total"] = "counter",
            ["relaymta_messages_rejected_total"] = "counter",
            ["relaymta_deliveries_total"] = "counter",
            ["relaymta_queue_messages"] = "gauge",
            ["relaymta_queue_recipients"] = "gauge",
            ["relaymta_queue_oldest_age_seconds"] = "gauge",
            ["relaymta_delivery_latency_seconds"] = "histogram",
            ["relaymta_spool_commit_seconds"] = "histogram",
            ["relaymta_dns_lookups_total"] = "counter",
            ["relaymta_dns_failures_total"] = "counter",
            ["relaymta_tls_sessions_total"] = "counter",
            ["relaymta_bounces_total"] = "counter",
            ["relaymta_spool_records_total"] = "counter",
            ["relaymta_spool_flushes_total"] = "counter",
            ["relaymta_spool_flush_seconds_total"] = "counter",
            ["relaymta_spool_batch_seconds_total"] = "counter",
        };
        foreach (var (name, type) in expected)
            Assert.True(s.Types.TryGetValue(name, out var actual) && actual == type, $"{name} should be a {type}, is {actual ?? "missing"}");
    }

    /// <summary>
    /// A histogram's samples for one label set: _count and the +Inf bucket are <paramref name="count"/>, the buckets
    /// are cumulative, and the sum is positive (every observation is a duration) and at most <paramref name="maxSum"/>.
    /// </summary>
    private static void AssertHistogram(Scrape s, string name, double count, double maxSum, params (string Key, string Value)[] labels)
    {
        Assert.Equal("histogram", s.Types.GetValueOrDefault(name));
        Assert.True(s.Find(name + "_count", labels) == count, $"{name}_count{Scrape.Format(labels)} should be {count}:\n{s.Relevant(name)}");
        var buckets = s.All(name + "_bucket").Where(b => Scrape.Matches(b.Labels, labels, ignore: "le"))
            .Select(b => (Le: Scrape.ParseValue(b.Labels["le"]), b.Value)).OrderBy(b => b.Le).ToList();
        Assert.True(buckets.Count > 1, $"{name}{Scrape.Format(labels)} has no buckets:\n{s.Relevant(name)}");
        Assert.Equal(double.PositiveInfinity, buckets[^1].Le);
        Assert.Equal(count, buckets[^1].Value);
        for (var i = 1; i < buckets.Count; i++) Assert.True(buckets[i].Value >= buckets[i - 1].Value, $"{name} buckets are not cumulative");
        var sum = s.Find(name + "_sum", labels) ?? double.NaN;
        Assert.InRange(sum, double.Epsilon, maxSum);
    }

    /// <summary>The journal counters in the exposition equal the spool's own (read on both sides of a scrape that nothing raced).</summary>
    private static async Task AssertSpoolCountersAsync(AdminClient admin, TestRelay relay)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var before = relay.Runtime.Spool.CommitCounters;
            var s = await ScrapeAsync(admin);
            var after = relay.Runtime.Spool.CommitCounters;
            if (before == after)
            {
                Assert.Equal((double)before.Commits, s.Value("relaymta_spool_records_total"));
                Assert.Equal((double)before.Syncs, s.Value("relaymta_spool_flushes_total"));
                Assert.InRange(s.Value("relaymta_spool_flushes_total"), 1, s.Value("relaymta_spool_records_total"));
                Assert.True(s.Value("relaymta_spool_flush_seconds_total") > 0);
                Assert.InRange(s.Value("relaymta_spool_batch_seconds_total"), s.Value("relaymta_spool_flush_seconds_total"), double.MaxValue);
                return;
            }
            if (clock.Elapsed > Timeout) throw new TimeoutException("the spool kept committing during every scrape");
            await Task.Delay(50);
        }
    }

    private static async Task<Scrape> ScrapeAsync(AdminClient admin)
    {
        var response = await admin.GetAsync("metrics");
        Assert.True(response.Status == HttpStatusCode.OK, $"GET /metrics: {response}");
        Assert.StartsWith("text/plain; version=0.0.4", response.ContentType);
        return new Scrape(response.Text);
    }

    private static async Task<Scrape> ScrapeUntilAsync(AdminClient admin, Func<Scrape, bool> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var s = await ScrapeAsync(admin);
            if (condition(s)) return s;
            if (clock.Elapsed > Timeout) throw new TimeoutException($"the metrics never showed {what}; last scrape:\n{s.Relevant("relaymta_")}");
            await Task.Delay(50);
        }
    }

    private sealed record Sample(string Name, IReadOnlyDictionary<string, string> Labels, double Value);

    /// <summary>One parsed Prometheus text exposition (format 0.0.4): the TYPE of each family and every sample with its labels.</summary>
    private sealed class Scrape
    {
        private readonly List<Sample> _samples = [];
        private readonly Dictionary<string, string> _types = new(StringComparer.Ordinal);
        private readonly string _text;

        public Scrape(string text)
        {
            _text = text;
            foreach (var raw in text.Split('\n'))
            {
                var line = raw.TrimEnd('\r');
                if (line.Length == 0) continue;
                if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
                {
                    var parts = line.Split(' ');
                    Assert.True(parts.Length == 4, "bad TYPE line: " + line);
                    _types[parts[2]] = parts[3];
                    continue;
                }
                if (line[0] == '#') continue;
                _samples.Add(ParseSample(line));
            }
        }

        public IReadOnlyDictionary<string, string> Types => _types;

        /// <summary>All samples of a name, whatever their labels.</summary>
        public IEnumerable<Sample> All(string name) => _samples.Where(s => s.Name == name);

        /// <summary>The samples of a family that has been declared (fails when it was not).</summary>
        public IReadOnlyList<Sample> Samples(string name)
        {
            Assert.True(_types.ContainsKey(name), $"{name} is not in the exposition");
            return All(name).ToList();
        }

        /// <summary>The sample with exactly these labels, or null.</summary>
        public double? Find(string name, params (string Key, string Value)[] labels)
        {
            var found = All(name).Where(s => Matches(s.Labels, labels)).ToList();
            Assert.True(found.Count <= 1, $"{name}{Format(labels)} appears {found.Count} times");
            return found.Count == 0 ? null : found[0].Value;
        }

        /// <summary>A sample that must be there (unlabelled counters and gauges are exported from the start).</summary>
        public double Value(string name, params (string Key, string Value)[] labels) =>
            Find(name, labels) ?? throw new Xunit.Sdk.XunitException($"{name}{Format(labels)} is not in the exposition:\n{Relevant(name)}");

        /// <summary>A counter's child: a label set never incremented is not exported, and is 0.</summary>
        public double Counter(string name, params (string Key, string Value)[] labels)
        {
            Assert.Equal("counter", _types.GetValueOrDefault(name));
            return Find(name, labels) ?? 0;
        }

        /// <summary>A family with one label: value per label value.</summary>
        public Dictionary<string, double> ByLabel(string name, string label) =>
            Samples(name).ToDictionary(s => s.Labels[label], s => s.Value);

        public string Relevant(string prefix) =>
            string.Join('\n', _text.Split('\n').Where(l => l.StartsWith(prefix, StringComparison.Ordinal) && !l.Contains("_bucket{", StringComparison.Ordinal)));

        public static bool Matches(IReadOnlyDictionary<string, string> actual, (string Key, string Value)[] wanted, string? ignore = null) =>
            actual.Count(kv => kv.Key != ignore) == wanted.Length && wanted.All(w => actual.TryGetValue(w.Key, out var v) && v == w.Value);

        public static string Format((string Key, string Value)[] labels) =>
            labels.Length == 0 ? "" : "{" + string.Join(",", labels.Select(l => $"{l.Key}=\"{l.Value}\"")) + "}";

        public static double ParseValue(string text) => text switch
        {
            "+Inf" => double.PositiveInfinity,
            "-Inf" => double.NegativeInfinity,
            "NaN" => double.NaN,
            _ => double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture),
        };

        /// <summary><c>name{k="v",...} value [timestamp]</c>, with \\, \" and \n escapes in label values.</summary>
        private static Sample ParseSample(string line)
        {
            var i = line.IndexOfAny(['{', ' ']);
            Assert.True(i > 0, "bad sample line: " + line);
            var name = line[..i];
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            if (line[i] == '{')
            {
                i++;
                while (line[i] != '}')
                {
                    var eq = line.IndexOf('=', i);
                    var key = line[i..eq];
                    Assert.True(line[eq + 1] == '"', "bad label in: " + line);
                    var value = new StringBuilder();
                    var j = eq + 2;
                    for (; line[j] != '"'; j++)
                    {
                        if (line[j] != '\\')
                        {
                            value.Append(line[j]);
                            continue;
                        }
                        j++;
                        value.Append(line[j] == 'n' ? '\n' : line[j]);
                    }
                    labels[key] = value.ToString();
                    i = j + 1;
                    if (line[i] == ',') i++;
                }
                i++;
            }
            var rest = line[i..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            Assert.True(rest.Length is 1 or 2, "bad sample line: " + line);
            return new Sample(name, labels, ParseValue(rest[0]));
        }
    }
}
