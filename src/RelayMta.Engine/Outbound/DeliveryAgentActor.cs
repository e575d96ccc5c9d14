using System.Collections.Immutable;
using Akka.Actor;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.CircuitBreaker;
using RelayMta.Engine.Hosting;
using RelayMta.Engine.Queue;

namespace RelayMta.Engine.Outbound;

/// <summary>
/// Owns one outbound SMTP connection for a destination. Its parent, the <see cref="DestinationActor"/>,
/// sends it <see cref="OutboundProtocol.Work"/>; it connects (trying the route's hosts and addresses
/// in order, through the destination's circuit breaker), runs the transaction, and answers
/// <see cref="OutboundProtocol.WorkDone"/>. It then offers itself for more
/// (<see cref="OutboundProtocol.AgentIdle"/>), reusing the connection (RSET when it sat idle or a transaction was left unfinished), until the message
/// cap or the idle time-out closes it. If it crashes, supervision restarts it and the job it held
/// goes back to the destination (<see cref="PreRestart"/>): retried, never lost, not counted twice.
/// </summary>
internal sealed class DeliveryAgentActor : ReceiveActor, IWithTimers
{
    private readonly AgentContext _context;
    private IOutboundSession? _session;
    private DeliveryJob? _current;
    private int _sent;

    public DeliveryAgentActor(AgentContext context)
    {
        _context = context;
        ReceiveAsync<OutboundProtocol.Work>(async work =>
        {
            Timers.Cancel("idle");
            _current = work.Job;
            var done = await DeliverAsync(work.Job).ConfigureAwait(true);
            _current = null;
            Context.Parent.Tell(done);
            if (_session is { Usable: true } && _sent < _context.Settings.MaxMessagesPerConnection)
            {
                Context.Parent.Tell(new OutboundProtocol.AgentIdle());
                Timers.StartSingleTimer("idle", IdleTimeout.Instance, _context.Settings.ConnectionIdleTimeout);
            }
            else
            {
                await CloseAsync().ConfigureAwait(true);
                Context.Stop(Self);
            }
        });
        ReceiveAsync<IdleTimeout>(async _ =>
        {
            await CloseAsync().ConfigureAwait(true);
            Context.Stop(Self);
        });
    }

    public ITimerScheduler Timers { get; set; } = null!;

    protected override void PreRestart(Exception reason, object message)
    {
        if (_current is not null) Context.Parent.Tell(new OutboundProtocol.AgentCrashed(_current, reason));
        _current = null;
        _ = _session?.DisposeAsync().AsTask();
        _session = null;
        // Children none; timers are cancelled by the restart itself.
    }

    protected override void PostRestart(Exception reason)
    {
        base.PostRestart(reason);
        Context.Parent.Tell(new OutboundProtocol.AgentIdle());
    }

    protected override void PostStop() => _ = _session?.DisposeAsync().AsTask();

    private async Task<OutboundProtocol.WorkDone> DeliverAsync(DeliveryJob job)
    {
        var ct = CancellationToken.None;
        if (_session is not null && _sent > 0 && !await _session.ResetAsync(ct).ConfigureAwait(true))
        {
            await CloseAsync().ConfigureAwait(true);
        }

        var reused = _session is not null;
        if (await OpenAsync(job, ct).ConfigureAwait(true) is { } failed) return failed;

        var result = await _session!.SendAsync(job, ct).ConfigureAwait(true);
        if (reused && result.LostBeforeMailReply)
        {
            // The reused connection was gone before the server took anything (closed while it sat
            // between transactions): once more on a new one, as if it had been found closed.
            await CloseAsync().ConfigureAwait(true);
            if (await OpenAsync(job, ct).ConfigureAwait(true) is { } failedAgain) return failedAgain;
            result = await _session!.SendAsync(job, ct).ConfigureAwait(true);
        }
        _sent++;
        return new OutboundProtocol.WorkDone(job, result.Results, ConnectionFailed: false, null) { RemoteMta = _session.RemoteMta, Tls = _session.Tls };
    }

