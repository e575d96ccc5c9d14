using System.Collections.Immutable;
using System.Text;
using Akka.Actor;
using Akka.Configuration;
using Akka.TestKit;
using Akka.TestKit.Xunit2;
using Microsoft.Extensions.Logging.Abstractions;
using RelayMta.Engine.Hosting;
using RelayMta.Engine.Queue;
using RelayMta.Engine.Spool;

namespace RelayMta.Engine.Tests.Queue;

/// <summary>The queue manager routes, records results in the spool, retries on its schedule and removes finished mail.</summary>
public sealed class QueueManagerActorSpecs : TestKit, IDisposable
{
    private static readonly Config TestConfig = ConfigurationFactory.ParseString(
        "akka.scheduler.implementation = \"Akka.TestKit.TestScheduler, Akka.TestKit\"");

    private readonly string _dir = Path.Combine(Path.GetTempPath(), "relaymta-qm-" + Guid.NewGuid().ToString("N")[..10]);
    private Spool.Spool _spool;
    private readonly RelayMtaSettings _settings;

    public QueueManagerActorSpecs() : base(TestConfig)
    {
        _spool = Spool.Spool.Open(Path.Combine(_dir, "spool"), new SpoolOptions(), NullLogger.Instance);
        _settings = ConfigLoader.LoadText("""
            relay-mta {
              local.domains = ["example.test"]
              outbound { retry-intervals = [1m, 10m], max-queue-lifetime = 1h }
            }
            """, "test.hocon").Settings;
    }

    private TestScheduler Scheduler => (TestScheduler)Sys.Scheduler;

    private IActorRef StartQueue(TestProbe local) =>
        Sys.ActorOf(Props.Create(() => new QueueManagerActor(_settings, _spool, local.Ref, null, NullLoggerFactory.Instance)));

    private async Task<SpoolEntry> CommitAsync(DateTimeOffset? receivedAt = null, params string[] recipients)
    {
        var id = _spool.Ids.Next();
        var body = Encoding.ASCII.GetBytes("Subject: t\r\n\r\nbody\r\n");
        var envelope = new MailEnvelope(id, receivedAt ?? DateTimeOffset.UtcNow, "sender@remote.test", recipients.ToImmutableArray(),
            "127.0.0.1", "client.test", "ESMTP", null, MessageFlags.None, body.Length);
        return await _spool.CommitAsync(envelope, body);
    }

    [Fact]
    public async Task Should_send_local_recipients_to_local_delivery_and_remove_the_message_once_delivered()
    {
        var local = CreateTestProbe();
        var queue = StartQueue(local);
        var entry = await CommitAsync(null, "bob@example.test", "someone@remote.test", "carol@EXAMPLE.test");

        queue.Tell(new QueueProtocol.Enqueued(entry));
        var work = local.ExpectMsg<LocalProtocol.DeliverLocal>();
        Assert.Equal(entry.Id, work.Envelope.Id);
        Assert.Equal(new[] { 0, 2 }, work.Recipients); // the remote recipient is not local delivery's business

        local.Reply(new QueueProtocol.RecipientResults(entry.Id, [
            new RecipientResult(0, new DeliveryOutcome.Delivered("2.0.0", "ok", null)),
            new RecipientResult(2, new DeliveryOutcome.Delivered("2.0.0", "ok", null)),
        ]));

        // The remote recipient is still pending, so the message stays, with the local results recorded.
        await AwaitAssertAsync(() =>
        {
            var stored = _spool.Find(entry.Id)!;
            Assert.Equal(RecipientState.Delivered, stored.State.Recipients[0].State);
            Assert.Equal(RecipientState.Pending, stored.State.Recipients[1].State);
            Assert.Equal(RecipientState.Delivered, stored.State.Recipients[2].State);
        });
    }

    [Fact]
    public async Task Should_complete_a_message_when_every_recipient_is_final()
    {
        var local = CreateTestProbe();
        var queue = StartQueue(local);
        var entry = await CommitAsync(null, "bob@example.test");
        queue.Tell(new QueueProtocol.Enqueued(entry));
        local.ExpectMsg<LocalProtocol.DeliverLocal>();
        local.Reply(new QueueProtocol.RecipientResults(entry.Id, [new RecipientResult(0, new DeliveryOutcome.Delivered("2.0.0", "ok", null))]));
        await AwaitAssertAsync(() => Assert.False(_spool.Contains(entry.Id)));
    }

