namespace RelayMta.Benchmarks.Infrastructure;

/// <summary>Scratch directories for spools. Under the system temp directory unless RELAYMTA_BENCH_TMP names another (it must be a real disk for fsync to mean anything: not tmpfs).</summary>
internal static class BenchDirectories
{
    public static string Root => Environment.GetEnvironmentVariable("RELAYMTA_BENCH_TMP") is { Length: > 0 } root ? root : Path.GetTempPath();

    public static string Create(string purpose)
    {
        var dir = Path.Combine(Root, $"relaymta-bench-{purpose}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..8]}");
        Directory.CreateDirectory(dir);
        return dir;
    }
}
