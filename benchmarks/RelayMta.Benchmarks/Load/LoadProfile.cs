namespace RelayMta.Benchmarks.Load;

/// <summary>
/// How much load the BenchmarkDotNet load benchmark puts on: <c>full</c> (the default), <c>quick</c>
/// (<c>--quick</c>: fewer messages and iterations) or <c>smoke</c> (<c>--smoke</c>, for CI: tiny, one
/// iteration, only proves it runs and delivers). Chosen by Program through the
/// RELAYMTA_BENCH_PROFILE environment variable, which the benchmark processes inherit.
/// </summary>
internal sealed record LoadProfile(string Name, int[] Sessions, int[] Sizes, int MinMessages, int MessagesPerSession, int WarmupCount, int IterationCount, TimeSpan IterationTimeout)
{
    public const string Variable = "RELAYMTA_BENCH_PROFILE";

    public static readonly LoadProfile Full = new("full", [1, 10, 100, 500], [1024, 100 * 1024], 2000, 10, 1, 3, TimeSpan.FromMinutes(5));
    public static readonly LoadProfile Quick = new("quick", [1, 10, 100, 500], [1024, 100 * 1024], 1000, 4, 1, 2, TimeSpan.FromMinutes(3));
    public static readonly LoadProfile Smoke = new("smoke", [2, 20], [1024, 100 * 1024], 100, 5, 0, 1, TimeSpan.FromMinutes(2));

    public static LoadProfile Current => Environment.GetEnvironmentVariable(Variable)?.ToLowerInvariant() switch
    {
        "quick" => Quick,
        "smoke" => Smoke,
        _ => Full,
    };

    /// <summary>Messages in one iteration: at least <see cref="MinMessages"/>, and <see cref="MessagesPerSession"/> per session.</summary>
    public int MessagesPerIteration(int sessions, int size) => Math.Max(MinMessages, MessagesPerSession * sessions);
}
