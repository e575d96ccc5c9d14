using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;

namespace RelayMta.Benchmarks;

/// <summary>
/// The default config (which already exports GitHub-flavoured markdown, CSV and HTML into
/// BenchmarkDotNet.Artifacts/results) plus the memory diagnoser, for every benchmark.
/// </summary>
public static class MicroBenchmarkConfig
{
    public static IConfig Create() =>
        DefaultConfig.Instance
            .AddDiagnoser(MemoryDiagnoser.Default);
}