    /// <summary>Connects when there is no session; null when there is one, else the answer for the job.</summary>
    private async Task<OutboundProtocol.WorkDone?> OpenAsync(DeliveryJob job, CancellationToken ct)
    {
        if (_session is not null) return null;
        var (session, failure, notAttempted) = await ConnectAsync(ct).ConfigureAwait(true);
        if (session is null)
            return new OutboundProtocol.WorkDone(job, notAttempted ? [] : AllRecipients(job, failure!), ConnectionFailed: true, failure!.Diagnostic)
            {
                NotAttempted = notAttempted,
            };
        _session = session;
        _sent = 0;
        if (session.Tls is not null) _context.Metrics?.TlsSessions.WithLabels("outbound").Inc();
        return null;
    }

    /// <summary>
    /// RFC 5321 5.1: try each host in order and each of its addresses; a refused connection, a
    /// time-out, or a 4xx/5xx greeting means the next one. Every try goes through the circuit breaker.
    /// </summary>
    private async Task<(IOutboundSession? Session, DeliveryOutcome.TempFailure? Failure, bool NotAttempted)> ConnectAsync(CancellationToken ct)
    {
        OutboundConnectException? last = null;
        foreach (var host in _context.Route)
        {
            foreach (var address in host.Addresses)
            {
                var tls = _context.Tls;
                while (true)
                {
                    try
                    {
                        var session = await _context.Circuit.ExecuteAsync(
                            async token => await _context.Transport.OpenAsync(host, address, _context.Port, tls, _context.Credentials, token).ConfigureAwait(false),
                            ct).ConfigureAwait(true);
                        return (session, null, false);
                    }
                    catch (BrokenCircuitException)
                    {
                        // Not an attempt: the destination holds the job until the circuit lets it through.
                        return (null, new DeliveryOutcome.TempFailure("4.4.1",
                            $"delivery to {_context.Destination} paused after repeated connection failures" + (last is null ? "" : ": " + last.Diagnostic), null), last is null);
                    }
                    catch (OutboundConnectException e) when (e.TlsFailed && tls == TlsLevel.May && _context.Credentials is null)
                    {
                        // Opportunistic TLS: a failed handshake means plain text, as Postfix's "may" level does.
                        _context.Log.LogWarning("{Destination}: {Error}; retrying {Host} without TLS", _context.Destination, e.Diagnostic, host.Name);
                        tls = TlsLevel.None;
                    }
                    catch (OutboundConnectException e)
                    {
                        _context.Log.LogInformation("{Destination}: {Error}", _context.Destination, e.Diagnostic);
                        last = e;
                        break;
                    }
                }
            }
        }
        return (null, new DeliveryOutcome.TempFailure(last?.Status.StartsWith('5') == true ? "4.4.1" : last?.Status ?? "4.4.1",
            "no host of " + _context.Destination + " could be reached; last error: " + (last?.Diagnostic ?? "no addresses"), null), false);
    }

    private async Task CloseAsync()
    {
        if (_session is null) return;
        var session = _session;
        _session = null;
        await session.QuitAsync(CancellationToken.None).ConfigureAwait(true);
        await session.DisposeAsync().ConfigureAwait(true);
    }

    private static ImmutableArray<RecipientResult> AllRecipients(DeliveryJob job, DeliveryOutcome outcome) =>
        job.Recipients.Select(i => new RecipientResult(i, outcome)).ToImmutableArray();

    private sealed record IdleTimeout
    {
        public static readonly IdleTimeout Instance = new();
    }
}

/// <summary>What an agent needs: where to go, how, and under which limits.</summary>
internal sealed record AgentContext(
    string Destination,
    IReadOnlyList<RemoteHost> Route,
    int Port,
    TlsLevel Tls,
    Credentials? Credentials,
    IOutboundTransport Transport,
    ResiliencePipeline Circuit,
    Hosting.OutboundSettings Settings,
    ILogger Log,
    Diagnostics.RelayMetrics? Metrics = null);
