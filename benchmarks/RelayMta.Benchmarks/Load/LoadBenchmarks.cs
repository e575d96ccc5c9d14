using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Jobs;

namespace RelayMta.Benchmarks.Load;

/// <summary>
/// The in-process load benchmark: the real relay on loopback (spool with fsync on, an accept-all
/// SMTP sink as its smarthost), <see cref="Sessions"/> concurrent raw-socket client sessions, each
/// sending its share of the iteration's messages over one connection (MAIL/RCPT/DATA pipelined).
/// One operation is one iteration: every message sent and acknowledged, then delivered to the sink
/// and removed from the spool; it throws unless every acknowledged message was delivered exactly
/// once. BenchmarkDotNet's Mean is the time of a whole iteration; the custom columns (from
/// <see cref="LoadStats"/>) give messages per second and the dot-to-250 latency percentiles over
/// the measured iterations. Heavy: its own job runs 1 warm-up and 3 measured iterations.
/// </summary>
[Config(typeof(Config))]
public class LoadBenchmarks
{
    /// <summary>The only job the load benchmark runs under (Program filters out the others, e.g. from --job).</summary>
    public const string JobId = "Load";

    private LoadBed _bed = null!;

    [ParamsSource(nameof(SessionCounts))]
    public int Sessions { get; set; }

    [ParamsSource(nameof(MessageSizes))]
    public int MessageSize { get; set; }

    public static IEnumerable<int> SessionCounts => LoadProfile.Current.Sessions;

    public static IEnumerable<int> MessageSizes => LoadProfile.Current.Sizes;

    /// <summary>Messages sent in one iteration.</summary>
    public int Messages => LoadProfile.Current.MessagesPerIteration(Sessions, MessageSize);

    [GlobalSetup]
    public void Setup() => _bed = LoadBed.StartAsync(new LoadBedOptions { MessageSize = MessageSize }).GetAwaiter().GetResult();

    [GlobalCleanup]
    public void Cleanup() => _bed.DisposeAsync().AsTask().GetAwaiter().GetResult();

    [Benchmark]
    public async Task<int> Relay()
    {
        var result = await _bed.RunAsync(Sessions, Messages, LoadProfile.Current.IterationTimeout);
        LoadStats.Append(result);
        return result.Acknowledged;
    }

    private sealed class Config : ManualConfig
    {
        public Config()
        {
            // Heavy and long: no pilot, no overhead runs, a fixed count of single-invocation iterations.
            var profile = LoadProfile.Current;
            var job = Job.Default
                .WithStrategy(RunStrategy.Monitoring)
                .WithLaunchCount(1)
                .WithWarmupCount(profile.WarmupCount)
                .WithIterationCount(profile.IterationCount)
                .WithInvocationCount(1)
                .WithUnrollFactor(1)
                .WithId(JobId);
            AddColumn(LoadColumns.All);
            AddExporter(new LoadCsvExporter());
            // The benchmark process reads the profile and writes its numbers where Program said.
            foreach (var name in new[] { LoadProfile.Variable, LoadStats.Variable })
                if (Environment.GetEnvironmentVariable(name) is { Length: > 0 } value)
                    job = job.WithEnvironmentVariable(name, value);
            AddJob(job);
        }
    }
}
