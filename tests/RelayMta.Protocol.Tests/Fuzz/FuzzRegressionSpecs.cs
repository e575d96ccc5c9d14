using System.Runtime.CompilerServices;
using RelayMta.Protocol.Fuzzing;

namespace RelayMta.Protocol.Tests.Fuzz;

/// <summary>
/// Replays, through the fuzz targets' own invariants, every input the fuzzer found
/// (Fuzz/Regressions/TARGET/*) and every seed of the harness. See Regressions/README.md.
/// </summary>
public sealed class FuzzRegressionSpecs
{
    public static TheoryData<string, string> Findings()
    {
        var data = new TheoryData<string, string>();
        foreach (var dir in Directory.EnumerateDirectories(RegressionsFolder()).Order(StringComparer.Ordinal))
        foreach (var file in Directory.EnumerateFiles(dir).Order(StringComparer.Ordinal))
        {
            if (Path.GetFileName(file).StartsWith("README", StringComparison.OrdinalIgnoreCase)) continue;
            data.Add(Path.GetFileName(dir), Path.GetFileName(file));
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Findings))]
    public void Should_hold_every_invariant_on_an_input_the_fuzzer_found(string target, string file)
    {
        var info = FuzzTargets.Find(target);
        Assert.True(info is not null, $"Regressions/{target} is not named after a fuzz target");
        info.Run(File.ReadAllBytes(Path.Combine(RegressionsFolder(), target, file)));
    }

    public static TheoryData<string, int> Seeds()
    {
        var data = new TheoryData<string, int>();
        foreach (var target in FuzzTargets.All)
            for (var i = 0; i < target.Seeds.Length; i++)
                data.Add(target.Name, i);
        return data;
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Should_hold_every_invariant_on_the_seed_corpus(string target, int seed)
    {
        var info = FuzzTargets.Find(target)!;
        info.Run(info.Seeds[seed]);
    }

    [Fact]
    public void Should_name_each_regression_folder_after_a_target()
    {
        foreach (var dir in Directory.EnumerateDirectories(RegressionsFolder()))
            Assert.NotNull(FuzzTargets.Find(Path.GetFileName(dir)));
    }

    /// <summary>
    /// The Regressions folder of the source tree: next to this file, or found upwards from the test
    /// output when the build mapped source paths away.
    /// </summary>
    internal static string RegressionsFolder([CallerFilePath] string sourceFile = "")
    {
        var beside = Path.Combine(Path.GetDirectoryName(sourceFile) ?? "", "Regressions");
        if (Directory.Exists(beside)) return beside;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "RelayMta.Protocol.Tests", "Fuzz", "Regressions");
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException("tests/RelayMta.Protocol.Tests/Fuzz/Regressions not found");
    }
}
