using System.Text.Json;
using Microsoft.Extensions.Logging;
using RelayMta.Engine.Spool;

namespace RelayMta.Cli;

/// <summary>
/// <c>RelayMta queue …</c>, <c>RelayMta destination …</c> (clients of the running relay's admin
/// API) and <c>RelayMta spool inspect DIR</c> (reads a stopped relay's spool). Exit codes:
/// <see cref="CliExit"/>.
/// </summary>
internal static class OperatorCli
{
    public static bool Handles(string[] args) => args.Length > 0 && CommandLine.Groups.Contains(args[0]);

    public static async Task<int> RunAsync(string[] args, CliConsole console, CancellationToken cancellationToken = default)
    {
        switch (CommandLine.Parse(args))
        {
            case CliParse.Help:
                await console.Out.WriteLineAsync(CliUsage.Operator);
                return CliExit.Ok;
            case CliParse.Error error:
                await console.Error.WriteLineAsync($"relaymta: {error.Problem}");
                await console.Error.WriteLineAsync();
                await console.Error.WriteLineAsync(CliUsage.Operator);
                return CliExit.Usage;
            case CliParse.Run { Command: var command }:
                try
                {
                    return command.Action == CliAction.SpoolInspect
                        ? InspectSpool(command, console)
                        : await CallAdminAsync(command, console, cancellationToken);
                }
                catch (CliException e)
                {
                    await console.Error.WriteLineAsync($"relaymta: {e.Message}");
                    return e.ExitCode;
                }
            default:
                throw new InvalidOperationException("unexpected parse result");
        }
    }

    private static async Task<int> CallAdminAsync(CliCommand command, CliConsole console, CancellationToken cancellationToken)
    {
        var target = AdminTarget.Resolve(command.Admin);
        using var client = new AdminClient(target, console.Handler);
        var (method, route) = AdminRoutes.For(command);
        var notFound = command.Action switch
        {
            CliAction.QueueSummary or CliAction.QueueList => null, // these never 404 on a RelayMta
            CliAction.QueueRetry when command.Id is null => $"no messages for {command.Destination}",
            CliAction.DestinationSuspend or CliAction.DestinationResume => $"no destination '{command.Destination}'",
            _ => $"no message '{command.Id}' in the queue",
        };
        var response = await client.SendAsync(method, route, notFound, cancellationToken);

        if (command.Json)
        {
            await console.Out.WriteLineAsync(AdminJson.Pretty(response.Body));
            return ActionFound(command, response.Body) ? CliExit.Ok : CliExit.NotFound;
        }

        var now = console.Clock();
        switch (command.Action)
        {
            case CliAction.QueueSummary:
                QueueRenderer.Summary(console.Tables, console.Border, Read<QueueSummaryDto>(response), now);
                return CliExit.Ok;
            case CliAction.QueueList:
                QueueRenderer.List(console.Tables, console.Border, Read<MessageListDto>(response), now);
                return CliExit.Ok;
            case CliAction.QueueShow:
                var detail = Read<MessageDetailDto>(response);
                if (detail.Summary is null) throw new CliException(CliExit.Unavailable, "the admin API sent a message without its summary");
                QueueRenderer.Detail(console.Tables, console.Border, detail, now);
                return CliExit.Ok;
            default:
            {
                var result = response.Body.Trim().Length == 0 ? new ActionResultDto(true, 0, null) : Read<ActionResultDto>(response);
                if (!result.Found)
                {
                    await console.Error.WriteLineAsync($"relaymta: {notFound ?? result.Message}");
                    return CliExit.NotFound;
                }
                await console.Out.WriteLineAsync(result.Message ?? Done(command, result.Affected));
                return CliExit.Ok;
            }
        }
    }

    /// <summary>An action answered 200 with <c>"found": false</c> is "not found" too, JSON or not.</summary>
    private static bool ActionFound(CliCommand command, string body)
    {
        if (command.Action is CliAction.QueueSummary or CliAction.QueueList or CliAction.QueueShow) return true;
        try
        {
            using var document = JsonDocument.Parse(body);
            return !(document.RootElement.ValueKind == JsonValueKind.Object
                     && document.RootElement.EnumerateObject().Any(p => p.Name.Equals("found", StringComparison.OrdinalIgnoreCase)
                                                                        && p.Value.ValueKind == JsonValueKind.False));
        }
        catch (JsonException)
        {
            return true;
        }
    }

    private static string Done(CliCommand c, int affected) => c.Action switch
    {
        CliAction.QueueRetry => $"queued {affected} message{(affected == 1 ? "" : "s")} for retry",
        CliAction.QueueHold => $"message {c.Id} held",
        CliAction.QueueRelease => $"message {c.Id} released",
        CliAction.QueueDelete => $"message {c.Id} deleted{(c.Bounce ? " with a bounce to the sender" : "")}",
        CliAction.DestinationSuspend => $"destination {c.Destination} suspended",
        CliAction.DestinationResume => $"destination {c.Destination} resumed",
        _ => "done",
    };

    private static T Read<T>(AdminResponse response)
    {
        try
        {
            return JsonSerializer.Deserialize<T>(response.Body, AdminJson.Read)
                   ?? throw new JsonException("null");
        }
        catch (JsonException e)
        {
            throw new CliException(CliExit.Unavailable, $"the admin API sent what this command cannot read ({typeof(T).Name[..^3]}): {e.Message}", e);
        }
    }

    /// <summary><c>spool inspect DIR</c>: the messages of a stopped relay's spool, read without changing it.</summary>
    private static int InspectSpool(CliCommand command, CliConsole console)
    {
        var directory = command.Directory!;
        if (!Directory.Exists(directory)) throw new CliException(CliExit.NotFound, $"{directory}: no such directory");
        IReadOnlyList<SpoolEntry> entries;
        try
        {
            entries = Spool.Inspect(directory, new StderrLogger(console.Error));
        }
        catch (DirectoryNotFoundException e)
        {
            throw new CliException(CliExit.NotFound, e.Message, e);
        }
        catch (IOException e) when (e.Message.Contains("in use", StringComparison.Ordinal))
        {
            throw new CliException(CliExit.Unavailable,
                $"{directory} is in use by a running relay: use 'RelayMta queue list' (its admin API) instead", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException(CliExit.Unavailable, $"{directory}: cannot read the spool: {e.Message.ReplaceLineEndings(" ")}", e);
        }

        if (command.Json)
        {
            console.Out.WriteLine(JsonSerializer.Serialize(QueueRenderer.SpoolJson(entries), AdminJson.Write));
            return CliExit.Ok;
        }
        QueueRenderer.Spool(console.Tables, console.Border, directory, entries, console.Clock());
        return CliExit.Ok;
    }

    /// <summary>The spool's warnings (a torn record, say) as "relaymta: warning: …" lines on standard error.</summary>
    private sealed class StderrLogger(TextWriter error) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            error.WriteLine($"relaymta: {(logLevel >= LogLevel.Error ? "error" : "warning")}: {formatter(state, exception)}");
        }
    }
}
