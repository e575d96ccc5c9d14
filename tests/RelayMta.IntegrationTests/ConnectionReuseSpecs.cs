using RelayMta.Engine.Outbound;
using RelayMta.IntegrationTests.Infrastructure;

namespace RelayMta.IntegrationTests;

/// <summary>
/// How the relay reuses an outbound connection for the next message to the same destination, seen from
/// the remote server (a <see cref="FakeSmtpServer"/> on loopback, found through the in-test DNS server):
/// no RSET when the previous transaction has just ended cleanly, RSET when the connection sat idle longer
/// than <see cref="SmtpOutboundSession.ReuseWithoutReset"/> or the previous transaction was left
/// unfinished, and a reused connection the server closed meanwhile costs the next message nothing.
/// <para>
/// One connection per destination, kept open well past a second (the bed's default idle time-out is
/// 300 ms). Where a test needs the next message to be waiting when a transaction ends, the server holds
/// its reply to the first message until the relay has accepted the next one (<see cref="FirstCallHold"/>),
/// instead of counting on the relay being quick.
/// </para>
/// </summary>
public sealed class ConnectionReuseSpecs
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private const string OneLongLivedConnection = """
        relay-mta.outbound {
          max-connections-per-destination = 1
          connection-idle-timeout = 10s
        }
        """;

    [Fact]
    public async Task Should_send_the_next_message_on_the_same_connection_without_RSET_when_the_last_transaction_just_ended()
    {
        await using var bed = await OutboundBed.StartAsync(OneLongLivedConnection);
        using var hold = new FirstCallHold();
        var mx = bed.Mx(2, new FakeSmtpBehavior
        {
            OnDataEnd = _ =>
            {
                hold.Pass();
                return null;
            },
        });
        bed.Route("dest.test", (10, 2));

        await bed.SendAsync("alice@example.test", ["bob@dest.test"], "first");
        await hold.Reached.WaitAsync(Wait); // the first message is at the server, its 250 held back
        await bed.SendAsync("alice@example.test", ["carol@dest.test"], "second");
        hold.Release();

        var messages = await mx.WaitForMessagesAsync(2, Wait);
        Assert.Equal(["bob@dest.test", "carol@dest.test"], messages.SelectMany(m => m.Recipients));
        Assert.All(messages, m => Assert.Equal(1, m.ConnectionId));
        Assert.Equal(1, mx.Connections);
        Assert.Equal(["EHLO", "MAIL", "RCPT", "DATA", "MAIL", "RCPT", "DATA"], Verbs(mx.CommandsOn(1)));
        Assert.True(await bed.SpoolEmptiesAsync(Wait));
    }

    [Fact]
    public async Task Should_send_RSET_before_MAIL_when_the_connection_sat_idle_longer_than_ReuseWithoutReset()
    {
        await using var bed = await OutboundBed.StartAsync(OneLongLivedConnection);
        var mx = bed.Mx(2);
        bed.Route("dest.test", (10, 2));

        await bed.SendAsync("alice@example.test", ["bob@dest.test"], "first");
        await mx.WaitForMessagesAsync(1, Wait);
        // Gone from the spool: the relay has read the 250, so its session's idle time starts no later than now.
        Assert.True(await bed.SpoolEmptiesAsync(Wait));
        // ReuseWithoutReset is a constant (1 s), so the only way past it is to let that much time go by. This
        // wait asserts nothing: it is a lower bound on the idle time, which only makes it longer.
        await Task.Delay(SmtpOutboundSession.ReuseWithoutReset + TimeSpan.FromMilliseconds(500));
        Assert.Equal(1, mx.CurrentConnections); // still open: the idle time-out is 10 s

        await bed.SendAsync("alice@example.test", ["carol@dest.test"], "second");

        var messages = await mx.WaitForMessagesAsync(2, Wait);
        Assert.All(messages, m => Assert.Equal(1, m.ConnectionId));
        Assert.Equal(1, mx.Connections);
        Assert.Equal(["EHLO", "MAIL", "RCPT", "DATA", "RSET", "MAIL", "RCPT", "DATA"], Verbs(mx.CommandsOn(1)));
    }

    [Fact]
    public async Task Should_send_RSET_before_MAIL_at_once_when_the_last_transaction_was_left_unfinished()
    {
        await using var bed = await OutboundBed.StartAsync(OneLongLivedConnection);
        using var hold = new FirstCallHold();
        var mx = bed.Mx(2, new FakeSmtpBehavior
        {
            // The only recipient of the first message is refused: with PIPELINING the DATA already sent gets 554,
            // and the transaction never reaches an end of data.
            OnRcpt = r =>
            {
                hold.Pass();
                return r == "nobody@dest.test" ? "550 5.1.1 no such user" : null;
            },
        });
        bed.Route("dest.test", (10, 2));

        await bed.SendAsync("alice@example.test", ["nobody@dest.test"], "refused");
        await hold.Reached.WaitAsync(Wait);
        await bed.SendAsync("alice@example.test", ["carol@dest.test"], "second");
        hold.Release();

        var message = Assert.Single(await mx.WaitForMessagesAsync(1, Wait));
        Assert.Equal(["carol@dest.test"], message.Recipients);
        Assert.Equal(1, message.ConnectionId);
        Assert.Equal(1, mx.Connections);
        Assert.Equal(["EHLO", "MAIL", "RCPT", "DATA", "RSET", "MAIL", "RCPT", "DATA"], Verbs(mx.CommandsOn(1)));
        await bed.WaitForBounceAsync("alice"); // the refused one, bounced to its sender
    }

    [Fact]
    public async Task Should_deliver_the_next_message_at_once_on_a_new_connection_when_the_server_closed_the_reused_one_after_its_250()
    {
        // A deferral would wait an hour: delivered within the test means delivered by this attempt.
        await using var bed = await OutboundBed.StartAsync(OneLongLivedConnection + "\nrelay-mta.outbound.retry-intervals = [1h]");
        using var hold = new FirstCallHold();
        var mx = bed.Mx(2, new FakeSmtpBehavior
        {
            OnDataEnd = _ =>
            {
                hold.Pass();
                return null;
            },
            // 250 to the first message, then FIN: no 421, nothing the relay could have read before reusing it.
            CloseAfterDataEnd = m => m.ConnectionId == 1,
        });
        bed.Route("dest.test", (10, 2));

        await bed.SendAsync("alice@example.test", ["bob@dest.test"], "first");
        await hold.Reached.WaitAsync(Wait);
        await bed.SendAsync("alice@example.test", ["carol@dest.test"], "second");
        hold.Release();

        var deferred = bed.Relay.Runtime.Metrics.Deliveries.WithLabels("deferred", "remote");
        await Eventually.TrueAsync(() => mx.Messages.Count >= 2 || deferred.Value > 0, Wait,
            () => $"{mx.Messages.Count} messages delivered, none deferred; commands: {string.Join(" | ", mx.Commands)}");
        Assert.Equal(0.0, deferred.Value);
        var messages = mx.Messages;
        Assert.Equal(["bob@dest.test", "carol@dest.test"], messages.SelectMany(m => m.Recipients));
        Assert.Equal([1, 2], messages.Select(m => m.ConnectionId));
        Assert.Equal(2, mx.Connections);
        // The server stopped reading commands on connection 1 after its 250 (what the relay sent after that was discarded).
        Assert.Equal(["EHLO", "MAIL", "RCPT", "DATA"], Verbs(mx.CommandsOn(1)));
        Assert.Equal(["EHLO", "MAIL", "RCPT", "DATA"], Verbs(mx.CommandsOn(2)));
        Assert.True(await bed.SpoolEmptiesAsync(Wait));
        Assert.Equal(2.0, bed.Relay.Runtime.Metrics.Deliveries.WithLabels("sent", "remote").Value);
        Assert.Equal(0.0, deferred.Value);
    }

    private static string[] Verbs(IEnumerable<string> commands) => commands.Select(c => c.Split(' ')[0]).ToArray();

    /// <summary>
    /// For a fake server's hook: the first call blocks (the server's reply with it) until <see cref="Release"/>,
    /// or for 10 s at most; later calls go straight through. Disposing releases it.
    /// </summary>
    private sealed class FirstCallHold : IDisposable
    {
        private readonly TaskCompletionSource _reached = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _calls;

        /// <summary>Completes when the first call is being held.</summary>
        public Task Reached => _reached.Task;

        public void Pass()
        {
            if (Interlocked.Increment(ref _calls) != 1) return;
            _reached.TrySetResult();
            _released.Task.Wait(Wait);
        }

        public void Release() => _released.TrySetResult();

        public void Dispose() => Release();
    }
}
