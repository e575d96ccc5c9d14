using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using RelayMta.Engine.Spool;
using Serilog;
using Serilog.Formatting.Compact;

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
    /// <paramref name="services"/> adds services (e.g. the admin HTTP server); they can take
    /// <see cref="RelayMtaRuntime"/> from the container once the host starts.
    /// </summary>
    public static (IHost Host, RelayMtaRuntime Runtime) Create(LoadedConfig config, Action<ILoggingBuilder>? logging = null,
        SpoolOptions? spoolOptions = null, Action<IServiceCollection>? services = null)
    {
        var settings = config.Settings;
        var builder = new HostApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        if (logging is not null) logging(builder.Logging);
        else ConfigureLogging(builder.Logging, settings.Log);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = settings.DrainTimeout + TimeSpan.FromSeconds(60));
        // sd_notify READY=1 and STOPPING=1 when run as a systemd Type=notify service; a no-op elsewhere.
        builder.Services.AddSystemd();

        var holder = new RuntimeHolder();
        builder.Services.AddSingleton(holder);
        builder.Services.AddSingleton(_ => holder.Runtime!);
        builder.Services.AddSingleton(config);
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
        builder.Services.AddHostedService<ReloadOnSignal>();
        services?.Invoke(builder.Services);
        var host = builder.Build();

        // The runtime needs the host's loggers and must exist before the actor system starts.
        holder.Runtime = RelayMtaRuntime.Start(settings, host.Services.GetRequiredService<ILoggerFactory>(), spoolOptions, config.UserFile);
        return (host, holder.Runtime);
    }

    /// <summary>Console as text (one line per event, UTC) or JSON lines, and a file when configured.</summary>
    public static void ConfigureLogging(ILoggingBuilder logging, LogSettings log)
    {
        if (log.Json)
        {
            logging.AddJsonConsole(o =>
            {
                o.UseUtcTimestamp = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
            });
        }
        else
        {
            DefaultLogging(logging);
        }
        if (log.File is { } file)
        {
            var serilog = new LoggerConfiguration().MinimumLevel.Information();
            serilog = log.Json
                ? serilog.WriteTo.File(new CompactJsonFormatter(), file, shared: true)
                : serilog.WriteTo.File(file, shared: true, outputTemplate: "{Timestamp:yyyy-MM-ddTHH:mm:ss.fffZ} {Level:u4}: {SourceContext} {Message:lj}{NewLine}{Exception}");
            logging.AddSerilog(serilog.CreateLogger(), dispose: true);
        }
        logging.SetMinimumLevel(LogLevel.Information);
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

    internal sealed class RuntimeHolder
    {
        public RelayMtaRuntime? Runtime { get; set; }
    }
}
