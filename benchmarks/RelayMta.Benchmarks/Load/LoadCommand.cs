using System.Globalization;
using Microsoft.Extensions.Logging;

namespace RelayMta.Benchmarks.Load;

/// <summary>
/// <c>load</c>: the load benchmark without BenchmarkDotNet, for quick runs. For each session count
/// and message size given, starts a fresh relay and sink, runs the warm-up and measured
/// iterations, prints msgs/s and latency percentiles, checks acknowledged == delivered, and
/// appends the iterations to a CSV. Exit code 0 when every iteration was consistent.
/// </summary>
internal static class LoadCommand
{
    private const string Usage = """
        usage: load [--sessions N[,N...]] [--size BYTES[,BYTES...]] [--messages N] [--iterations N] [--warmup N]
                    [--timeout SECONDS] [--outbound-connections N] [--csv FILE] [--log-level LEVEL] [--alloc-types]
          --sessions              concurrent client sessions (default 100); a list runs each
          --size                  message content size in bytes (default 1024); a list runs each
          --messages              messages per iteration, spread over the sessions (default max(2000, 10 x sessions))
          --iterations            measured iterations (default 1)
          --warmup                warm-up iterations, not reported (default 1)
          --timeout               bound on one iteration, sending and delivery (default 300)
          --outbound-connections  outbound.max-connections-per-destination of the relay (default: the relay's, 20)
          --csv                   where to append the iterations (default BenchmarkDotNet.Artifacts/results/load-console.csv)
          --log-level             the relay's console log level (default Warning)
          --alloc-types           print the types allocated most during the measured iterations (runtime sampling)
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        int[] sessions = [100];
        int[] sizes = [1024];
        int? messages = null;
        var iterations = 1;
        var warmup = 1;
        var timeout = TimeSpan.FromSeconds(300);
        int? outbound = null;
        var csv = Path.Combine("BenchmarkDotNet.Artifacts", "results", "load-console.csv");
        var logLevel = LogLevel.Warning;
        var allocTypes = false;
        try
        {
            for (var i = 0; i < args.Length; i++)
            {
                string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
                switch (args[i])
                {
                    case "--sessions": sessions = Ints(Value()); break;
                    case "--size": sizes = Ints(Value()); break;
                    case "--messages": messages = Int(Value()); break;
                    case "--iterations": iterations = Int(Value()); break;
                    case "--warmup": warmup = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                    case "--timeout": timeout = TimeSpan.FromSeconds(Int(Value())); break;
                    case "--outbound-connections": outbound = Int(Value()); break;
                    case "--csv": csv = Value(); break;
                    case "--log-level": logLevel = Enum.Parse<LogLevel>(Value(), ignoreCase: true); break;
                    case "--alloc-types": allocTypes = true; break;
                    case "-h" or "--help":
                        Console.WriteLine(Usage);
                        return 0;
                    default: throw new ArgumentException($"unknown argument {args[i]}");
                }
            }
        }
        catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
        {
            Console.Error.WriteLine($"load: {e.Message}");
            Console.Error.WriteLine(Usage);
            return 2;
        }

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(csv))!);
        if (!File.Exists(csv)) await File.WriteAllTextAsync(csv, "timestamp,kind," + LoadResult.CsvHeader + Environment.NewLine);
        Console.WriteLine($"RelayMta load: {Environment.ProcessorCount} cores, spool fsync on, relay and clients in this process; CSV: {Path.GetFullPath(csv)}");
        Console.WriteLine($"{"sessions",8} {"size",8} {"msgs",7} {"acked",7} {"deliv",7} {"accept/s",9} {"e2e/s",9} {"p50 ms",8} {"p99 ms",8} {"p99.9 ms",8} {"max ms",8} {"rec/sync",8}  check");

        var ok = true;
        using var sampler = allocTypes ? new AllocationSampler() : null;
        foreach (var size in sizes)
        {
            foreach (var n in sessions)
            {
                var count = messages ?? Math.Max(2000, 10 * n);
                await using var bed = await LoadBed.StartAsync(new LoadBedOptions { MessageSize = size, OutboundConnections = outbound, LogLevel = logLevel });
                for (var it = 0; it < warmup + iterations; it++)
                {
                    var kind = it < warmup ? "warmup" : "measured";
                    LoadResult result;
                    if (it == warmup) sampler?.Start();
                    try
                    {
                        result = await bed.RunAsync(n, Math.Max(count, n), timeout);
                    }
                    catch (InvalidOperationException e)
                    {
                        Console.WriteLine($"{n,8} {size,8}  FAILED: {e.Message}");
                        ok = false;
                        break;
                    }
                    await File.AppendAllTextAsync(csv, $"{DateTimeOffset.UtcNow:O},{kind},{result.ToCsv()}{Environment.NewLine}");
                    if (it < warmup) continue;
                    var perSync = result.SpoolSyncs > 0 ? (double)result.SpoolRecords / result.SpoolSyncs : 0;
                    Console.WriteLine($"{n,8} {size,8} {result.Messages,7} {result.Acknowledged,7} {result.Delivered,7} {result.AcceptedPerSecond,9:0} {result.DeliveredPerSecond,9:0} " +
                                      $"{result.Latency.P50,8:0.00} {result.Latency.P99,8:0.00} {result.Latency.P999,8:0.00} {result.Latency.Max,8:0.00} {perSync,8:0.0}  " +
                                      $"acknowledged==delivered: {(result.Consistent ? "yes" : "NO")}");
                    Console.Out.Flush();
                }
                if (sampler is not null)
                {
                    var types = sampler.Stop();
                    var total = types.Sum(t => t.Bytes);
                    var messagesMeasured = (long)Math.Max(count, n) * iterations;
                    Console.WriteLine($"  allocations sampled over the measured iterations: {total / Math.Max(1, messagesMeasured)} B/message; top types:");
                    foreach (var (type, bytes) in types.Take(25))
                        Console.WriteLine($"    {bytes * 100.0 / Math.Max(1, total),5:0.0}%  {bytes / Math.Max(1, messagesMeasured),7} B/msg  {type}");
                    Console.WriteLine("  ArrayPool.Shared misses over the measured iterations (per message):");
                    foreach (var (what, times) in sampler.PoolMisses().Take(12))
                        Console.WriteLine($"    {(double)times / Math.Max(1, messagesMeasured),8:0.000}  {what}");
                }
            }
        }
        return ok ? 0 : 1;
    }

    private static int[] Ints(string value) => value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(Int).ToArray();

    private static int Int(string value)
    {
        var n = int.Parse(value, NumberStyles.None, CultureInfo.InvariantCulture);
        return n > 0 ? n : throw new ArgumentException($"{value}: must be at least 1");
    }
}
