using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using RelayMta.Admin;

namespace RelayMta.IntegrationTests.Infrastructure;

/// <summary>An HTTP answer from the admin server: status, content type and body (parsed when it is JSON).</summary>
public sealed record AdminResponse(HttpStatusCode Status, string? ContentType, string Text, HttpResponseMessage Message)
{
    public JsonElement Json => JsonDocument.Parse(Text).RootElement;

    public override string ToString() => $"{(int)Status} {ContentType}: {(Text.Length > 2000 ? Text[..2000] + "..." : Text)}";
}

/// <summary>Talks to a relay's admin listener over real HTTP on loopback, with the bearer token when given.</summary>
public sealed class AdminClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly string? _token;

    public AdminClient(IPEndPoint endpoint, string? token = null)
    {
        _http = new HttpClient { BaseAddress = new Uri($"http://{endpoint}/"), Timeout = TimeSpan.FromSeconds(20) };
        _token = token;
    }

    /// <summary>A client for the admin server of <paramref name="relay"/> (which must have one listening).</summary>
    public static AdminClient For(TestRelay relay, string? token = null) => new(EndpointOf(relay), token);

    public static IPEndPoint EndpointOf(TestRelay relay) =>
        relay.Host.Services.GetRequiredService<AdminServer>().Endpoint ?? throw new InvalidOperationException("the admin server is not listening");

    public Task<AdminResponse> GetAsync(string path, string? token = null) => SendAsync(HttpMethod.Get, path, token);

    public Task<AdminResponse> PostAsync(string path, string? token = null) => SendAsync(HttpMethod.Post, path, token);

    public Task<AdminResponse> DeleteAsync(string path, string? token = null) => SendAsync(HttpMethod.Delete, path, token);

    /// <summary>Sends a request; <paramref name="token"/> replaces the client's token ("" sends none).</summary>
    public async Task<AdminResponse> SendAsync(HttpMethod method, string path, string? token = null, Action<HttpRequestMessage>? configure = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if ((token ?? _token) is { Length: > 0 } bearer) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        configure?.Invoke(request);
        return await ReadAsync(await _http.SendAsync(request));
    }

    /// <summary>GETs JSON and insists on 200.</summary>
    public async Task<JsonElement> JsonAsync(string path)
    {
        var response = await GetAsync(path);
        Assert.True(response.Status == HttpStatusCode.OK, $"GET {path}: {response}");
        Assert.StartsWith("application/json", response.ContentType);
        return response.Json;
    }

    private static async Task<AdminResponse> ReadAsync(HttpResponseMessage message) =>
        new(message.StatusCode, message.Content.Headers.ContentType?.ToString(), await message.Content.ReadAsStringAsync(), message);

    public void Dispose() => _http.Dispose();
}
