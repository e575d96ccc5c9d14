using System.Net;
using System.Net.Sockets;
using Akka.Configuration;
using RelayMta.Engine.Hosting;

namespace RelayMta.Cli;

/// <summary>
/// Where the admin API is and the bearer token to send: <c>--url</c> and <c>--token-file</c> when
/// given, otherwise <c>relay-mta.admin.listen</c> and <c>relay-mta.admin.token-file</c> of the
/// configuration (the <c>--config</c> file layered over the embedded defaults, as the server layers
/// it; without <c>--config</c>, the defaults: http://127.0.0.1:8025, no token).
/// </summary>
/// <remarks>
/// Only those two keys are read. Building the server's whole settings would also read its TLS
/// key, users file and smarthost password, which an operator running this command need not be
/// able to read (and which the command has no use for).
/// </remarks>
internal sealed record AdminTarget(Uri Url, string? Token)
{
    public static AdminTarget Resolve(AdminOptions options)
    {
        string? configTokenFile = null;
        IPEndPoint? listen = null;
        var needConfig = options.Url is null || (options.TokenFile is null && options.ConfigPath is not null);
        if (needConfig)
        {
            var name = options.ConfigPath ?? ConfigLoader.DefaultsName;
            var admin = ReadAdminKeys(options.ConfigPath);
            if (admin.Listen.Length == 0 && options.Url is null)
                throw new CliException(CliExit.Unavailable,
                    $"the admin API is off in {name} (relay-mta.admin.listen is empty); give --url");
            if (admin.Listen.Length > 0 && !SettingsReader.TryParseEndpoint(admin.Listen, out listen!))
                throw new CliException(CliExit.Config,
                    $"configuration error: {name}: relay-mta.admin.listen: '{admin.Listen}' is not an \"ip:port\" endpoint");
            configTokenFile = admin.TokenFile.Length > 0 ? admin.TokenFile : null;
        }

        var url = options.Url ?? UrlOf(listen!);
        string? token = null;
        if (options.TokenFile is { } file) token = ReadToken(file, "--token-file", CliExit.Usage);
        else if (configTokenFile is { } fromConfig) token = ReadToken(fromConfig, "relay-mta.admin.token-file", CliExit.Config);
        return new AdminTarget(url, token);
    }

    /// <summary>The URL a client on this machine uses for a listen endpoint: a wildcard address means loopback.</summary>
    public static Uri UrlOf(IPEndPoint listen)
    {
        var address = listen.Address;
        if (address.Equals(IPAddress.Any)) address = IPAddress.Loopback;
        else if (address.Equals(IPAddress.IPv6Any)) address = IPAddress.IPv6Loopback;
        var host = address.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString();
        return new Uri($"http://{host}:{listen.Port}/");
    }

    /// <summary>The first line of the file, trimmed, as the server reads it.</summary>
    private static string ReadToken(string file, string what, int exitCode)
    {
        string? token;
        try
        {
            token = File.ReadLines(file).FirstOrDefault()?.Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException(exitCode, $"{what}: cannot read {file}: {e.Message.ReplaceLineEndings(" ")}", e);
        }
        if (string.IsNullOrEmpty(token)) throw new CliException(exitCode, $"{what}: {file} holds no token on its first line");
        return token;
    }

    private static (string Listen, string TokenFile) ReadAdminKeys(string? path)
    {
        var name = path ?? ConfigLoader.DefaultsName;
        try
        {
            var config = ConfigurationFactory.ParseString(ConfigLoader.DefaultsText());
            if (path is not null) config = ConfigurationFactory.ParseString(File.ReadAllText(path)).WithFallback(config);
            return (config.GetString("relay-mta.admin.listen", "").Trim(), config.GetString("relay-mta.admin.token-file", ""));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException(CliExit.Config, $"configuration error: {name}: cannot read the file ({e.Message.ReplaceLineEndings(" ")})", e);
        }
        catch (Exception e) when (e is not CliException)
        {
            throw new CliException(CliExit.Config, $"configuration error: {name}: {e.Message.Split('\n')[0].Trim()}", e);
        }
    }
}