    [Fact]
    public async Task Should_deliver_once_when_a_message_is_both_in_the_start_snapshot_and_enqueued()
    {
        // A message committed just before the queue manager (re)starts is in the spool's snapshot
        // and is announced by its session as well.
        var local = CreateTestProbe();
        var entry = await CommitAsync(null, "bob@example.test");
        var queue = StartQueue(local);
        local.ExpectMsg<LocalProtocol.DeliverLocal>(d => Assert.Equal(entry.Id, d.Envelope.Id));
        queue.Tell(new QueueProtocol.Enqueued(entry));
        local.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
    }

    [Fact]
    public async Task Should_retry_a_temporary_failure_after_the_first_interval_and_record_it()
    {
        var local = CreateTestProbe();
        var queue = StartQueue(local);
        var entry = await CommitAsync(null, "bob@example.test");
        queue.Tell(new QueueProtocol.Enqueued(entry));
        local.ExpectMsg<LocalProtocol.DeliverLocal>();
        local.Reply(new QueueProtocol.RecipientResults(entry.Id, [new RecipientResult(0, new DeliveryOutcome.TempFailure("4.3.0", "disk full", null))]));

        await AwaitAssertAsync(() =>
        {
            var stored = _spool.Find(entry.Id)!;
            Assert.Equal(1, stored.State.Attempts);
            Assert.Equal("disk full", stored.State.Recipients[0].Diagnostic);
            Assert.NotNull(stored.State.NextAttemptAt);
        });
        local.ExpectNoMsg(TimeSpan.FromMilliseconds(100));

        Scheduler.Advance(TimeSpan.FromSeconds(50));
        local.ExpectNoMsg(TimeSpan.FromMilliseconds(100)); // not before the interval (1m, +up to 10% jitter)
        Scheduler.Advance(TimeSpan.FromSeconds(20));
        var retry = local.ExpectMsg<LocalProtocol.DeliverLocal>();
        Assert.Equal(new[] { 0 }, retry.Recipients);
    }

    [Fact]
    public async Task Should_turn_a_temporary_failure_past_the_queue_lifetime_into_a_final_failure()
    {
        var local = CreateTestProbe();
        var queue = StartQueue(local);
        var entry = await CommitAsync(DateTimeOffset.UtcNow - TimeSpan.FromHours(2), "bob@example.test");
        queue.Tell(new QueueProtocol.Enqueued(entry));
        local.ExpectMsg<LocalProtocol.DeliverLocal>();
        local.Reply(new QueueProtocol.RecipientResults(entry.Id, [new RecipientResult(0, new DeliveryOutcome.TempFailure("4.3.0", "disk full", null))]));
        await AwaitAssertAsync(() => Assert.False(_spool.Contains(entry.Id)));
    }

    [Fact]
    public async Task Should_pick_up_what_the_spool_recovered_when_it_starts()
    {
        var entry = await CommitAsync(null, "bob@example.test");
        _spool.Dispose();
        _spool = Spool.Spool.Open(Path.Combine(_dir, "spool"), new SpoolOptions(), NullLogger.Instance);

        var local = CreateTestProbe();
        StartQueue(local);
        var work = local.ExpectMsg<LocalProtocol.DeliverLocal>();
        Assert.Equal(entry.Id, work.Envelope.Id);
    }

    [Fact]
    public async Task Quiesce_waits_for_deliveries_in_flight()
    {
        var local = CreateTestProbe();
        var queue = StartQueue(local);
        var entry = await CommitAsync(null, "bob@example.test");
        queue.Tell(new QueueProtocol.Enqueued(entry));
        local.ExpectMsg<LocalProtocol.DeliverLocal>();

        var asker = CreateTestProbe();
        queue.Tell(new QueueProtocol.Quiesce(TimeSpan.FromMinutes(1)), asker.Ref);
        asker.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
        queue.Tell(new QueueProtocol.RecipientResults(entry.Id, [new RecipientResult(0, new DeliveryOutcome.Delivered("2.0.0", "ok", null))]), local.Ref);
        asker.ExpectMsg<Akka.Done>();
    }

    public new void Dispose()
    {
        Shutdown();
        _spool.Dispose();
        Directory.Delete(_dir, recursive: true);
        base.Dispose();
    }
}
