using System.Globalization;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace RelayMta.Benchmarks.Infrastructure;

/// <summary>
/// MB/s (10^6 bytes per second) of one operation that handles the number of bytes held by the
/// benchmark parameter <c>parameterName</c>, from the mean time per operation.
/// </summary>
public sealed class ThroughputColumn(string parameterName) : IColumn
{
    public string Id => nameof(ThroughputColumn) + "." + parameterName;

    public string ColumnName => "MB/s";

    public bool AlwaysShow => true;

    public ColumnCategory Category => ColumnCategory.Custom;

    public int PriorityInCategory => 0;

    public bool IsNumeric => true;

    public UnitType UnitType => UnitType.Dimensionless;

    public string Legend => $"Throughput: {parameterName} bytes divided by the mean time per operation, in 10^6 bytes per second";

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var meanNs = summary[benchmarkCase]?.ResultStatistics?.Mean;
        var bytes = benchmarkCase.Parameters.Items.FirstOrDefault(p => p.Name == parameterName)?.Value;
        if (meanNs is not > 0 || bytes is null) return "NA";
        var megabytesPerSecond = Convert.ToDouble(bytes, CultureInfo.InvariantCulture) / meanNs.Value * 1e3;
        return megabytesPerSecond.ToString(megabytesPerSecond >= 100 ? "N0" : "N1", CultureInfo.InvariantCulture);
    }

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

    public bool IsAvailable(Summary summary) => true;
}
