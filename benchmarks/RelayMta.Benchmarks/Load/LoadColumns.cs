using System.Globalization;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace RelayMta.Benchmarks.Load;

/// <summary>The load benchmark's own columns, pooled over the measured iterations (see <see cref="LoadStats"/>).</summary>
internal static class LoadColumns
{
    public static readonly IColumn[] All =
    [
        new LoadColumn("Msgs/iter", "Messages sent per iteration (spread over the sessions, one connection each)", 0, a => N(a.Messages / a.Iterations)),
        new LoadColumn("Accepted/s", "Messages acknowledged (250 after the dot) per second, first connect to last 250, pooled over the measured iterations", 1, a => N(a.AcceptedPerSecond)),
        new LoadColumn("Delivered/s", "Messages per second through the whole pipeline: first connect until the sink has them all and the spool is empty", 2, a => N(a.DeliveredPerSecond)),
        new LoadColumn("p50 ms", "Median time from sending the end-of-data dot to reading the 250 (all measured messages pooled)", 3, a => Ms(a.Latency.P50)),
        new LoadColumn("p99 ms", "99th percentile of the dot-to-250 time", 4, a => Ms(a.Latency.P99)),
        new LoadColumn("p99.9 ms", "99.9th percentile of the dot-to-250 time", 5, a => Ms(a.Latency.P999)),
        new LoadColumn("Rec/fsync", "Spool journal records (messages, results, removals) per fdatasync: group commit at work", 6, a => a.RecordsPerSync.ToString("0.0", CultureInfo.InvariantCulture)),
        new LoadColumn("Alloc/msg", "Bytes allocated by the whole process (relay, clients, sink) per message", 7, a => Bytes(a.AllocatedPerMessage)),
        new LoadColumn("Acked=Delivered", "Every acknowledged message reached the sink exactly once, nothing left in the spool (checked in every iteration)", 8, a => a.Consistent && a.Acknowledged == a.Delivered ? $"yes ({a.Delivered})" : $"NO ({a.Acknowledged}/{a.Delivered})"),
    ];

    private static string N(double value) => value.ToString("N0", CultureInfo.InvariantCulture);

    private static string Ms(double value) => double.IsNaN(value) ? "NA" : value.ToString(value >= 100 ? "0" : value >= 10 ? "0.0" : "0.00", CultureInfo.InvariantCulture);

    private static string Bytes(long value) => value >= 10 * 1024 ? $"{value / 1024.0:0} KB" : value >= 1024 ? $"{value / 1024.0:0.0} KB" : $"{value} B";

    private sealed class LoadColumn(string name, string legend, int priority, Func<LoadAggregate, string> value) : IColumn
    {
        public string Id => "RelayMta.Load." + name;

        public string ColumnName => name;

        public bool AlwaysShow => true;

        public ColumnCategory Category => ColumnCategory.Custom;

        public int PriorityInCategory => priority;

        public bool IsNumeric => true;

        public UnitType UnitType => UnitType.Dimensionless;

        public string Legend => legend;

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) =>
            LoadStats.For(summary, benchmarkCase) is { } aggregate ? value(aggregate) : "NA";

        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

        public bool IsAvailable(Summary summary) => true;
    }
}
