using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using RelayMta.Engine.Spool;

namespace RelayMta.Engine.Hosting;

/// <summary>
/// Builds the generic host that runs RelayMta: logging, the runtime (spool and listeners) and the
/// actor system. <c>Program</c> and the integration tests both start the server through here.
/// </summary>
public static class RelayMtaHost
{
    /// <summary>
    /// Creates the host. The spool is opened and the ports bound before this returns, so start-up
    /// errors surface as a <see cref="StartupException"/> here, not half-way through starting.
    /// </summary>
    public static (IHost Host, RelayMtaRuntime Runtime) Create(LoadedConfig config, Action<ILoggingBuilder>? logging = null,
        SpoolOptions? spoolOptions = null)
    {
        var settings = config.Settings;
        var builder = new HostApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        (logging ?? DefaultLogging)(builder.Logging);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = settings.DrainTimeout + TimeSpan.FromSeconds(60));

        var holder = new RuntimeHolder();
        builder.Services.AddSingleton(holder);
        builder.Services.AddSingleton(settings);
        builder.Services.AddAkka("relay-mta", (akka, _) =>
        {
            if (!config.AkkaOverrides.IsEmpty) akka.AddHocon(config.AkkaOverrides, HoconAddMode.Prepend);
            akka.ConfigureLoggers(l =>
            {
                l.ClearLoggers();
                l.AddLoggerFactory();
            });
            akka.AddRelayMta(holder.Runtime ?? throw new InvalidOperationException("the runtime was not started"));
        });
        var host = builder.Build();

        // The runtime needs the host's loggers and must exist before the actor system starts.
        holder.Runtime = RelayMtaRuntime.Start(settings, host.Services.GetRequiredService<ILoggerFactory>(), spoolOptions);
        return (host, holder.Runtime);
    }

    /// <summary>One line per event, UTC timestamps, no colours (logs go to files and journald).</summary>
    public static void DefaultLogging(ILoggingBuilder logging)
    {
        logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.UseUtcTimestamp = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
            o.ColorBehavior = LoggerColorBehavior.Disabled;
        });
        logging.SetMinimumLevel(LogLevel.Information);
    }

    private sealed class RuntimeHolder
    {
        public RelayMtaRuntime? Runtime { get; set; }
    }
}
