using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Exporters;

namespace RelayMta.Benchmarks;

/// <summary>The default config plus the memory diagnoser and GitHub-flavoured tables for RESULTS.md.</summary>
public static class MicroBenchmarkConfig
{
    public static IConfig Create() =>
        DefaultConfig.Instance
            .AddDiagnoser(MemoryDiagnoser.Default)
            .AddExporter(MarkdownExporter.GitHub);
}
