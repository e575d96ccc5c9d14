using System.Collections.Immutable;
using Akka.Actor;
using Akka.TestKit.Xunit2;
using Microsoft.Extensions.Logging.Abstractions;
using RelayMta.Engine.Hosting;
using RelayMta.Engine.Outbound;
using RelayMta.Engine.Queue;
using RelayMta.Engine.Spool;

namespace RelayMta.Engine.Tests.Outbound;

/// <summary>The outbound queue, its destinations and their delivery agents, over a stub transport.</summary>
public sealed class OutboundActorSpecs : TestKit
{
    private static RelayMtaSettings Settings(string hocon = "") => ConfigLoader.LoadText($$"""
        relay-mta.outbound {
          retry-intervals = [1s]
          connection-idle-timeout = 200ms
        }
        {{hocon}}
        """, "test.hocon").Settings;

    private IActorRef StartOutbound(RelayMtaSettings settings, StubTransport transport, IActorRef queueManager)
    {
        var context = new OutboundContext(settings, new MxResolver(settings.Dns, NullLogger.Instance), transport,
            new RetrySchedule(settings.Outbound.RetryIntervals, settings.Outbound.MaxQueueLifetime), NullLogger.Instance);
        return Sys.ActorOf(Props.Create(() => new OutboundActor(context, queueManager)), "outbound-" + Guid.NewGuid().ToString("N")[..6]);
    }

    private static int _ids;

    private static DeliveryJob Job(params string[] recipients)
    {
        var id = new QueueId("TEST" + Interlocked.Increment(ref _ids).ToString("D9"));
        var envelope = new MailEnvelope(id, DateTimeOffset.UtcNow, "sender@example.test", recipients.ToImmutableArray(), "127.0.0.1",
            "client.test", "ESMTP", null, MessageFlags.None, 10);
        return new DeliveryJob(envelope, Enumerable.Range(0, recipients.Length).ToImmutableArray(), 0, DateTimeOffset.UtcNow);
    }

    [Fact]
    public void A_crashing_agent_is_restarted_and_the_message_it_held_is_still_delivered_once()
    {
        var transport = new StubTransport { OnOpen = n => n == 1 ? new InvalidOperationException("bug in the agent") : null };
        var queue = CreateTestProbe();
        var outbound = StartOutbound(Settings(), transport, queue.Ref);

        var job = Job("bob@[127.0.0.1]");
        outbound.Tell(new OutboundProtocol.Deliver(job, "[127.0.0.1]"), queue.Ref);

        var results = queue.ExpectMsg<QueueProtocol.RecipientResults>(TimeSpan.FromSeconds(10));
        Assert.Equal(job.Id, results.Id);
        Assert.IsType<DeliveryOutcome.Delivered>(Assert.Single(results.Results).Outcome);
        Assert.Equal(2, transport.Opens); // the crash, then the retry
        Assert.Single(transport.Deliveries);
        queue.ExpectNoMsg(TimeSpan.FromMilliseconds(300)); // no second result: not counted twice
    }

    [Fact]
    public void Per_destination_connection_limit_holds_under_a_burst()
    {
        var transport = new StubTransport { TransactionTime = TimeSpan.FromMilliseconds(20) };
        var queue = CreateTestProbe();
        var outbound = StartOutbound(Settings("relay-mta.outbound.max-connections-per-destination = 3"), transport, queue.Ref);

        var jobs = Enumerable.Range(0, 40).Select(i => Job($"user{i}@[127.0.0.1]")).ToList();
        foreach (var job in jobs) outbound.Tell(new OutboundProtocol.Deliver(job, "[127.0.0.1]"), queue.Ref);

        var delivered = queue.ReceiveN(jobs.Count, TimeSpan.FromSeconds(20)).Cast<QueueProtocol.RecipientResults>().ToList();
        Assert.Equal(jobs.Select(j => j.Id).OrderBy(x => x.Value), delivered.Select(d => d.Id).OrderBy(x => x.Value));
        Assert.InRange(transport.MaxConcurrentSessions, 1, 3);
        Assert.Equal(3, transport.MaxConcurrentSessions); // the burst did use the whole budget
        Assert.True(transport.Opens < jobs.Count, "connections are reused for further messages");
    }

