using System.Diagnostics;
using RelayMta.Protocol.Fuzzing;
using SharpFuzz;

// SharpFuzz harness for the protocol library. See README.md beside this file and fuzz/run.sh.
//
//   RelayMta.Fuzz TARGET                      under afl-fuzz: in-process persistent loop (SharpFuzz Fuzzer.Run)
//   RelayMta.Fuzz TARGET --out-of-process     under afl-fuzz: each input in a child process (survives crashes that kill .NET)
//   RelayMta.Fuzz TARGET --replay PATH...     run files (or every file in folders) once, report each; exit 1 on a finding
//   RelayMta.Fuzz TARGET --random SECONDS [SEED] [OUTDIR]   no AFL: random token soup for a while; exit 1 on a finding
//   RelayMta.Fuzz TARGET --write-dict FILE    the AFL dictionary of the target
//   RelayMta.Fuzz TARGET --write-seeds DIR    the seed corpus of the target
//   RelayMta.Fuzz --list                      the targets

if (args.Length == 0 || args[0] is "-h" or "--help")
{
    Console.Error.WriteLine("usage: RelayMta.Fuzz TARGET [--out-of-process | --replay PATH... | --random SECONDS [SEED] [OUTDIR] | --write-dict FILE | --write-seeds DIR]");
    Console.Error.WriteLine("       RelayMta.Fuzz --list");
    Console.Error.WriteLine("targets: " + string.Join(", ", FuzzTargets.All.Select(t => t.Name)));
    return 2;
}
if (args[0] == "--list")
{
    foreach (var t in FuzzTargets.All) Console.WriteLine($"{t.Name,-8} {t.Description}");
    return 0;
}
var target = FuzzTargets.Find(args[0]);
if (target is null)
{
    Console.Error.WriteLine($"unknown target '{args[0]}'; targets: {string.Join(", ", FuzzTargets.All.Select(t => t.Name))}");
    return 2;
}

switch (args.Length > 1 ? args[1] : "")
{
    case "":
        Fuzzer.Run(stream => target.Run(ReadAll(stream)));
        return 0;
    case "--out-of-process":
        Fuzzer.OutOfProcess.Run(stream => target.Run(ReadAll(stream)));
        return 0;
    case "--replay":
        return Replay(target, args.Skip(2));
    case "--random":
        return RandomRun(target, args.Length > 2 ? double.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 10,
            args.Length > 3 ? int.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture) : Environment.TickCount,
            args.Length > 4 ? args[4] : ".");
    case "--write-dict" when args.Length > 2:
        File.WriteAllText(args[2], FuzzTargets.AflDictionary(target));
        return 0;
    case "--write-seeds" when args.Length > 2:
        Directory.CreateDirectory(args[2]);
        for (var i = 0; i < target.Seeds.Length; i++) File.WriteAllBytes(Path.Combine(args[2], $"seed-{i:D2}"), target.Seeds[i]);
        return 0;
    default:
        Console.Error.WriteLine($"unknown option '{args[1]}'");
        return 2;
}

static byte[] ReadAll(Stream stream)
{
    using var copy = new MemoryStream();
    stream.CopyTo(copy);
    return copy.ToArray();
}

static int Replay(FuzzTargetInfo target, IEnumerable<string> paths)
{
    var files = paths.SelectMany(p => Directory.Exists(p)
            ? Directory.EnumerateFiles(p, "*", SearchOption.AllDirectories)
                .Where(f => !Path.GetFileName(f).StartsWith("README", StringComparison.OrdinalIgnoreCase)).Order(StringComparer.Ordinal)
            : (IEnumerable<string>)[p])
        .ToList();
    var findings = 0;
    foreach (var file in files)
    {
        try
        {
            target.Run(File.ReadAllBytes(file));
            Console.WriteLine($"ok       {file}");
        }
        catch (Exception e)
        {
            findings++;
            Console.WriteLine($"FINDING  {file}\n  {e.GetType().Name}: {e.Message.Replace("\n", "\n  ")}");
            if (e is not FuzzFindingException) Console.WriteLine("  " + e.StackTrace?.Replace("\n", "\n  "));
        }
    }
    Console.WriteLine($"{files.Count} inputs, {findings} findings");
    return findings == 0 ? 0 : 1;
}

static int RandomRun(FuzzTargetInfo target, double seconds, int seed, string outDir)
{
    var random = new Random(seed);
    var clock = Stopwatch.StartNew();
    long runs = 0;
    while (clock.Elapsed.TotalSeconds < seconds)
    {
        var input = FuzzTargets.RandomInput(target, random);
        runs++;
        try
        {
            target.Run(input);
        }
        catch (Exception e)
        {
            Directory.CreateDirectory(outDir);
            var file = Path.Combine(outDir, $"{target.Name}-finding-{seed}-{runs}");
            File.WriteAllBytes(file, input);
            Console.WriteLine($"FINDING after {runs} runs (seed {seed}), input written to {file}\n  {e.GetType().Name}: {e.Message}");
            if (e is not FuzzFindingException) Console.WriteLine(e.StackTrace);
            return 1;
        }
    }
    Console.WriteLine($"{target.Name}: {runs} runs in {clock.Elapsed.TotalSeconds:F1} s ({runs / clock.Elapsed.TotalSeconds:F0}/s), seed {seed}, no finding");
    return 0;
}
