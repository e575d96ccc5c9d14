using System.Diagnostics;
using System.Globalization;
using System.Net;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using RelayMta.Benchmarks.Infrastructure;
using RelayMta.Engine.Hosting;

namespace RelayMta.Benchmarks.Load;

/// <summary>How the relay under load is set up.</summary>
internal sealed record LoadBedOptions
{
    /// <summary>Content size of every message.</summary>
    public int MessageSize { get; init; } = 1024;

    /// <summary>outbound.max-connections-per-destination; null keeps the default (20).</summary>
    public int? OutboundConnections { get; init; }

    /// <summary>Log level of the relay's console log (Warning keeps per-message lines out of the results).</summary>
    public LogLevel LogLevel { get; init; } = LogLevel.Warning;

    /// <summary>Where the spool and mailboxes go; a fresh directory under the temp root when null.</summary>
    public string? Directory { get; init; }
}

/// <summary>
/// The whole pipeline on loopback: the real relay, started in process through
/// <see cref="RelayMtaHost.Create"/> as the executable and the integration tests start it (free
/// port, spool in a temporary directory with fsync on, admin off, per-address limits raised), and
/// an accept-all <see cref="SmtpSink"/> as its smarthost, so every message is accepted, spooled,
/// delivered and removed. <see cref="RunAsync"/> runs one load iteration and checks that every
/// acknowledged message reached the sink.
/// </summary>
internal sealed class LoadBed : IAsyncDisposable
{
    /// <summary>Longest any one socket operation may wait.</summary>
    public static readonly TimeSpan OperationTimeout = TimeSpan.FromSeconds(60);

    private readonly string _dir;
    private readonly bool _ownsDir;
    private readonly SmtpSink _sink;
    private readonly IHost _host;
    private readonly RelayMtaRuntime _runtime;
    private long _nextId = 1;

    private LoadBed(string dir, bool ownsDir, SmtpSink sink, IHost host, RelayMtaRuntime runtime, MessageTemplate message)
    {
        _dir = dir;
        _ownsDir = ownsDir;
        _sink = sink;
        _host = host;
        _runtime = runtime;
        Message = message;
    }

    public MessageTemplate Message { get; }

    public IPEndPoint Relay => _runtime.BoundEndpoints[0];

    public string Directory => _dir;

