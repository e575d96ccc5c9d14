using Microsoft.Extensions.Hosting;
using RelayMta.Engine.Hosting;

namespace RelayMta;

/// <summary>The relaymta command: runs the server (default) or one of the tools.</summary>
internal static class Program
{
    /// <summary>Configuration could not be used (sysexits.h EX_CONFIG).</summary>
    internal const int ExitConfig = 78;
    internal const int ExitUsage = 2;
    internal const int ExitStartup = 1;

    private const string Usage = """
        usage: RelayMta [--config PATH]        run the relay (defaults: hocon/relay.hocon)
               RelayMta --check-config [--config PATH]
                                               check the configuration and exit
               RelayMta --help
        """;

    public static async Task<int> Main(string[] args)
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
                    Console.Out.WriteLine(Usage);
                    return 0;
                default:
                    Console.Error.WriteLine($"relaymta: unknown argument '{args[i]}'");
                    Console.Error.WriteLine(Usage);
                    return ExitUsage;
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
            (host, runtime) = RelayMtaHost.Create(config);
        }
        catch (StartupException e)
        {
            Console.Error.WriteLine($"relaymta: {e.Message}");
            return ExitStartup;
        }

        using (runtime)
        using (host)
        {
            await host.RunAsync().ConfigureAwait(false);
        }
        return 0;
    }
}
