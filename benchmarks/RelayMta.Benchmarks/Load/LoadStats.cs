using System.Globalization;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace RelayMta.Benchmarks.Load;

/// <summary>
/// Carries each load iteration's numbers from the benchmark process, where they are measured, to
/// the host process, where the summary table is made. The benchmark process appends a row per
/// iteration to <c>iterations.csv</c> and the iteration's latencies to a file of their own in the
/// directory named by RELAYMTA_LOAD_STATS (set by Program, one directory per run, under
/// BenchmarkDotNet.Artifacts). The host takes, for each case, the rows of its measured iterations
/// (found from the counts of BenchmarkDotNet's measurements) and pools them.
/// </summary>
internal static class LoadStats
{
    public const string Variable = "RELAYMTA_LOAD_STATS";
    private const string Rows = "iterations.csv";

    public static string? Directory => Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } d ? d : null;

    /// <summary>Benchmark process: records one iteration.</summary>
    public static void Append(LoadResult result)
    {
        if (Directory is not { } dir) return;
        System.IO.Directory.CreateDirectory(dir);
        var rows = Path.Combine(dir, Rows);
        var sequence = Interlocked.Increment(ref _sequence);
        var latencies = $"{Key(result.Sessions, result.MessageSize)}-{Environment.ProcessId}-{sequence}.lat";
        if (result.LatenciesMs is { } ms)
        {
            var bytes = new byte[ms.Length * sizeof(float)];
            for (var i = 0; i < ms.Length; i++) BitConverter.TryWriteBytes(bytes.AsSpan(i * sizeof(float)), ms[i]);
            File.WriteAllBytes(Path.Combine(dir, latencies), bytes);
        }
        if (!File.Exists(rows)) File.WriteAllText(rows, "case,pid,sequence,latencies," + LoadResult.CsvHeader + Environment.NewLine);
        File.AppendAllText(rows, $"{Key(result.Sessions, result.MessageSize)},{Environment.ProcessId},{sequence},{latencies},{result.ToCsv()}{Environment.NewLine}");
    }

    private static int _sequence;

    public static string Key(int sessions, int size) => $"s{sessions}-b{size}";

    /// <summary>Host process: the pooled numbers of a case's measured iterations, or null when there are none.</summary>
    public static LoadAggregate? For(Summary summary, BenchmarkCase benchmarkCase)
    {
        if (Directory is not { } dir) return null;
        var report = summary[benchmarkCase];
        if (report is null) return null;
        // The benchmark runs in this order: jitting/pilot/warm-up iterations, the measured ones, then
        // (with MemoryDiagnoser) one more for the GC statistics, which BenchmarkDotNet does not list.
        var workload = report.AllMeasurements.Where(m => m.IterationMode == IterationMode.Workload).ToList();
        var measured = workload.Count(m => m.IterationStage == IterationStage.Actual);
        var before = workload.Count(m => m.IterationStage != IterationStage.Actual && m.IterationStage != IterationStage.Result);
        if (measured == 0) return null;
        var sessions = Convert.ToInt32(benchmarkCase.Parameters[nameof(LoadBenchmarks.Sessions)], CultureInfo.InvariantCulture);
        var size = Convert.ToInt32(benchmarkCase.Parameters[nameof(LoadBenchmarks.MessageSize)], CultureInfo.InvariantCulture);
        var rows = ReadRows(dir).Where(r => r.Case == Key(sessions, size)).ToList();
        if (rows.Count == 0) return null;
        // One benchmark process per case (the latest, should a case have been run twice).
        var pid = rows[^1].Pid;
        var taken = rows.Where(r => r.Pid == pid).OrderBy(r => r.Sequence).Skip(before).Take(measured).ToList();
        return LoadAggregate.Pool(taken.Select(r => (r.Result, ReadLatencies(Path.Combine(dir, r.LatencyFile)))).ToList());
    }

    private static float[] ReadLatencies(string path)
    {
        if (!File.Exists(path)) return [];
        var bytes = File.ReadAllBytes(path);
        var values = new float[bytes.Length / sizeof(float)];
        for (var i = 0; i < values.Length; i++) values[i] = BitConverter.ToSingle(bytes, i * sizeof(float));
        return values;
    }

    private static List<Row> ReadRows(string dir)
    {
        var path = Path.Combine(dir, Rows);
        if (!File.Exists(path)) return [];
        var rows = new List<Row>();
        foreach (var line in File.ReadLines(path).Skip(1))
        {
            var f = line.Split(',');
            if (f.Length < 4 + 23) continue;
            double D(int i) => double.Parse(f[4 + i], CultureInfo.InvariantCulture);
            long L(int i) => long.Parse(f[4 + i], CultureInfo.InvariantCulture);
            var result = new LoadResult
            {
                Sessions = (int)L(0), MessageSize = (int)L(1), Messages = (int)L(2), Acknowledged = (int)L(3), Delivered = L(4),
                Failures = (int)L(5), Missing = (int)L(6), Duplicates = L(7), SendSeconds = D(8), DrainSeconds = D(9),
                SpoolRecords = L(18), SpoolSyncs = L(19), OutboundConnections = L(20), AllocatedBytes = L(21) * L(2), Gen2Collections = (int)L(22),
            };
            rows.Add(new Row(f[0], int.Parse(f[1], CultureInfo.InvariantCulture), int.Parse(f[2], CultureInfo.InvariantCulture), f[3], result));
        }
        return rows;
    }

    private sealed record Row(string Case, int Pid, int Sequence, string LatencyFile, LoadResult Result);
}

/// <summary>Several iterations of one case, pooled: rates over the summed times, percentiles over all latencies.</summary>
internal sealed record LoadAggregate(int Iterations, long Messages, long Acknowledged, long Delivered, double AcceptedPerSecond, double DeliveredPerSecond,
    LatencySummary Latency, double RecordsPerSync, long AllocatedPerMessage, bool Consistent)
{
    public static LoadAggregate Pool(IReadOnlyList<(LoadResult Result, float[] LatenciesMs)> iterations)
    {
        var results = iterations.Select(i => i.Result).ToList();
        var all = iterations.SelectMany(i => i.LatenciesMs).ToArray();
        var messages = results.Sum(r => (long)r.Messages);
        var acknowledged = results.Sum(r => (long)r.Acknowledged);
        var delivered = results.Sum(r => r.Delivered);
        var send = results.Sum(r => r.SendSeconds);
        var drain = results.Sum(r => r.DrainSeconds);
        var syncs = results.Sum(r => r.SpoolSyncs);
        return new LoadAggregate(results.Count, messages, acknowledged, delivered,
            send > 0 ? acknowledged / send : 0, drain > 0 ? delivered / drain : 0,
            LatencySummary.FromMilliseconds(all), syncs > 0 ? (double)results.Sum(r => r.SpoolRecords) / syncs : 0,
            messages > 0 ? results.Sum(r => r.AllocatedBytes) / messages : 0,
            results.All(r => r.Consistent));
    }
}