    public static async Task<LoadBed> StartAsync(LoadBedOptions options)
    {
        var ownsDir = options.Directory is null;
        var dir = options.Directory ?? BenchDirectories.Create("load");
        System.IO.Directory.CreateDirectory(dir);
        var sink = SmtpSink.Start();
        try
        {
            var outbound = options.OutboundConnections is { } n
                ? $"outbound.max-connections-per-destination = {n}\n  outbound.max-connections = {Math.Max(100, n)}"
                : "";
            // Loopback is in relay.allowed-networks, which the per-address limits exempt anyway;
            // they are raised too so that a change there cannot throttle the benchmark unnoticed.
            var hocon = $$"""
                relay-mta {
                  hostname = "relay.bench"
                  listen = ["127.0.0.1:0"]
                  spool-dir = "{{Escape(Path.Combine(dir, "spool"))}}"
                  local { domains = ["localhost"], mailbox-root = "{{Escape(Path.Combine(dir, "mail"))}}" }
                  relay.smarthost = "127.0.0.1:{{sink.Endpoint.Port.ToString(CultureInfo.InvariantCulture)}}"
                  limits {
                    max-sessions = 20000
                    max-sessions-per-ip = 20000
                    connections-per-ip-per-minute = 0
                    messages-per-ip-per-minute = 0
                  }
                  {{outbound}}
                  admin.listen = ""
                  shutdown.drain-timeout = 5s
                }
                """;
            var config = ConfigLoader.LoadText(hocon, "load-benchmark.hocon");
            var (host, runtime) = RelayMtaHost.Create(config, logging =>
            {
                RelayMtaHost.DefaultLogging(logging);
                logging.SetMinimumLevel(options.LogLevel);
            });
            using (var start = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
                await host.StartAsync(start.Token).ConfigureAwait(false);
            return new LoadBed(dir, ownsDir, sink, host, runtime, new MessageTemplate(options.MessageSize));
        }
        catch
        {
            await sink.DisposeAsync().ConfigureAwait(false);
            if (ownsDir) TryDelete(dir);
            throw;
        }
    }

    /// <summary>
    /// One iteration: <paramref name="sessions"/> concurrent client sessions send
    /// <paramref name="messages"/> messages in all; then waits (bounded) until the sink has every
    /// acknowledged message and the spool is empty. Throws when a message was refused or lost.
    /// </summary>
    public async Task<LoadResult> RunAsync(int sessions, int messages, TimeSpan timeout)
    {
        if (sessions < 1 || messages < sessions) throw new ArgumentException("need at least one message per session");
        var plan = new LoadPlan(Relay, Message, sessions, messages, _nextId, OperationTimeout);
        _nextId += messages;
        var run = _sink.BeginRun(plan.FirstId, messages);
        var (commitsBefore, syncsBefore) = _runtime.Spool.CommitCounters;
        var connectionsBefore = _sink.ConnectionsAccepted;
        var allocatedBefore = GC.GetTotalAllocatedBytes(precise: false);
        var gen2Before = GC.CollectionCount(2);

        using var deadline = new CancellationTokenSource(timeout);
        var clients = new SmtpLoadClient[sessions];
        for (var s = 0; s < sessions; s++) clients[s] = new SmtpLoadClient(plan, s);
        var started = Stopwatch.GetTimestamp();
        try
        {
            var tasks = new Task[sessions];
            for (var s = 0; s < sessions; s++)
            {
                var client = clients[s];
                tasks[s] = Task.Run(() => client.RunAsync(deadline.Token));
            }
            await Task.WhenAll(tasks).ConfigureAwait(false);
        }
        finally
        {
            foreach (var client in clients) client.Dispose();
        }
        var sent = Stopwatch.GetTimestamp();

        var acknowledged = plan.Acknowledged.Count(a => a);
        // Delivery is asynchronous: wait until the sink has them all and the spool has removed them.
        while (run.Delivered < acknowledged || _runtime.Spool.Count > 0)
        {
            if (deadline.IsCancellationRequested) break;
            await Task.Delay(2).ConfigureAwait(false);
        }
        var drained = Stopwatch.GetTimestamp();
        var (commitsAfter, syncsAfter) = _runtime.Spool.CommitCounters;

        var latencies = LatencySummary.Milliseconds(plan);
        var result = new LoadResult
        {
            Sessions = sessions,
            MessageSize = Message.Size,
            Messages = messages,
            Acknowledged = acknowledged,
            Failures = plan.Failures,
            Delivered = run.Delivered,
            Duplicates = run.Duplicates,
            Strays = run.Strays,
            Missing = Enumerable.Range(0, messages).Count(i => plan.Acknowledged[i] && run.Seen(i) == 0),
            SpoolLeft = _runtime.Spool.Count,
            SendSeconds = Stopwatch.GetElapsedTime(started, plan.LastAcknowledgedAt > 0 ? plan.LastAcknowledgedAt : sent).TotalSeconds,
            DrainSeconds = Stopwatch.GetElapsedTime(started, drained).TotalSeconds,
            LatenciesMs = latencies,
            Latency = LatencySummary.FromMilliseconds(latencies),
            SpoolRecords = commitsAfter - commitsBefore,
            SpoolSyncs = syncsAfter - syncsBefore,
            OutboundConnections = _sink.ConnectionsAccepted - connectionsBefore,
            AllocatedBytes = GC.GetTotalAllocatedBytes(precise: false) - allocatedBefore,
            Gen2Collections = GC.CollectionCount(2) - gen2Before,
        };
        result.ThrowIfBroken(plan.FailureSamples, deadline.IsCancellationRequested, timeout);
        return result;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await _host.StopAsync(stop.Token).ConfigureAwait(false);
        }
        finally
        {
            _host.Dispose();
            _runtime.Dispose();
            await _sink.DisposeAsync().ConfigureAwait(false);
            if (_ownsDir) TryDelete(_dir);
        }
    }

    private static string Escape(string path) => path.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal);

    private static void TryDelete(string dir)
    {
        try
        {
            System.IO.Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
