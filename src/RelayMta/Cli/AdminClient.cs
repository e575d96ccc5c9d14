using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text.Json;

namespace RelayMta.Cli;

/// <summary>The server's answer to one request: its status and body.</summary>
internal sealed record AdminResponse(HttpStatusCode Status, string Body);

/// <summary>
/// The admin HTTP API as the CLI calls it. Failures become <see cref="CliException"/>s with the exit
/// code of the contract: 404 → 1; 400 → 2; connection refused, timeout, unknown host, 401, 403 and
/// 5xx → 3.
/// </summary>
internal sealed class AdminClient : IDisposable
{
    /// <summary>How long one request may take, connecting included.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    private readonly HttpClient _http;
    private readonly Uri _base;

    public AdminClient(AdminTarget target, HttpMessageHandler? handler = null, TimeSpan? timeout = null)
    {
        // A base with a path ("http://host/relay") must end in '/' so relative routes go under it.
        _base = target.Url.AbsolutePath.EndsWith('/') ? target.Url : new Uri(target.Url + "/");
        _http = handler is null
            ? new HttpClient(new SocketsHttpHandler { ConnectTimeout = timeout ?? DefaultTimeout, UseProxy = false })
            : new HttpClient(handler);
        _http.Timeout = timeout ?? DefaultTimeout;
        _http.DefaultRequestHeaders.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("relaymta-cli", "1"));
        if (target.Token is { } token) _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
    }

    public Uri BaseUrl => _base;

    /// <summary>
    /// Sends the request and returns a 2xx answer; anything else throws. <paramref name="notFound"/>
    /// is the message for a 404 (always the same words, for scripts); null when a 404 can only mean
    /// the wrong server or an older one (exit 3).
    /// </summary>
    public async Task<AdminResponse> SendAsync(HttpMethod method, string route, string? notFound, CancellationToken cancellationToken = default)
    {
        var url = new Uri(_base, route);
        HttpResponseMessage response;
        string body;
        try
        {
            using var request = new HttpRequestMessage(method, url);
            response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
            body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new CliException(CliExit.Unavailable, $"cannot reach the admin API at {_base}: {Describe(e)}", e);
        }
        catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new CliException(CliExit.Unavailable, $"cannot reach the admin API at {_base}: no answer in {_http.Timeout.TotalSeconds:0} s", e);
        }
        using (response)
        {
            var status = response.StatusCode;
            if ((int)status is >= 200 and < 300) return new AdminResponse(status, body);
            var reason = ErrorText(body);
            throw status switch
            {
                HttpStatusCode.Unauthorized => new CliException(CliExit.Unavailable, "unauthorized: check --token-file"),
                HttpStatusCode.Forbidden => new CliException(CliExit.Unavailable, $"forbidden: {reason ?? "the server refused the request"}"),
                HttpStatusCode.NotFound when notFound is not null => new CliException(CliExit.NotFound, notFound),
                HttpStatusCode.NotFound => new CliException(CliExit.Unavailable, $"{url} is not there (404): is {_base} RelayMta's admin API?"),
                HttpStatusCode.BadRequest => new CliException(CliExit.Usage, reason ?? "the server refused the request as malformed (400)"),
                _ when (int)status >= 500 => new CliException(CliExit.Unavailable,
                    $"the admin API failed: {(int)status} {response.ReasonPhrase}{(reason is null ? "" : ": " + reason)}"),
                _ => new CliException(CliExit.Unavailable,
                    $"unexpected answer from the admin API: {(int)status} {response.ReasonPhrase}{(reason is null ? "" : ": " + reason)}"),
            };
        }
    }

    public void Dispose() => _http.Dispose();

    /// <summary>The reason in an error body: the "error", "message", "detail" or "title" of a JSON object, or the text itself.</summary>
    internal static string? ErrorText(string body)
    {
        var text = body.Trim();
        if (text.Length == 0) return null;
        if (text.StartsWith('{'))
        {
            try
            {
                using var document = JsonDocument.Parse(text);
                foreach (var name in (string[])["error", "message", "detail", "title"])
                {
                    foreach (var property in document.RootElement.EnumerateObject())
                    {
                        if (property.Name.Equals(name, StringComparison.OrdinalIgnoreCase) && property.Value.ValueKind == JsonValueKind.String
                            && property.Value.GetString() is { Length: > 0 } value)
                            return value;
                    }
                }
                return null;
            }
            catch (JsonException)
            {
                // not JSON after all: show the text
            }
        }
        var line = text.ReplaceLineEndings(" ");
        return line.Length <= 200 ? line : line[..200] + "...";
    }

    private static string Describe(HttpRequestException e)
    {
        for (Exception? inner = e; inner is not null; inner = inner.InnerException)
        {
            if (inner is SocketException s)
            {
                return s.SocketErrorCode switch
                {
                    SocketError.ConnectionRefused => "connection refused (is the relay running, with admin.listen set?)",
                    SocketError.HostNotFound or SocketError.NoData or SocketError.TryAgain => "unknown host",
                    SocketError.TimedOut => "connection timed out",
                    _ => s.Message,
                };
            }
        }
        return e.Message;
    }
}
