using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using System.Text.Json;
using System.Text.Json.Serialization;
using RelayMta.Engine.Spool;
using ZLogger;
using ZLogger.Formatters;

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

    /// <summary>
    /// Console as text (one line per event, UTC) or JSON lines, and a file when configured. ZLogger
    /// formats into pooled UTF-8 buffers and writes from one background task in batches; the stock
    /// console logger takes a lock and wakes its writer for every line, which under load was ~8%
    /// of the relay's CPU (benchmarks/RESULTS.md).
    /// </summary>
    public static void ConfigureLogging(ILoggingBuilder logging, LogSettings log)
    {
        logging.AddZLoggerConsole(o =>
        {
            o.LogToStandardErrorThreshold = LogLevel.None; // one stream, as journald and pipes expect
            o.FullMode = BackgroundBufferFullMode.Block;    // never drop a line; slow the logger instead
            Format(o, log.Json);
        });
        if (log.File is { } file)
        {
            logging.AddZLoggerFile(file, o =>
            {
                o.FullMode = BackgroundBufferFullMode.Block;
                Format(o, log.Json);
            });
        }
        logging.SetMinimumLevel(LogLevel.Information);
    }

    /// <summary>One line per event, UTC timestamps, no colours (logs go to files and journald).</summary>
    public static void DefaultLogging(ILoggingBuilder logging) => ConfigureLogging(logging, new LogSettings());

    private static readonly string[] LevelNames = ["trce", "dbug", "info", "warn", "fail", "crit", "none"];

    private static void Format(ZLoggerOptions options, bool json)
    {
        if (json)
        {
            // Parameters go in as JSON values; addresses, end points and queue ids as their text
            // (System.Text.Json cannot serialise an IPAddress, and a failed line would be lost).
            options.UseJsonFormatter(f =>
            {
                var serializer = new JsonSerializerOptions(f.JsonSerializerOptions);
                serializer.Converters.Add(new TextJsonConverter());
                serializer.Converters.Add(new JsonStringEnumConverter());
                f.JsonSerializerOptions = serializer;
            });
            return;
        }
        // "2026-11-30T04:56:19.168Z info: RelayMta.Smtpd[1] message", then the exception if any.
        options.UsePlainTextFormatter(f =>
        {
            f.SetPrefixFormatter($"{0:yyyy-MM-ddTHH:mm:ss.fffZ} {1}: {2}[{3}] ", (in MessageTemplate t, in LogInfo info) =>
                t.Format(info.Timestamp.Utc, LevelNames[(int)info.LogLevel], info.Category, info.EventId.Id));
            f.SetExceptionFormatter((writer, e) => Utf8StringInterpolation.Utf8String.Format(writer, $"\n{e}"));
        });
    }

    /// <summary>Writes network addresses, end points and queue ids as JSON strings (their <c>ToString()</c>).</summary>
    private sealed class TextJsonConverter : JsonConverterFactory
    {
        public override bool CanConvert(Type type) =>
            typeof(System.Net.EndPoint).IsAssignableFrom(type) || typeof(System.Net.IPAddress).IsAssignableFrom(type)
            || typeof(System.Net.IPNetwork) == type || type == typeof(QueueId);

        public override JsonConverter CreateConverter(Type type, JsonSerializerOptions options) =>
            (JsonConverter)Activator.CreateInstance(typeof(Text<>).MakeGenericType(type))!;

        private sealed class Text<T> : JsonConverter<T>
        {
            public override T Read(ref Utf8JsonReader reader, Type type, JsonSerializerOptions options) => throw new NotSupportedException();

            public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options) => writer.WriteStringValue(value?.ToString());
        }
    }

    internal sealed class RuntimeHolder
    {
        public RelayMtaRuntime? Runtime { get; set; }
    }
}
