using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace RelayMta.Admin;

/// <summary>
/// Runs before every route: the bearer token when one is configured; without one (loopback only),
/// two checks that keep a web page in the operator's browser from driving the API (DNS rebinding, CSRF).
/// </summary>
internal sealed class AdminGuard
{
    private readonly byte[]? _tokenHash;
    private readonly ILogger _log;

    public AdminGuard(string? token, ILogger log)
    {
        _tokenHash = token is null ? null : SHA256.HashData(Encoding.UTF8.GetBytes(token));
        _log = log;
    }

    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var request = context.Request;
        // Without a token the listener is on loopback (the settings insist), and only a client on
        // this machine may use it. A browser page whose own host name resolves to 127.0.0.1 (DNS
        // rebinding) would send that name as Host: refuse anything but loopback names.
        if (_tokenHash is null && !IsLoopbackHost(request.Host))
        {
            await AdminApi.Error(StatusCodes.Status403Forbidden, $"Host '{request.Host}' is not a loopback name").ExecuteAsync(context);
            return;
        }
        // A form or fetch from another site can send a POST without a preflight; browsers label it with
        // Origin. (With a token there is nothing to forge: browsers never add a bearer token by themselves.)
        if (_tokenHash is null && !HttpMethods.IsGet(request.Method) && !HttpMethods.IsHead(request.Method)
            && request.Headers.Origin is [{ } origin] && !SameOrigin(origin, request.Host))
        {
            await AdminApi.Error(StatusCodes.Status403Forbidden, "cross-origin requests are refused").ExecuteAsync(context);
            return;
        }
        if (_tokenHash is not null && !IsPublic(request) && !HasToken(request))
        {
            _log.LogWarning("admin: refused {Method} {Path} from {Remote}: missing or wrong bearer token", request.Method, request.Path,
                context.Connection.RemoteIpAddress);
            context.Response.Headers.WWWAuthenticate = "Bearer realm=\"relaymta\"";
            await AdminApi.Error(StatusCodes.Status401Unauthorized, "a valid bearer token is required").ExecuteAsync(context);
            return;
        }
        await next(context);
    }

    /// <summary>
    /// Health probes, and the dashboard's static files: they hold no data, and a browser cannot send
    /// a bearer token when it opens a page (the dashboard's script sends it with each API call).
    /// </summary>
    private static bool IsPublic(HttpRequest request) =>
        request.Path == "/healthz" || request.Path == "/readyz"
        || (HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method))
        && (request.Path == "/" || request.Path.StartsWithSegments("/dashboard"));

    private bool HasToken(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        const string scheme = "Bearer ";
        if (!header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)) return false;
        // Hash first, so the comparison takes the same time whatever the length of the guess.
        var offered = SHA256.HashData(Encoding.UTF8.GetBytes(header[scheme.Length..].Trim()));
        return CryptographicOperations.FixedTimeEquals(offered, _tokenHash);
    }

    private static bool IsLoopbackHost(HostString host) =>
        host.Host.Equals("localhost", StringComparison.OrdinalIgnoreCase)
        || IPAddress.TryParse(host.Host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip);

    private static bool SameOrigin(string origin, HostString host) =>
        Uri.TryCreate(origin, UriKind.Absolute, out var uri) && string.Equals(uri.Authority, host.Value, StringComparison.OrdinalIgnoreCase);
}
