using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;

namespace RelayMta.IntegrationTests.Infrastructure;

/// <summary>
/// The built RelayMta executable as a child process (<c>dotnet RelayMta.dll --config FILE</c>),
/// for tests that need a real process: hard kills, exit codes, signals.
/// </summary>
public sealed partial class RelayProcess : IDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();
    private readonly TaskCompletionSource<IPEndPoint> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private RelayProcess(Process process)
    {
        _process = process;
        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public int Id => _process.Id;

    public IEnumerable<string> Output => _output;

    /// <summary>Path of RelayMta.dll built in the same configuration as the tests.</summary>
    public static string DllPath
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            // tests/RelayMta.IntegrationTests/bin/<Configuration>/net10.0/
            var configuration = dir.Parent!.Name;
            var root = dir;
            while (root is not null && !File.Exists(Path.Combine(root.FullName, "RelayMta.sln"))) root = root.Parent;
            if (root is null) throw new InvalidOperationException("cannot find RelayMta.sln above " + AppContext.BaseDirectory);
            var dll = Path.Combine(root.FullName, "src", "RelayMta", "bin", configuration, "net10.0", "RelayMta.dll");
            if (!File.Exists(dll)) throw new FileNotFoundException("build the solution first", dll);
            return dll;
        }
    }

    public static RelayProcess Start(params string[] args)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(DllPath);
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["DOTNET_gcServer"] = "0";
        return new RelayProcess(Process.Start(info)!);
    }

    /// <summary>Waits for the "listening for SMTP on ip:port" line and returns the endpoint.</summary>
    public async Task<IPEndPoint> WaitListeningAsync(TimeSpan? timeout = null)
    {
        var done = await Task.WhenAny(_listening.Task, _process.WaitForExitAsync(), Task.Delay(timeout ?? TimeSpan.FromSeconds(30)));
        if (done == _listening.Task) return await _listening.Task;
        throw new TimeoutException("relay did not start listening; output:\n" + string.Join("\n", _output));
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    /// <summary>SIGKILL: no chance to flush or clean up.</summary>
    public void KillHard()
    {
        _process.Kill(entireProcessTree: false);
        _process.WaitForExit(10_000);
    }

    /// <summary>SIGTERM: the graceful stop an init system would send.</summary>
    public void Terminate()
    {
        if (kill(_process.Id, 15) != 0) throw new InvalidOperationException("kill(SIGTERM) failed");
    }

    /// <summary>SIGHUP: reload the configuration (what <c>systemctl reload</c> sends).</summary>
    public void Hangup()
    {
        if (kill(_process.Id, 1) != 0) throw new InvalidOperationException("kill(SIGHUP) failed");
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            try
            {
                _process.Kill();
                _process.WaitForExit(10_000);
            }
            catch (InvalidOperationException)
            {
            }
        }
        _process.Dispose();
    }

    private void OnLine(string? line)
    {
        if (line is null) return;
        _output.Enqueue(line);
        var m = ListeningLine().Match(line);
        if (m.Success) _listening.TrySetResult(IPEndPoint.Parse(m.Groups[1].Value));
    }

    [GeneratedRegex(@"listening for SMTP on ([0-9A-Fa-f.:\[\]]+)")]
    private static partial Regex ListeningLine();

    [System.Runtime.InteropServices.DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);
}
