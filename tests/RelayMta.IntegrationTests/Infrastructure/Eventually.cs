using System.Diagnostics;

namespace RelayMta.IntegrationTests.Infrastructure;

/// <summary>Polling with a deadline, for things that happen asynchronously (no fixed sleeps).</summary>
public static class Eventually
{
    public static async Task TrueAsync(Func<bool> condition, TimeSpan timeout, Func<string>? describe = null)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > timeout) throw new TimeoutException("condition not met in time: " + (describe?.Invoke() ?? ""));
            await Task.Delay(20);
        }
    }
}
