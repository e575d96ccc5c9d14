using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Filters;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using RelayMta.Benchmarks.Load;

namespace RelayMta.Benchmarks;

/// <summary>
/// <c>load ...</c> runs the load benchmark as a plain console program (see <see cref="LoadCommand"/>).
/// Anything else goes to BenchmarkDotNet's <see cref="BenchmarkSwitcher"/>, with two presets of our
/// own: <c>--quick</c> (ShortRun for the micro benchmarks, a lighter load profile) and
/// <c>--smoke</c> (for CI: one iteration of everything, a tiny load run; proves that every
/// benchmark runs and that the load benchmark delivers what it acknowledged). The exit code is 1
/// when a benchmark failed.
/// </summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "load") return await LoadCommand.RunAsync(args[1..]);

        var rest = new List<string>(args);
        var quick = rest.Remove("--quick");
        var smoke = rest.Remove("--smoke");
        if (quick && smoke)
        {
            Console.Error.WriteLine("--quick and --smoke do not go together");
            return 2;
        }
        if (quick || smoke) Environment.SetEnvironmentVariable(LoadProfile.Variable, smoke ? "smoke" : "quick");
        if ((quick || smoke) && !rest.Contains("--filter") && !rest.Contains("-f")) rest.AddRange(["--filter", "*"]);

        // Where the load benchmark's processes leave their per-iteration numbers for the summary.
        var artifacts = ArtifactsPath(rest);
        Environment.SetEnvironmentVariable(LoadStats.Variable,
            Path.Combine(artifacts, "load-stats", DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", System.Globalization.CultureInfo.InvariantCulture)));

        var config = MicroBenchmarkConfig.Create()
            // The load benchmark runs only under its own job (1 warm-up, 3 iterations of one
            // invocation); a job given on the command line (--job short) is for the others.
            .AddFilter(new SimpleFilter(b => b.Descriptor.Type != typeof(LoadBenchmarks) || b.Job.Id == LoadBenchmarks.JobId));
        if (quick) config = config.AddJob(Job.ShortRun);
        if (smoke) config = config.AddJob(Job.Dry.WithId("Smoke"));

        var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(rest.ToArray(), config).ToList();
        var failed = summaries.Sum(s => s.Reports.Count(r => !r.Success) + (s.HasCriticalValidationErrors ? 1 : 0));
        if (failed > 0) Console.Error.WriteLine($"// {failed} benchmark(s) failed; see the log above");
        return failed > 0 ? 1 : 0;
    }

    private static string ArtifactsPath(List<string> args)
    {
        var at = args.IndexOf("--artifacts");
        var path = at >= 0 && at + 1 < args.Count ? args[at + 1] : "BenchmarkDotNet.Artifacts";
        return Path.GetFullPath(path);
    }
}
