using Akka.Actor;
using RelayMta.Engine.Outbound;
using RelayMta.Engine.Security;
using RelayMta.IntegrationTests.Infrastructure;

namespace RelayMta.IntegrationTests;

/// <summary>Outbound TLS policies (none | may | encrypt | verify) against MX hosts with certificates from a test CA.</summary>
public sealed class OutboundTlsSpecs : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly TestCa _ca = TestCa.Create();
    private readonly string _caPem;

    public OutboundTlsSpecs()
    {
        _caPem = _dir.Combine("ca.pem");
        _ca.WriteCaPem(_caPem);
    }

    private static async Task<OutboundProtocol.DestinationStatus?> DestinationAsync(OutboundBed bed, string destination)
    {
        var outbound = await bed.Relay.ActorSystem.ActorSelection("/user/queue-manager/outbound").ResolveOne(TimeSpan.FromSeconds(5));
        var status = await outbound.Ask<OutboundProtocol.OutboundStatus>(OutboundProtocol.GetStatus.Instance, TimeSpan.FromSeconds(5));
        return status.Destinations.SingleOrDefault(d => d.Destination == destination);
    }

    [Fact]
    public async Task Verify_accepts_a_certificate_that_chains_to_the_trusted_CA_and_names_the_MX_host()
    {
        await using var bed = await OutboundBed.StartAsync($$"""
            relay-mta.outbound { tls = verify, tls-ca-file = "{{TestRelay.Escape(_caPem)}}" }
            """);
        var mx = bed.Mx(2, new FakeSmtpBehavior { TlsCertificate = _ca.Issue("mx2.dest.test") });
        bed.Route("dest.test", (10, 2));

        await bed.SendAsync("alice@example.test", ["bob@dest.test"], "verified");

        var message = Assert.Single(await mx.WaitForMessagesAsync());
        Assert.NotNull(message.Tls);
        Assert.Equal("mx2.dest.test", message.TlsServerName);
    }

    [Fact]
    public async Task Verify_refuses_a_certificate_for_another_name_and_the_mail_waits()
    {
        await using var bed = await OutboundBed.StartAsync($$"""
            relay-mta.outbound {
              tls = may
              tls-policy { "dest.test" = verify }
              tls-ca-file = "{{TestRelay.Escape(_caPem)}}"
            }
            """);
        var mx = bed.Mx(2, new FakeSmtpBehavior { TlsCertificate = _ca.Issue("somebody-else.test") });
        bed.Route("dest.test", (10, 2));

        await bed.SendAsync("alice@example.test", ["bob@dest.test"], "must not go");

        await Eventually.TrueAsync(() => mx.TlsFailures >= 1, TimeSpan.FromSeconds(15));
        OutboundProtocol.DestinationStatus? status = null;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while ((status = await DestinationAsync(bed, "dest.test"))?.LastError is null && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.Contains("does not name mx2.dest.test", status!.LastError);
        Assert.Empty(mx.Messages);
        Assert.Equal(1, bed.Relay.Runtime.Spool.Count); // deferred, not lost, not sent in the clear
        Assert.DoesNotContain(mx.Commands, c => c.Contains("MAIL FROM", StringComparison.Ordinal));
    }

    [Fact]
    public async Task May_encrypts_with_any_certificate()
    {
        using var stranger = TestCa.Create("Unknown CA");
        await using var bed = await OutboundBed.StartAsync();
        var mx = bed.Mx(2, new FakeSmtpBehavior { TlsCertificate = stranger.Issue("whatever.test") });
        bed.Route("dest.test", (10, 2));

        await bed.SendAsync("alice@example.test", ["bob@dest.test"], "opportunistic");

        Assert.NotNull(Assert.Single(await mx.WaitForMessagesAsync()).Tls);
    }

    [Fact]
    public async Task Encrypt_does_not_send_to_a_host_that_offers_no_STARTTLS()
    {
        await using var bed = await OutboundBed.StartAsync("relay-mta.outbound.tls = encrypt");
        var mx = bed.Mx(2);
        bed.Route("dest.test", (10, 2));

        await bed.SendAsync("alice@example.test", ["bob@dest.test"], "needs tls");

        OutboundProtocol.DestinationStatus? status = null;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while ((status = await DestinationAsync(bed, "dest.test"))?.LastError is null && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.Contains("TLS is required", status!.LastError);
        Assert.Empty(mx.Messages);
        Assert.Equal(0, mx.Transactions);
    }

    [Fact]
    public async Task A_smarthost_gets_AUTH_over_verified_TLS_relay_to_relay()
    {
        var cert = _dir.Combine("hub.pem");
        var key = _dir.Combine("hub.key");
        _ca.Issue("hub.test", "127.0.0.1").WritePem(cert, key);
        var users = _dir.Combine("users.db");
        UserStore.AddOrUpdate(users, "edge", "edge-secret");
        using var hubDir = new TempDirectory();
        await using var hub = await TestRelay.StartAsync($$"""
            relay-mta {
              hostname = "hub.test"
              local.domains = ["far.test"]
              tls { certificate = "{{TestRelay.Escape(cert)}}", key = "{{TestRelay.Escape(key)}}" }
              auth.users-file = "{{TestRelay.Escape(users)}}"
              relay.allowed-networks = ["192.0.2.0/24"]
              limits.greet-delay = 0s
            }
            """, hubDir);

        var password = _dir.Combine("smarthost.pass");
        await File.WriteAllTextAsync(password, "edge-secret\n");
        await using var edge = await TestRelay.StartAsync($$"""
            relay-mta {
              relay {
                smarthost = "127.0.0.1:{{hub.Endpoint.Port}}"
                smarthost-tls = verify
                smarthost-user = "edge"
                smarthost-password-file = "{{TestRelay.Escape(password)}}"
              }
              outbound.tls-ca-file = "{{TestRelay.Escape(_caPem)}}"
            }
            """);

        await using (var client = await RawSmtpClient.ConnectAsync(edge.Endpoint))
        {
            await client.ReadReplyAsync();
            await client.CommandAsync("EHLO client.test");
            await client.CommandAsync("MAIL FROM:<alice@example.test>");
            Assert.Equal(250, (await client.CommandAsync("RCPT TO:<bob@far.test>")).Code);
            await client.CommandAsync("DATA");
            Assert.Equal(250, (await client.CommandAsync("Subject: over the hop\r\n\r\nhi\r\n.")).Code);
        }

        var stored = File.ReadAllText((await hub.WaitForDeliveryAsync("bob", domain: "far.test")).Single());
        Assert.Contains("with ESMTPSA id", stored);
        Assert.Contains("(Authenticated sender: edge)", stored);
        Assert.Contains("by mx.test (RelayMta)", stored); // the edge's own Received is there too
    }

    public void Dispose()
    {
        _ca.Dispose();
        _dir.Dispose();
    }
}
