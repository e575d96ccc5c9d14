using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace RelayMta.Benchmarks.Load;

/// <summary>Percentiles of the time from sending the end-of-data dot to reading the relay's 250, in milliseconds.</summary>
internal sealed record LatencySummary(double P50, double P90, double P99, double P999, double Max, double Mean)
{
    public static readonly LatencySummary Empty = new(double.NaN, double.NaN, double.NaN, double.NaN, double.NaN, double.NaN);

    /// <summary>The latencies of the acknowledged messages, in milliseconds.</summary>
    public static float[] Milliseconds(LoadPlan plan)
    {
        var ms = new List<float>(plan.Messages);
        for (var i = 0; i < plan.Messages; i++)
            if (plan.Acknowledged[i]) ms.Add((float)(plan.LatencyTicks[i] * 1000.0 / Stopwatch.Frequency));
        return ms.ToArray();
    }

    public static LatencySummary FromMilliseconds(float[] values)
    {
        if (values.Length == 0) return Empty;
        var sorted = (float[])values.Clone();
        Array.Sort(sorted);
        // Nearest-rank percentile.
        double At(double p) => sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];
        return new LatencySummary(At(0.50), At(0.90), At(0.99), At(0.999), sorted[^1], sorted.Average());
    }
}

/// <summary>What one load iteration did.</summary>
internal sealed record LoadResult
{
    public int Sessions { get; init; }
    public int MessageSize { get; init; }
    public int Messages { get; init; }

    /// <summary>Messages the relay answered 250 after the dot.</summary>
    public int Acknowledged { get; init; }

    /// <summary>Transactions that got another reply, and sessions that broke off.</summary>
    public int Failures { get; init; }

    /// <summary>Messages the sink received.</summary>
    public long Delivered { get; init; }
    public long Duplicates { get; init; }
    public long Strays { get; init; }

    /// <summary>Acknowledged messages the sink never received.</summary>
    public int Missing { get; init; }

    /// <summary>Messages still in the spool at the end.</summary>
    public int SpoolLeft { get; init; }

    /// <summary>From the first connect to the last 250 after a dot.</summary>
    public double SendSeconds { get; init; }

    /// <summary>From the first connect until the sink had every message and the spool was empty.</summary>
    public double DrainSeconds { get; init; }

    public LatencySummary Latency { get; init; } = LatencySummary.Empty;

    /// <summary>Every acknowledged message's latency (ms); not part of the CSV row.</summary>
    public float[]? LatenciesMs { get; init; }

    /// <summary>Journal records committed (messages, per-recipient results, removals) and flushes.</summary>
    public long SpoolRecords { get; init; }
    public long SpoolSyncs { get; init; }

    /// <summary>Connections the relay opened to the sink.</summary>
    public long OutboundConnections { get; init; }

    /// <summary>Bytes allocated in the whole process (relay, clients and sink) during the iteration.</summary>
    public long AllocatedBytes { get; init; }
    public int Gen2Collections { get; init; }

    /// <summary>Accepted messages per second (first connect to last 250).</summary>
    public double AcceptedPerSecond => SendSeconds > 0 ? Acknowledged / SendSeconds : 0;

    /// <summary>Messages per second through the whole pipeline (first connect to the last removal from the spool).</summary>
    public double DeliveredPerSecond => DrainSeconds > 0 ? Delivered / DrainSeconds : 0;

    public bool Consistent => Failures == 0 && Acknowledged == Messages && Delivered == Acknowledged && Missing == 0 && Duplicates == 0 && Strays == 0 &&
                              SpoolLeft == 0;

    public void ThrowIfBroken(IReadOnlyList<string> failures, bool timedOut, TimeSpan timeout)
    {
        if (Consistent) return;
        var why = new StringBuilder($"load iteration with {Sessions} sessions, {MessageSize}-byte messages is not consistent: ")
            .Append(CultureInfo.InvariantCulture, $"sent {Messages}, acknowledged {Acknowledged}, delivered {Delivered}, missing {Missing}, ")
            .Append(CultureInfo.InvariantCulture, $"duplicates {Duplicates}, strays {Strays}, failures {Failures}, left in spool {SpoolLeft}");
        if (timedOut) why.Append(CultureInfo.InvariantCulture, $"; the iteration hit its {timeout.TotalSeconds:0}s time-out");
        foreach (var failure in failures) why.Append("; ").Append(failure);
        throw new InvalidOperationException(why.ToString());
    }

    public static string CsvHeader =>
        "sessions,message_size,messages,acknowledged,delivered,failures,missing,duplicates,send_s,drain_s,accepted_per_s,delivered_per_s," +
        "p50_ms,p90_ms,p99_ms,p999_ms,max_ms,mean_ms,spool_records,spool_syncs,outbound_connections,allocated_bytes_per_msg,gen2";

    public string ToCsv() => string.Join(',',
        Sessions, MessageSize, Messages, Acknowledged, Delivered, Failures, Missing, Duplicates,
        F(SendSeconds, "0.000"), F(DrainSeconds, "0.000"), F(AcceptedPerSecond, "0.0"), F(DeliveredPerSecond, "0.0"),
        F(Latency.P50, "0.000"), F(Latency.P90, "0.000"), F(Latency.P99, "0.000"), F(Latency.P999, "0.000"), F(Latency.Max, "0.000"), F(Latency.Mean, "0.000"),
        SpoolRecords, SpoolSyncs, OutboundConnections, Messages > 0 ? AllocatedBytes / Messages : 0, Gen2Collections);

    public static string F(double value, string format) => value.ToString(format, CultureInfo.InvariantCulture);
}
