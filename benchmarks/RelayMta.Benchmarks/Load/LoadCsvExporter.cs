using BenchmarkDotNet.Exporters;
using BenchmarkDotNet.Loggers;
using BenchmarkDotNet.Reports;

namespace RelayMta.Benchmarks.Load;

/// <summary>
/// Writes <c>&lt;title&gt;-load.csv</c> next to the other reports: per case, the load numbers pooled
/// over the measured iterations (the per-iteration rows and latencies stay in
/// BenchmarkDotNet.Artifacts/load-stats/&lt;run&gt;/).
/// </summary>
internal sealed class LoadCsvExporter : ExporterBase
{
    protected override string FileExtension => "csv";

    protected override string FileNameSuffix => "-load";

    public override void ExportToLog(Summary summary, ILogger logger)
    {
        logger.WriteLine("sessions,message_size,iterations,messages,acknowledged,delivered,consistent,accepted_per_s,delivered_per_s," +
                         "p50_ms,p90_ms,p99_ms,p999_ms,max_ms,mean_ms,records_per_fsync,allocated_bytes_per_msg,mean_iteration_s");
        foreach (var benchmarkCase in summary.BenchmarksCases)
        {
            if (LoadStats.For(summary, benchmarkCase) is not { } a) continue;
            var p = benchmarkCase.Parameters;
            var mean = summary[benchmarkCase]?.ResultStatistics?.Mean / 1e9 ?? double.NaN;
            logger.WriteLine(string.Join(',',
                p[nameof(LoadBenchmarks.Sessions)], p[nameof(LoadBenchmarks.MessageSize)], a.Iterations, a.Messages, a.Acknowledged, a.Delivered,
                a.Consistent ? "yes" : "no", LoadResult.F(a.AcceptedPerSecond, "0.0"), LoadResult.F(a.DeliveredPerSecond, "0.0"),
                LoadResult.F(a.Latency.P50, "0.000"), LoadResult.F(a.Latency.P90, "0.000"), LoadResult.F(a.Latency.P99, "0.000"),
                LoadResult.F(a.Latency.P999, "0.000"), LoadResult.F(a.Latency.Max, "0.000"), LoadResult.F(a.Latency.Mean, "0.000"),
                LoadResult.F(a.RecordsPerSync, "0.00"), a.AllocatedPerMessage, LoadResult.F(mean, "0.000")));
        }
    }
}
