using System.Diagnostics;
using System.Net;
using DnsClient;
using RelayMta.IntegrationTests.Infrastructure;
using RecordType = ARSoft.Tools.Net.Dns.RecordType;

namespace RelayMta.IntegrationTests.Fixtures;

/// <summary>The fake DNS server, seen through the same client library the relay uses (DnsClient).</summary>
public sealed class TestDnsServerSpecs
{
    private static LookupClient Client(TestDnsServer dns, TimeSpan? timeout = null, bool tcp = false) =>
        new(new LookupClientOptions(dns.Endpoint)
        {
            UseCache = false,
            Timeout = timeout ?? TimeSpan.FromSeconds(5),
            Retries = 0,
            UseTcpOnly = tcp,
        });

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Should_answer_MX_records_over_udp_and_tcp(bool tcp)
    {
        await using var dns = await TestDnsServer.StartAsync();
        dns.AddMx("example.test", 20, "mx2.example.test");
        dns.AddMx("Example.TEST.", 10, "mx1.example.test.");

        var response = await Client(dns, tcp: tcp).QueryAsync("example.test", QueryType.MX);

        Assert.Equal(DnsHeaderResponseCode.NoError, response.Header.ResponseCode);
        var mx = response.Answers.MxRecords().OrderBy(r => r.Preference).Select(r => (r.Preference, r.Exchange.Value)).ToList();
        Assert.Equal([((ushort)10, "mx1.example.test."), ((ushort)20, "mx2.example.test.")], mx);
        Assert.All(response.Answers, r => Assert.Equal(300, r.InitialTimeToLive));
        Assert.Equal(1, dns.Queries("EXAMPLE.test.", RecordType.Mx));
        Assert.Equal(0, dns.Queries("example.test", RecordType.A));
    }

    [Fact]
    public async Task Should_answer_A_and_AAAA_with_the_configured_ttl_and_NODATA_for_a_missing_type()
    {
        await using var dns = await TestDnsServer.StartAsync();
        dns.Ttl = 42;
        dns.AddA("mx1.example.test", IPAddress.Parse("127.0.0.2"));
        dns.AddA("mx1.example.test", IPAddress.Parse("127.0.0.3"));
        dns.AddAaaa("mx1.example.test", IPAddress.IPv6Loopback);
        var client = Client(dns);

        var a = await client.QueryAsync("MX1.example.test", QueryType.A);
        var aaaa = await client.QueryAsync("mx1.example.test.", QueryType.AAAA);
        var mx = await client.QueryAsync("mx1.example.test", QueryType.MX);

        Assert.Equal(["127.0.0.2", "127.0.0.3"], a.Answers.ARecords().Select(r => r.Address.ToString()).Order());
        Assert.All(a.Answers, r => Assert.Equal(42, r.InitialTimeToLive));
        Assert.Equal(IPAddress.IPv6Loopback, Assert.Single(aaaa.Answers.AaaaRecords()).Address);
        // A name with records, but not of the asked type: NOERROR and an empty answer (NODATA).
        Assert.Equal(DnsHeaderResponseCode.NoError, mx.Header.ResponseCode);
        Assert.Empty(mx.Answers);
        Assert.Equal(1, dns.Queries("mx1.example.test", RecordType.A));
        Assert.Equal(1, dns.Queries("mx1.example.test", RecordType.Aaaa));
        Assert.Equal(3, dns.Queries("mx1.example.test"));
    }

    [Fact]
    public async Task Should_answer_a_null_MX_as_preference_0_and_the_root()
    {
        await using var dns = await TestDnsServer.StartAsync();
        dns.AddNullMx("nomail.test");

        var response = await Client(dns).QueryAsync("nomail.test", QueryType.MX);

        var mx = Assert.Single(response.Answers.MxRecords());
        Assert.Equal(0, mx.Preference);
        Assert.Equal(".", mx.Exchange.Value);
    }

    [Fact]
    public async Task Should_answer_NXDOMAIN_for_unknown_and_forced_names()
    {
        await using var dns = await TestDnsServer.StartAsync();
        dns.AddA("gone.test", IPAddress.Parse("127.0.0.9"));
        dns.SetNxDomain("gone.test");
        var client = Client(dns);

        var unknown = await client.QueryAsync("never-configured.test", QueryType.MX);
        var forced = await client.QueryAsync("gone.test", QueryType.A);

        Assert.Equal(DnsHeaderResponseCode.NotExistentDomain, unknown.Header.ResponseCode);
        Assert.Equal(DnsHeaderResponseCode.NotExistentDomain, forced.Header.ResponseCode);
        Assert.Empty(forced.Answers);
        Assert.Equal(1, dns.Queries("never-configured.test", RecordType.Mx));
    }

    [Fact]
    public async Task Should_answer_SERVFAIL_until_cleared()
    {
        await using var dns = await TestDnsServer.StartAsync();
        dns.AddMx("flaky.test", 10, "mx.flaky.test");
        dns.SetServFail("flaky.test");
        var client = Client(dns);

        var failed = await client.QueryAsync("flaky.test", QueryType.MX);
        dns.Clear("flaky.test");
        dns.AddMx("flaky.test", 10, "mx.flaky.test");
        var recovered = await client.QueryAsync("flaky.test", QueryType.MX);

        Assert.Equal(DnsHeaderResponseCode.ServerFailure, failed.Header.ResponseCode);
        Assert.True(failed.HasError);
        Assert.Equal("mx.flaky.test.", Assert.Single(recovered.Answers.MxRecords()).Exchange.Value);
        Assert.Equal(2, dns.Queries("flaky.test", RecordType.Mx));
        Assert.Empty(dns.Errors);
    }

    [Fact]
    public async Task Should_never_answer_a_no_answer_name_so_the_client_times_out()
    {
        await using var dns = await TestDnsServer.StartAsync();
        dns.SetNoAnswer("blackhole.test");
        dns.AddA("ok.test", IPAddress.Parse("127.0.0.5"));
        var client = Client(dns, TimeSpan.FromMilliseconds(300));

        var clock = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<DnsResponseException>(() => client.QueryAsync("blackhole.test", QueryType.MX));
        clock.Stop();

        Assert.Equal(DnsResponseCode.ConnectionTimeout, e.Code);
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(250), $"gave up after {clock.Elapsed}: the server answered");
        // Counted on receipt; on a loaded machine the client can give up before the server even dispatches it.
        await Eventually.TrueAsync(() => dns.Queries("blackhole.test", RecordType.Mx) == 1, TimeSpan.FromSeconds(5));
        // The server is not wedged: other names still answer while that query hangs (normal timeout:
        // this is not about speed, and a loaded machine can take more than 300 ms).
        var ok = await Client(dns).QueryAsync("ok.test", QueryType.A);
        Assert.Equal("127.0.0.5", Assert.Single(ok.Answers.ARecords()).Address.ToString());
    }

    [Fact]
    public async Task Should_release_its_port_on_dispose()
    {
        var dns = await TestDnsServer.StartAsync();
        var endpoint = dns.Endpoint;
        dns.SetNoAnswer("blackhole.test");
        await Assert.ThrowsAsync<DnsResponseException>(() => Client(dns, TimeSpan.FromMilliseconds(100)).QueryAsync("blackhole.test", QueryType.A));

        await dns.DisposeAsync();

        using var udp = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Udp);
        udp.Bind(endpoint);
        var tcp = new System.Net.Sockets.TcpListener(endpoint);
        tcp.Start();
        tcp.Stop();
    }
}
