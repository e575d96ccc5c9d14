using System.Net;
using Akka.Actor;
using Akka.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using RelayMta.Engine.Hosting;

namespace RelayMta.Admin;

/// <summary>
/// The admin HTTP listener: a small web application of its own (Kestrel on exactly
/// <c>relay-mta.admin.listen</c>), started and stopped with the relay's host. Does nothing when
/// the setting is empty.
/// </summary>
public sealed class AdminServer : IHostedService, IAsyncDisposable
{
    private readonly IServiceProvider _services;
    private readonly RelayMtaRuntime _runtime;
    private readonly ILoggerFactory _loggers;
    private readonly ILogger _log;
    private WebApplication? _app;

    /// <summary>Created by the relay's container (see <see cref="AdminServiceCollectionExtensions.AddRelayMtaAdmin"/>).</summary>
    public AdminServer(IServiceProvider services, RelayMtaRuntime runtime, ILoggerFactory loggers)
    {
        _services = services;
        _runtime = runtime;
        _loggers = loggers;
        _log = loggers.CreateLogger("RelayMta.Admin");
    }

    /// <summary>Where the server listens (port 0 in the settings becomes the real port); null when it is off or not started.</summary>
    public IPEndPoint? Endpoint { get; private set; }

    /// <summary>Binds and starts serving; a port that cannot be bound fails the host's start with a <see cref="StartupException"/>.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var settings = _runtime.CurrentSettings.Admin;
        if (settings.Listen is not { } listen) return;

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ApplicationName = typeof(AdminServer).Assembly.GetName().Name,
            ContentRootPath = AppContext.BaseDirectory,
            Args = [],
        });
        // Only our settings count: no appsettings.json, no ASPNETCORE_URLS.
        builder.Configuration.Sources.Clear();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(listen);
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = 64 * 1024; // the API takes no bodies to speak of
        });
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(new ForwardingLoggerProvider(_loggers));
        // ASP.NET Core's per-request lines would drown the relay's own log.
        builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
        // A failed start is reported once, by the exception below, not again with a stack trace.
        builder.Logging.AddFilter("Microsoft.Extensions.Hosting", LogLevel.None);
        // The relay's host handles signals; this one only starts and stops with it.
        builder.Services.AddSingleton<IHostLifetime, PassiveLifetime>();

        var app = builder.Build();
        var api = new AdminApi(_runtime, _services.GetRequiredService<IReadOnlyActorRegistry>(), _services.GetRequiredService<ActorSystem>(), _log);
        app.Use(new AdminGuard(settings.Token, _log).InvokeAsync);
        api.Map(app);
        DashboardFiles.Map(app);

        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
        {
            await app.DisposeAsync().ConfigureAwait(false);
            // Kestrel wraps the socket's error ("Address already in use") in two layers of its own.
            throw new StartupException($"cannot listen on admin.listen {listen}: {e.GetBaseException().Message}", e);
        }
        _app = app;
        Endpoint = BoundEndpoint(app) ?? listen;
        _log.LogInformation("admin HTTP listening on {Endpoint}{Auth}", Endpoint, settings.Token is null ? "" : " (bearer token required)");
    }

    /// <summary>Stops serving (requests in progress get a few seconds to finish).</summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_app is not { } app) return;
        _app = null;
        Endpoint = null;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(TimeSpan.FromSeconds(5));
        await app.StopAsync(deadline.Token).ConfigureAwait(false);
        await app.DisposeAsync().ConfigureAwait(false);
        _log.LogInformation("admin HTTP stopped");
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_app is { } app) await app.DisposeAsync().ConfigureAwait(false);
        _app = null;
    }

    private static IPEndPoint? BoundEndpoint(WebApplication app)
    {
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses;
        var first = addresses?.FirstOrDefault();
        if (first is null || !Uri.TryCreate(first, UriKind.Absolute, out var uri)) return null;
        return IPAddress.TryParse(uri.Host.Trim('[', ']'), out var ip) ? new IPEndPoint(ip, uri.Port) : null;
    }

    /// <summary>Does not listen for signals; the relay's host stops us.</summary>
    private sealed class PassiveLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    /// <summary>Hands the web application's loggers to the relay's logger factory (same sinks, same format).</summary>
    private sealed class ForwardingLoggerProvider(ILoggerFactory target) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => target.CreateLogger(categoryName);

        public void Dispose()
        {
            // The factory belongs to the relay's host.
        }
    }
}
