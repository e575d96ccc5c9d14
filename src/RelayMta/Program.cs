using Microsoft.Extensions.Hosting;
using RelayMta.Admin;
using RelayMta.Cli;
using RelayMta.Engine.Hosting;

namespace RelayMta;

/// <summary>
/// The relaymta command: runs the server (default), or one of the tools: <c>user</c> (the SMTP
/// AUTH users file), <c>queue</c> and <c>destination</c> (clients of the running relay's admin
/// API), <c>spool inspect</c> (a stopped relay's spool). The tools live in <c>Cli/</c>.
/// </summary>
internal static class Program
{
    /// <summary>Configuration could not be used (sysexits.h EX_CONFIG).</summary>
    internal const int ExitConfig = 78;
    internal const int ExitStartup = 1;

    public static async Task<int> Main(string[] args)
    {
        if (args is ["user", .. var userArgs]) return UserCommand.Run(userArgs);
        if (OperatorCli.Handles(args)) return await OperatorCli.RunAsync(args, CliConsole.ForProcess()).ConfigureAwait(false);
        return await RunServerAsync(args).ConfigureAwait(false);
    }

    /// <summary><c>RelayMta [--config PATH] [--check-config]</c>: exit 0 normal stop, 1 start-up failure, 2 bad arguments, 78 configuration error.</summary>
    private static async Task<int> RunServerAsync(string[] args)
    {
        string? configPath = null;
        var checkOnly = false;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--config" or "-c" when i + 1 < args.Length:
                    configPath = args[++i];
                    break;
                case "--check-config":
                    checkOnly = true;
                    break;
                case "--help" or "-h":
                    Console.Out.WriteLine(CliUsage.All);
                    return 0;
                default:
                    Console.Error.WriteLine($"relaymta: unknown argument '{args[i]}'");
                    Console.Error.WriteLine(CliUsage.All);
                    return CliExit.Usage;
            }
        }

        LoadedConfig config;
        try
        {
            config = ConfigLoader.Load(configPath);
        }
        catch (ConfigException e)
        {
            Console.Error.WriteLine($"relaymta: configuration error: {e.Message}");
            return ExitConfig;
        }
        if (checkOnly)
        {
            Console.Out.WriteLine($"relaymta: configuration OK ({configPath ?? ConfigLoader.DefaultsName})");
            return 0;
        }

        IHost host;
        RelayMtaRuntime runtime;
        try
        {
            (host, runtime) = RelayMtaHost.Create(config, services: s => s.AddRelayMtaAdmin());
        }
        catch (StartupException e)
        {
            Console.Error.WriteLine($"relaymta: {e.Message}");
            return ExitStartup;
        }

        using (runtime)
        using (host)
        {
            try
            {
                await host.RunAsync().ConfigureAwait(false);
            }
            catch (StartupException e)
            {
                // A hosted service (the admin listener) that cannot start fails the host's start.
                Console.Error.WriteLine($"relaymta: {e.Message}");
                return ExitStartup;
            }
        }
        return 0;
    }
}
