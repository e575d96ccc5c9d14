using System.Net;
using System.Text;
using MimeKit;

namespace RelayMta.IntegrationTests.Infrastructure;

/// <summary>
/// A relay wired to a DNS server and fake MX hosts, all on loopback: the DNS server answers for the
/// test domains, MX hosts listen on one shared port at 127.0.0.x, and the relay's
/// <c>outbound.port</c> and <c>dns.servers</c> point at them. Retries are fast (1 s).
/// </summary>
public sealed class OutboundBed : IAsyncDisposable
{
    private readonly List<FakeSmtpServer> _servers = [];

    private OutboundBed(TestDnsServer dns, int port)
    {
        Dns = dns;
        Port = port;
    }

    public TestDnsServer Dns { get; }

    /// <summary>The port every fake MX listens on and the relay connects to.</summary>
    public int Port { get; }

    public TestRelay Relay { get; private set; } = null!;

    public static async Task<OutboundBed> StartAsync(string extraHocon = "", TempDirectory? dir = null)
    {
        var dns = await TestDnsServer.StartAsync();
        var port = LoopbackPorts.FindPortFreeOn(Enumerable.Range(2, 20).Select(LoopbackPorts.Address).ToArray());
        var bed = new OutboundBed(dns, port);
        await bed.StartRelayAsync(extraHocon, dir);
        return bed;
    }

    public async Task StartRelayAsync(string extraHocon = "", TempDirectory? dir = null)
    {
        Relay = await TestRelay.StartAsync($$"""
            relay-mta {
              dns { servers = ["{{Dns.Endpoint}}"], timeout = 1s, retries = 1 }
              outbound {
                port = {{Port}}
                retry-intervals = [1s]
                connection-idle-timeout = 300ms
                timeouts { connect = 2s, greeting = 5s, command = 5s, mail = 5s, rcpt = 5s, data-init = 5s, data-block = 5s, data-done = 5s }
              }
            }
            {{extraHocon}}
            """, dir);
    }

    /// <summary>Starts a fake MX at 127.0.0.<paramref name="octet"/> on the shared port.</summary>
    public FakeSmtpServer Mx(int octet, FakeSmtpBehavior? behavior = null)
    {
        var server = FakeSmtpServer.Start(LoopbackPorts.Address(octet), Port, behavior);
        _servers.Add(server);
        return server;
    }

    /// <summary>MX records for <paramref name="domain"/>: host name mxN.domain at 127.0.0.N, preference in order given.</summary>
    public void Route(string domain, params (ushort Preference, int Octet)[] hosts)
    {
        foreach (var (preference, octet) in hosts)
        {
            var name = $"mx{octet}.{domain}";
            Dns.AddMx(domain, preference, name);
            Dns.AddA(name, LoopbackPorts.Address(octet));
        }
    }

    /// <summary>Sends one message through the relay; returns the queue id from the 250 reply.</summary>
    public async Task<string> SendAsync(string from, IEnumerable<string> to, string subject, string body = "hello\r\n", string? extraHeaders = null,
        string mailParameters = "")
    {
        await using var client = await RawSmtpClient.ConnectAsync(Relay.Endpoint);
        Expect(await client.ReadReplyAsync(), 220);
        Expect(await client.CommandAsync("EHLO client.test"), 250);
        Expect(await client.CommandAsync($"MAIL FROM:<{from}>{mailParameters}"), 250);
        foreach (var r in to) Expect(await client.CommandAsync($"RCPT TO:<{r}>"), 250);
        Expect(await client.CommandAsync("DATA"), 354);
        var reply = await client.CommandAsync($"From: <{from}>\r\nSubject: {subject}\r\n{extraHeaders}\r\n{body}.");
        Expect(reply, 250);
        await client.CommandAsync("QUIT");
        return reply.LastText.Split(' ')[^1];
    }

    /// <summary>Waits for a DSN in a local mailbox and parses it.</summary>
    public async Task<MimeMessage> WaitForBounceAsync(string user, int count = 1)
    {
        var files = await Relay.WaitForDeliveryAsync(user, count);
        var newest = files.OrderBy(File.GetLastWriteTimeUtc).Last();
        return MimeMessage.Load(newest);
    }

    /// <summary>The per-recipient fields of a DSN's message/delivery-status part.</summary>
    public static IReadOnlyList<HeaderList> RecipientGroups(MimeMessage dsn)
    {
        var report = Assert.IsType<MultipartReport>(dsn.Body);
        Assert.Equal("delivery-status", report.ReportType);
        var status = Assert.IsType<MessageDeliveryStatus>(report[1]);
        return status.StatusGroups.Skip(1).ToList();
    }

    public async Task<bool> SpoolEmptiesAsync(TimeSpan timeout)
    {
        try
        {
            await Eventually.TrueAsync(() => Relay.Runtime.Spool.Count == 0, timeout);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    private static void Expect(WireReply reply, int code)
    {
        if (reply.Code != code) throw new InvalidDataException($"expected {code}, got {reply}");
    }

    public async ValueTask DisposeAsync()
    {
        await Relay.DisposeAsync();
        foreach (var s in _servers) await s.DisposeAsync();
        await Dns.DisposeAsync();
    }
}
