using System.Collections.Immutable;
using System.Text;
using Akka.Actor;
using Akka.TestKit.Xunit2;
using Microsoft.Extensions.Logging.Abstractions;
using RelayMta.Engine.Hosting;
using RelayMta.Engine.Outbound;
using RelayMta.Engine.Queue;
using RelayMta.Engine.Spool;

namespace RelayMta.Engine.Tests.Outbound;

/// <summary>Defects found in review of the outbound queue, each pinned by a test.</summary>
public sealed class OutboundRegressionSpecs : TestKit, IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "relaymta-or-" + Guid.NewGuid().ToString("N")[..10]);
    private readonly Spool.Spool _spool;

    public OutboundRegressionSpecs() =>
        _spool = Spool.Spool.Open(Path.Combine(_dir, "spool"), new SpoolOptions(), NullLogger.Instance);

    private static RelayMtaSettings Settings(string hocon = "") => ConfigLoader.LoadText($$"""
        relay-mta {
          local.domains = ["example.test"]
          outbound { retry-intervals = [500ms], connection-idle-timeout = 200ms }
        }
        {{hocon}}
        """, "test.hocon").Settings;

    private static OutboundContext Context(RelayMtaSettings settings, StubTransport transport) =>
        new(settings, new MxResolver(settings.Dns, NullLogger.Instance), transport,
            new RetrySchedule(settings.Outbound.RetryIntervals, settings.Outbound.MaxQueueLifetime), NullLogger.Instance);

    private async Task<SpoolEntry> CommitAsync(string sender, params string[] recipients)
    {
        var body = Encoding.ASCII.GetBytes("Subject: t\r\n\r\nbody\r\n");
        var envelope = new MailEnvelope(_spool.Ids.Next(), DateTimeOffset.UtcNow, sender, recipients.ToImmutableArray(), "127.0.0.1",
            "client.test", "ESMTP", null, MessageFlags.None, body.Length);
        return await _spool.CommitAsync(envelope, body);
    }

    [Fact]
    public async Task An_open_circuit_lets_a_probe_through_after_the_break_and_the_mail_is_delivered()
    {
        var transport = new StubTransport { OnOpen = n => n <= 2 ? new OutboundConnectException("4.4.1", "connection refused") : null };
        var queue = CreateTestProbe();
        var settings = Settings("""
            relay-mta.outbound.circuit-breaker { failures = 2, break = 1s }
            relay-mta.outbound.max-connections-per-destination = 1
            """);
        var outbound = Sys.ActorOf(Props.Create(() => new OutboundActor(Context(settings, transport), queue.Ref)));
        var entry = await CommitAsync("a@example.test", "bob@[127.0.0.1]");
        outbound.Tell(new OutboundProtocol.Deliver(new DeliveryJob(entry.Envelope, [0], 0, DateTimeOffset.UtcNow), "[127.0.0.1]"), queue.Ref);

        queue.FishForMessage(m => m is QueueProtocol.RecipientResults r && r.Results[0].Outcome is DeliveryOutcome.Delivered, TimeSpan.FromSeconds(15));
        Assert.Single(transport.Deliveries);
    }

    [Fact]
    public void The_same_recipients_handed_over_twice_are_delivered_once()
    {
        var transport = new StubTransport { TransactionTime = TimeSpan.FromMilliseconds(300) };
        var queue = CreateTestProbe();
        var outbound = Sys.ActorOf(Props.Create(() => new OutboundActor(Context(Settings(), transport), queue.Ref)));
        var envelope = new MailEnvelope(_spool.Ids.Next(), DateTimeOffset.UtcNow, "a@example.test", ["bob@[127.0.0.1]", "carol@[127.0.0.1]"],
            "127.0.0.1", "c.test", "ESMTP", null, MessageFlags.None, 10);
        var job = new DeliveryJob(envelope, [0, 1], 0, DateTimeOffset.UtcNow);

        outbound.Tell(new OutboundProtocol.Deliver(job, "[127.0.0.1]"), queue.Ref);
        outbound.Tell(new OutboundProtocol.Deliver(job, "[127.0.0.1]"), queue.Ref); // e.g. a redispatch after a restart
        outbound.Tell(new OutboundProtocol.Deliver(job with { Recipients = [1] }, "[127.0.0.1]"), queue.Ref);

        var results = queue.ExpectMsg<QueueProtocol.RecipientResults>(TimeSpan.FromSeconds(10));
        Assert.Equal(2, results.Results.Length);
        queue.ExpectNoMsg(TimeSpan.FromSeconds(1));
        Assert.Single(transport.Deliveries);
    }

    [Fact]
    public void A_job_that_keeps_crashing_its_agent_is_deferred_instead_of_looping()
    {
        var transport = new StubTransport { OnOpen = _ => new InvalidOperationException("always broken") };
        var queue = CreateTestProbe();
        var outbound = Sys.ActorOf(Props.Create(() => new OutboundActor(Context(Settings(), transport), queue.Ref)));
        var envelope = new MailEnvelope(_spool.Ids.Next(), DateTimeOffset.UtcNow, "a@example.test", ["bob@[127.0.0.1]"],
            "127.0.0.1", "c.test", "ESMTP", null, MessageFlags.None, 10);
        outbound.Tell(new OutboundProtocol.Deliver(new DeliveryJob(envelope, [0], 0, DateTimeOffset.UtcNow), "[127.0.0.1]"), queue.Ref);

        var results = queue.ExpectMsg<QueueProtocol.RecipientResults>(TimeSpan.FromSeconds(10));
        var failure = Assert.IsType<DeliveryOutcome.TempFailure>(Assert.Single(results.Results).Outcome);
        Assert.Contains("always broken", failure.Diagnostic);
        Assert.NotNull(results.NextAttemptAt);
        Assert.InRange(transport.Opens, 3, 4); // a few crashes, then the retry schedule takes over
    }

    [Fact]
    public async Task The_queue_manager_starts_from_the_spool_as_it_is_now_not_as_it_was_when_opened()
    {
        var entry = await CommitAsync("a@example.test", "bob@example.test", "carol@example.test");
        await _spool.UpdateAsync(entry.State with
        {
            Recipients = entry.State.Recipients.SetItem(0, new RecipientStatus(RecipientState.Delivered, "2.0.0", "delivered", null, DateTimeOffset.UtcNow)),
        });

        var local = CreateTestProbe();
        Sys.ActorOf(Props.Create(() => new QueueManagerActor(Settings(), _spool, local.Ref, null, NullLoggerFactory.Instance)));

        var work = local.ExpectMsg<LocalProtocol.DeliverLocal>();
        Assert.Equal(entry.Id, work.Envelope.Id);
        Assert.Equal(new[] { 1 }, work.Recipients); // bob was delivered already: never again
    }

    [Fact]
    public async Task Failures_at_two_destinations_of_one_message_make_one_DSN()
    {
        var transport = new StubTransport
        {
            TransactionTime = TimeSpan.FromMilliseconds(50),
            Outcome = (job, i) => new DeliveryOutcome.PermFailure("5.1.1", "550 5.1.1 no such user", "stub.test"),
        };
        var settings = Settings();
        var context = Context(settings, transport);
        var local = CreateTestProbe();
        var queue = Sys.ActorOf(Props.Create(() => new QueueManagerActor(settings, _spool, local.Ref,
            qm => Props.Create(() => new OutboundActor(context, qm)), NullLoggerFactory.Instance)));

        var entry = await CommitAsync("alice@example.test", "x@[127.0.0.1]", "y@[127.0.0.2]");
        queue.Tell(new QueueProtocol.Enqueued(entry));

        var bounce = local.ExpectMsg<LocalProtocol.DeliverLocal>(TimeSpan.FromSeconds(10));
        Assert.Equal("", bounce.Envelope.Sender);
        Assert.True(bounce.Envelope.Flags.HasFlag(MessageFlags.Bounce));
        using (var body = _spool.OpenBody(bounce.Envelope.Id))
        {
            var text = new StreamReader(body.AsStream()).ReadToEnd();
            Assert.Contains("Final-Recipient: rfc822; x@[127.0.0.1]", text);
            Assert.Contains("Final-Recipient: rfc822; y@[127.0.0.2]", text);
        }
        local.ExpectNoMsg(TimeSpan.FromSeconds(1)); // no second notice
    }

    public new void Dispose()
    {
        Shutdown();
        _spool.Dispose();
        Directory.Delete(_dir, recursive: true);
        base.Dispose();
    }
}
