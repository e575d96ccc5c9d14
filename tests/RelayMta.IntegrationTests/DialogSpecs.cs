using RelayMta.IntegrationTests.Infrastructure;

namespace RelayMta.IntegrationTests;

/// <summary>Runs every script in Dialogs/ against a real relay on loopback.</summary>
public sealed class DialogSpecs
{
    [Theory]
    [MemberData(nameof(Dialogs))]
    public async Task Dialog_script_runs_as_written(string file)
    {
        var dialog = Dialog.Load(file);
        await using var relay = await TestRelay.StartAsync(dialog.Config);
        await dialog.RunAsync(relay.Endpoint);
    }

    public static IEnumerable<object[]> Dialogs() => Dialog.All();
}
