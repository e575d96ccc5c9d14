using System.Runtime.InteropServices;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace RelayMta.Engine.Hosting;

/// <summary>
/// SIGHUP reloads the configuration (local domains, allowed networks, users, limits) without
/// dropping a session, as Postfix's "postfix reload" does; a bad file is refused and logged.
/// </summary>
internal sealed class ReloadOnSignal(RelayMtaRuntime runtime, ILogger<ReloadOnSignal> log) : IHostedService, IDisposable
{
    private PosixSignalRegistration? _registration;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (OperatingSystem.IsWindows()) return Task.CompletedTask;
        _registration = PosixSignalRegistration.Create(PosixSignal.SIGHUP, context =>
        {
            context.Cancel = true; // do not terminate
            log.LogInformation("SIGHUP: reloading the configuration");
            _ = runtime.ReloadAsync();
        });
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose() => _registration?.Dispose();
}
