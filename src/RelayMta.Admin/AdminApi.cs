using System.Globalization;
using Akka.Actor;
using Akka.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using RelayMta.Engine.Hosting;
using RelayMta.Engine.Queue;
using RelayMta.Engine.Spool;

namespace RelayMta.Admin;

/// <summary>
/// The routes of the admin API. Queue matters are asked of the queue manager (which owns the
/// messages) with <see cref="AdminProtocol"/>; health, metrics, stats and reload come from the
/// runtime. Every answer is JSON (camelCase) except <c>/metrics</c>; errors are <c>{"error": "..."}</c>.
/// </summary>
internal sealed class AdminApi(RelayMtaRuntime runtime, IReadOnlyActorRegistry registry, ActorSystem system, ILogger log)
{
    /// <summary>How long the queue manager has to answer before the request gets a 503.</summary>
    internal static TimeSpan AskTimeout { get; set; } = TimeSpan.FromSeconds(5);

    private const int MaxPageSize = 1000;

    public void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", Health);
        app.MapGet("/readyz", ReadyAsync);
        app.MapGet("/metrics", MetricsAsync);
        app.MapGet("/api/stats", () => Json(runtime.Metrics.Activity.Snapshot()));
        app.MapPost("/api/reload", ReloadAsync);

        app.MapGet("/api/queue", (CancellationToken ct) => AskAsync(AdminProtocol.GetSummary.Instance, ct));
        app.MapGet("/api/messages", ListAsync);
        app.MapGet("/api/messages/{id}", (string id, CancellationToken ct) =>
            WithId(id, q => AskAsync(new AdminProtocol.GetMessage(q), ct)));
        app.MapPost("/api/messages/{id}/retry", (string id, CancellationToken ct) =>
            WithId(id, q => ActAsync("retry", id, new AdminProtocol.Retry(Id: q), ct)));
        app.MapPost("/api/messages/{id}/hold", (string id, CancellationToken ct) =>
            WithId(id, q => ActAsync("hold", id, new AdminProtocol.Hold(q), ct)));
        app.MapPost("/api/messages/{id}/release", (string id, CancellationToken ct) =>
            WithId(id, q => ActAsync("release", id, new AdminProtocol.Release(q), ct)));
        app.MapDelete("/api/messages/{id}", (string id, string? bounce, CancellationToken ct) =>
        {
            if (!TryParseBool(bounce, out var withBounce)) return Task.FromResult(Error(400, $"bounce must be true or false, not '{bounce}'"));
            return WithId(id, q => ActAsync(withBounce ? "delete with bounce" : "delete", id, new AdminProtocol.Delete(q, withBounce), ct));
        });
        app.MapPost("/api/retry", (CancellationToken ct) => ActAsync("retry", "all", new AdminProtocol.Retry(All: true), ct));
        app.MapPost("/api/destinations/{destination}/retry", (string destination, CancellationToken ct) =>
            ActAsync("retry", destination, new AdminProtocol.Retry(Destination: destination), ct));
        app.MapPost("/api/destinations/{destination}/suspend", (string destination, CancellationToken ct) =>
            ActAsync("suspend", destination, new AdminProtocol.Suspend(destination), ct));
        app.MapPost("/api/destinations/{destination}/resume", (string destination, CancellationToken ct) =>
            ActAsync("resume", destination, new AdminProtocol.Resume(destination), ct));
    }

    /// <summary>An error answer: <c>{"error": message}</c>.</summary>
    public static IResult Error(int status, string message) => Results.Json(new { error = message }, AdminJson.Options, statusCode: status);

    private static IResult Json(object value, int status = StatusCodes.Status200OK) => Results.Json(value, AdminJson.Options, statusCode: status);

    // Alive while the actor system runs; the probe does not touch the queue, which may be busy.
    private IResult Health() =>
        system.WhenTerminated.IsCompleted
            ? Json(new { status = "terminated" }, StatusCodes.Status503ServiceUnavailable)
            : Json(new { status = "ok" });

    private async Task<IResult> ReadyAsync()
    {
        var readiness = await runtime.ReadinessAsync();
        return Json(readiness, readiness.Ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable);
    }

    private async Task MetricsAsync(HttpContext context)
    {
        context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
        await runtime.Metrics.WriteAsync(context.Response.Body, context.RequestAborted);
    }

    private async Task<IResult> ReloadAsync()
    {
        var result = await runtime.ReloadAsync();
        log.LogInformation("admin: reload configuration: {Result}: {Message}", result.Ok ? "done" : "refused", result.Message);
        return result.Ok
            ? Json(new { ok = true, message = result.Message })
            : Json(new { ok = false, error = result.Message }, StatusCodes.Status422UnprocessableEntity);
    }

    private Task<IResult> ListAsync(HttpRequest request, CancellationToken ct)
    {
        var q = request.Query;
        string? Text(string name) => q[name] is [{ Length: > 0 } v] ? v : null;

        var state = Text("state");
        if (state is not null && state is not ("active" or "deferred" or "held"))
            return Task.FromResult(Error(400, $"state must be active, deferred or held, not '{state}'"));
        if (!TryParseDuration(Text("minAge"), out var minAge)) return Task.FromResult(Error(400, "minAge must be a duration such as 90s, 5m, 2h or 1d"));
        if (!TryParseDuration(Text("maxAge"), out var maxAge)) return Task.FromResult(Error(400, "maxAge must be a duration such as 90s, 5m, 2h or 1d"));
        if (!TryParseInt(Text("page"), 1, 1, int.MaxValue, out var page)) return Task.FromResult(Error(400, "page must be a whole number from 1"));
        if (!TryParseInt(Text("pageSize"), 50, 1, MaxPageSize, out var pageSize))
            return Task.FromResult(Error(400, $"pageSize must be a whole number from 1 to {MaxPageSize}"));

        var filter = new AdminProtocol.MessageFilter(Text("destination"), Text("sender"), Text("recipient"), state, minAge, maxAge);
        return AskAsync(new AdminProtocol.ListMessages(filter, page, pageSize), ct);
    }

    private static Task<IResult> WithId(string id, Func<QueueId, Task<IResult>> then) =>
        QueueId.IsWellFormed(id) ? then(new QueueId(id)) : Task.FromResult(Error(400, $"'{id}' is not a queue id"));

    /// <summary>An operator action: asked, logged with its result, answered 200 (or 404 when there was nothing to act on).</summary>
    private async Task<IResult> ActAsync(string action, string target, object message, CancellationToken ct)
    {
        var (reply, error) = await TryAskAsync(message, ct);
        if (error is not null)
        {
            log.LogWarning("admin: {Action} {Target}: failed: {Error}", action, target, error.Value.Message);
            return Error(error.Value.Status, error.Value.Message);
        }
        if (reply is not AdminProtocol.ActionResult result) return Unexpected(reply);
        log.LogDebug("admin: {Action} {Target}: {Result} ({Affected} affected)", action, target, result.Message, result.Affected);
        return result.Found ? Json(result) : Error(StatusCodes.Status404NotFound, result.Message);
    }

    private async Task<IResult> AskAsync(object message, CancellationToken ct)
    {
        var (reply, error) = await TryAskAsync(message, ct);
        if (error is not null) return Error(error.Value.Status, error.Value.Message);
        return reply switch
        {
            AdminProtocol.Summary s => Json(s),
            AdminProtocol.MessageList l => Json(l),
            AdminProtocol.MessageDetail d => Json(MessageJson.From(d)),
            AdminProtocol.NotFound n => Error(StatusCodes.Status404NotFound, n.What),
            _ => Unexpected(reply),
        };
    }

    private async Task<(object? Reply, (int Status, string Message)? Error)> TryAskAsync(object message, CancellationToken ct)
    {
        if (!registry.TryGet<QueueManagerKey>(out var queue))
            return (null, (StatusCodes.Status503ServiceUnavailable, "the queue manager is not running"));
        try
        {
            return (await queue.Ask<object>(message, AskTimeout, ct), null);
        }
        catch (AskTimeoutException)
        {
            return (null, (StatusCodes.Status503ServiceUnavailable, $"the queue manager did not answer within {AskTimeout.TotalSeconds:0.#} s"));
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            log.LogError(e, "admin: {Request} failed", message.GetType().Name);
            return (null, (StatusCodes.Status500InternalServerError, e.Message));
        }
    }

    private IResult Unexpected(object? reply)
    {
        log.LogError("admin: unexpected reply from the queue manager: {Reply}", reply);
        return Error(StatusCodes.Status500InternalServerError, "unexpected reply from the queue manager");
    }

    private static bool TryParseBool(string? text, out bool value)
    {
        value = false;
        return text is null or "" || bool.TryParse(text, out value);
    }

    private static bool TryParseInt(string? text, int fallback, int min, int max, out int value)
    {
        value = fallback;
        return text is null || int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value) && value >= min && value <= max;
    }

    /// <summary>"90s", "5m", "2h", "1d", or plain seconds; null when absent.</summary>
    internal static bool TryParseDuration(string? text, out TimeSpan? value)
    {
        value = null;
        if (text is null) return true;
        var unit = char.IsAsciiLetter(text[^1]) ? char.ToLowerInvariant(text[^1]) : 's';
        var number = char.IsAsciiLetter(text[^1]) ? text[..^1] : text;
        if (!long.TryParse(number, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n > 100_000_000) return false;
        TimeSpan? parsed = unit switch
        {
            's' => TimeSpan.FromSeconds(n),
            'm' => TimeSpan.FromMinutes(n),
            'h' => TimeSpan.FromHours(n),
            'd' => TimeSpan.FromDays(n),
            _ => null,
        };
        value = parsed;
        return parsed is not null;
    }
}