    [Fact]
    public void The_relay_wide_connection_limit_holds_across_destinations()
    {
        var transport = new StubTransport { TransactionTime = TimeSpan.FromMilliseconds(20) };
        var queue = CreateTestProbe();
        var outbound = StartOutbound(Settings("""
            relay-mta.outbound.max-connections-per-destination = 5
            relay-mta.outbound.max-connections = 4
            """), transport, queue.Ref);

        var count = 0;
        foreach (var destination in new[] { "[127.0.0.1]", "[127.0.0.2]", "[127.0.0.3]" })
        {
            for (var i = 0; i < 15; i++)
            {
                outbound.Tell(new OutboundProtocol.Deliver(Job($"u{i}@{destination}"), destination), queue.Ref);
                count++;
            }
        }

        queue.ReceiveN(count, TimeSpan.FromSeconds(30));
        Assert.InRange(transport.MaxConcurrentSessions, 1, 4);
        Assert.Equal(3, transport.Deliveries.Select(d => d.Address).Distinct().Count()); // no destination was starved
    }

    [Fact]
    public void A_deferred_recipient_stays_with_its_destination_and_is_tried_again_after_the_interval()
    {
        var attempts = 0;
        var transport = new StubTransport
        {
            Outcome = (_, _) => Interlocked.Increment(ref attempts) == 1
                ? new DeliveryOutcome.TempFailure("4.2.1", "450 4.2.1 busy", "stub.test")
                : new DeliveryOutcome.Delivered("2.0.0", "250 OK", "stub.test"),
        };
        var queue = CreateTestProbe();
        var outbound = StartOutbound(Settings(), transport, queue.Ref);
        var job = Job("bob@[127.0.0.1]");
        outbound.Tell(new OutboundProtocol.Deliver(job, "[127.0.0.1]"), queue.Ref);

        var first = queue.ExpectMsg<QueueProtocol.RecipientResults>(TimeSpan.FromSeconds(10));
        Assert.IsType<DeliveryOutcome.TempFailure>(Assert.Single(first.Results).Outcome);
        Assert.NotNull(first.NextAttemptAt);
        var second = queue.ExpectMsg<QueueProtocol.RecipientResults>(TimeSpan.FromSeconds(10));
        Assert.IsType<DeliveryOutcome.Delivered>(Assert.Single(second.Results).Outcome);
        Assert.True(DateTimeOffset.UtcNow >= first.NextAttemptAt!.Value - TimeSpan.FromMilliseconds(50));
    }

    [Fact]
    public async Task Repeated_connection_failures_open_the_circuit_and_the_destination_stops_trying()
    {
        var transport = new StubTransport { OnOpen = _ => new OutboundConnectException("4.4.1", "connection refused") };
        var queue = CreateTestProbe();
        var outbound = StartOutbound(Settings("""
            relay-mta.outbound.circuit-breaker { failures = 3, break = 1m }
            relay-mta.outbound.max-connections-per-destination = 1
            """), transport, queue.Ref);

        for (var i = 0; i < 6; i++) outbound.Tell(new OutboundProtocol.Deliver(Job($"u{i}@[127.0.0.1]"), "[127.0.0.1]"), queue.Ref);

        // One connection at a time: three attempts fail and are deferred; the third opens the circuit.
        var results = queue.ReceiveN(3, TimeSpan.FromSeconds(10)).Cast<QueueProtocol.RecipientResults>().ToList();
        Assert.All(results, r => Assert.IsType<DeliveryOutcome.TempFailure>(Assert.Single(r.Results).Outcome));
        Assert.Equal(3, transport.Opens);

        // The other three wait out the break untried (and uncounted), and so do the deferred ones.
        queue.ExpectNoMsg(TimeSpan.FromSeconds(2));
        Assert.Equal(3, transport.Opens);
        var status = await outbound.Ask<OutboundProtocol.OutboundStatus>(OutboundProtocol.GetStatus.Instance, TimeSpan.FromSeconds(5));
        var destination = Assert.Single(status.Destinations);
        Assert.True(destination.CircuitOpen);
        Assert.Equal(6, destination.Messages);
        Assert.Contains("connection refused", destination.LastError);
    }
}
