using System.Net;
using Akka.Actor;
using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using RelayMta.Admin;
using RelayMta.Engine.Hosting;
using RelayMta.Engine.Spool;

namespace RelayMta.IntegrationTests.Infrastructure;

/// <summary>
/// The real server, in process, on a free loopback port with its own temp spool and mailboxes,
/// started through the same <see cref="RelayMtaHost"/> as the executable.
/// </summary>
public sealed class TestRelay : IAsyncDisposable
{
    private readonly TempDirectory _dir;
    private readonly bool _ownsDir;

    private TestRelay(TempDirectory dir, bool ownsDir, IHost host, RelayMtaRuntime runtime)
    {
        _dir = dir;
        _ownsDir = ownsDir;
        Host = host;
        Runtime = runtime;
    }

    public IHost Host { get; }

    public RelayMtaRuntime Runtime { get; }

    public IPEndPoint Endpoint => Runtime.BoundEndpoints[0];

    public string MailRoot => _dir.Combine("mail");

    public string SpoolDir => _dir.Combine("spool");

    public TempDirectory Directory => _dir;

    public ActorSystem ActorSystem => Host.Services.GetRequiredService<ActorSystem>();

    public IActorRef Actor<TKey>() => Host.Services.GetRequiredService<ActorRegistry>().Get<TKey>();

    /// <summary>
    /// Starts a relay. <paramref name="extraHocon"/> is layered over the test defaults (local domain
    /// example.test, hostname mx.test, loopback allowed to relay).
    /// </summary>
    public static async Task<TestRelay> StartAsync(string extraHocon = "", TempDirectory? dir = null, SpoolOptions? spool = null,
        ILoggerProvider? log = null)
    {
        var owns = dir is null;
        dir ??= new TempDirectory();
        var hocon = $$"""
            relay-mta {
              hostname = "mx.test"
              listen = ["127.0.0.1:0"]
              spool-dir = "{{Escape(dir.Combine("spool"))}}"
              local {
                domains = ["example.test", "localhost"]
                mailbox-root = "{{Escape(dir.Combine("mail"))}}"
              }
              shutdown.drain-timeout = 5s
              admin.listen = ""
            }
            """;
        var config = ConfigLoader.LoadText(hocon + "\n" + extraHocon, "test.hocon");
        var (host, runtime) = RelayMtaHost.Create(config, logging =>
        {
            if (log is not null) logging.AddProvider(log);
            logging.SetMinimumLevel(LogLevel.Information);
        }, spool, services => services.AddRelayMtaAdmin());
        await host.StartAsync();
        return new TestRelay(dir, owns, host, runtime);
    }

    public static string Escape(string path) => path.Replace("\\", "\\\\", StringComparison.Ordinal);

    /// <summary>Files delivered to user@domain's Maildir new/ folder.</summary>
    public string[] Delivered(string user, string domain = "example.test")
    {
        var dir = Path.Combine(MailRoot, domain, user, "new");
        return System.IO.Directory.Exists(dir) ? System.IO.Directory.GetFiles(dir) : [];
    }

    /// <summary>Waits until user@domain has at least <paramref name="count"/> messages.</summary>
    public async Task<string[]> WaitForDeliveryAsync(string user, int count = 1, string domain = "example.test", TimeSpan? timeout = null)
    {
        string[] files = [];
        await Eventually.TrueAsync(() => (files = Delivered(user, domain)).Length >= count, timeout ?? TimeSpan.FromSeconds(20),
            () => $"{user}@{domain} has {files.Length} messages, expected {count}");
        return files;
    }

    public async Task StopAsync()
    {
        await Host.StopAsync();
        Host.Dispose();
        Runtime.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync();
        }
        catch (ObjectDisposedException)
        {
        }
        if (_ownsDir) _dir.Dispose();
    }
}
