using System.Globalization;
using System.Text.Json;
using RelayMta.Engine.Spool;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace RelayMta.Cli;

/// <summary>
/// The readable output of the queue commands: tables of destinations and messages, one message in
/// full, and the offline spool listing. Everything the server sent is shown as text (never parsed
/// as markup); styles are dropped when the console has no colours.
/// </summary>
internal static class QueueRenderer
{
    /// <summary>Longest error text in a table cell; <c>queue show</c> gives it whole.</summary>
    public const int ErrorWidth = 80;

    public static void Summary(IAnsiConsole console, TableBorder border, QueueSummaryDto summary, DateTimeOffset now)
    {
        var destinations = summary.Destinations ?? [];
        if (summary.Messages == 0 && destinations.Count == 0)
        {
            console.WriteLine("the queue is empty");
            return;
        }
        console.WriteLine(summary.Messages == 0
            ? "the queue is empty"
            : $"{Count(summary.Messages, "message")}, {Count(summary.Recipients, "recipient")} queued; oldest {Age(summary.Oldest, now)}");
        if (destinations.Count == 0) return;

        var table = NewTable(border, "Destination", "Messages", "Recipients", "Oldest", "Next attempt", "Conns", "Last error", "State");
        foreach (var c in new[] { 1, 2, 5 }) table.Columns[c].RightAligned();
        foreach (var c in new[] { 0, 1, 2, 3, 4, 5 }) table.Columns[c].NoWrap();
        foreach (var d in destinations)
        {
            var marks = new List<string>();
            if (d.Suspended) marks.Add("[yellow]suspended[/]");
            if (d.CircuitOpen) marks.Add("[red]circuit open[/]");
            table.AddRow(
                Plain(d.Destination),
                Plain(Number(d.Messages)),
                Plain(Number(d.Recipients)),
                Plain(d.Messages == 0 ? "-" : Age(d.Oldest, now)),
                Plain(NextAttempt(d.NextAttempt, now)),
                Plain(Number(d.Connections)),
                Error(d.LastError),
                new Markup(marks.Count == 0 ? "" : string.Join(", ", marks)));
        }
        console.Write(table);
    }

    public static void List(IAnsiConsole console, TableBorder border, MessageListDto list, DateTimeOffset now)
    {
        var items = list.Items ?? [];
        if (items.Count == 0)
        {
            console.WriteLine(list.Total == 0
                ? "no messages match"
                : $"no messages on page {list.Page} ({Count(list.Total, "message")} match, {list.PageSize} a page)");
            return;
        }
        var table = NewTable(border, "ID", "Age", "Sender", "Rcpts/pending", "State", "Next attempt", "Last error");
        table.Columns[3].RightAligned();
        foreach (var c in new[] { 0, 1, 3, 4, 5 }) table.Columns[c].NoWrap(); // on a narrow terminal the sender and error wrap instead
        foreach (var m in items)
        {
            table.AddRow(
                Plain(m.Id),
                Plain(Age(m.Received, now)),
                Plain(Sender(m.Sender)),
                Plain($"{Number(m.Recipients)}/{Number(m.Pending)}"),
                State(m.State),
                Plain(m.State == "held" ? "-" : NextAttempt(m.NextAttempt, now)),
                Error(m.LastError));
        }
        console.Write(table);
        var first = (list.Page - 1) * list.PageSize + 1;
        var pages = Math.Max(1, (list.Total + list.PageSize - 1) / Math.Max(1, list.PageSize));
        console.WriteLine(list.Total <= items.Count && list.Page == 1
            ? Count(list.Total, "message")
            : $"messages {first}-{first + items.Count - 1} of {list.Total} (page {list.Page} of {pages})");
    }

    public static void Detail(IAnsiConsole console, TableBorder border, MessageDetailDto detail, DateTimeOffset now)
    {
        var s = detail.Summary;
        var e = detail.Envelope;
        // The envelope as "Label         value" lines, written as they are (no padding after the value).
        var writer = console.Profile.Out.Writer;
        void Row(string label, string? value)
        {
            if (value is not null) writer.WriteLine(label.PadRight(14) + value.ReplaceLineEndings(" "));
        }
        Row("ID", s.Id);
        Row("State", s.State);
        Row("Received", $"{Timestamp(e?.Received ?? s.Received)} ({Age(e?.Received ?? s.Received, now)} ago)");
        Row("Sender", Sender(e?.Sender ?? s.Sender));
        Row("Size", Size(e?.Size is > 0 ? e.Size : s.Size));
        Row("Recipients", s.Pending == s.Recipients ? Number(s.Recipients) : $"{Number(s.Recipients)} ({Number(s.Pending)} pending)");
        if (s.Destinations is { Count: > 0 } destinations) Row("Destinations", string.Join(", ", destinations));
        Row("Attempts", Number(s.Attempts));
        Row("Next attempt", s.State == "held" ? "held" : s.NextAttempt is { } next ? $"{NextAttempt(next, now)} ({Timestamp(next)})" : "-");
        if (e is not null)
        {
            Row("Client", $"{e.Helo} [{e.Client}]");
            Row("Protocol", e.Protocol);
            Row("Auth user", e.AuthUser);
            Row("Flags", Flags(e.Flags));
        }
        Row("Last error", s.LastError);

        console.WriteLine();
        console.WriteLine("Recipients:");
        var recipients = NewTable(border, "Address", "State", "Destination", "Status", "Diagnostic", "Remote MTA", "At");
        foreach (var r in detail.RecipientStatus ?? [])
        {
            recipients.AddRow(Plain(r.Address), State(r.State), Plain(r.Destination ?? "-"), Plain(r.Status ?? "-"), Plain(r.Diagnostic ?? "-"),
                Plain(r.RemoteMta ?? "-"), Plain(r.At is { } at ? Timestamp(at) : "-"));
        }
        console.Write(recipients);

        console.WriteLine();
        var attempts = detail.Attempts ?? [];
        if (attempts.Count == 0)
        {
            console.WriteLine("Attempts: none yet");
        }
        else
        {
            console.WriteLine("Attempts:");
            var table = NewTable(border, "At", "Recipient", "Relay", "TLS", "Status", "Result", "Diagnostic");
            foreach (var a in attempts)
            {
                table.AddRow(Plain(Timestamp(a.At)), Plain(a.Recipient ?? "-"), Plain(a.Relay ?? "-"), Plain(a.Tls ?? "none"), Plain(a.Status ?? "-"),
                    State(a.Result), Plain(a.Diagnostic ?? ""));
            }
            console.Write(table);
        }

        console.WriteLine();
        console.WriteLine("Headers:");
        // Verbatim, line by line: Spectre would re-wrap a single Text at the console width.
        var headers = (detail.Headers ?? "").ReplaceLineEndings("\n").TrimEnd('\n');
        foreach (var line in headers.Split('\n')) writer.WriteLine(line);
    }

    /// <summary>The messages of a stopped relay's spool, read offline.</summary>
    public static void Spool(IAnsiConsole console, TableBorder border, string directory, IReadOnlyList<SpoolEntry> entries, DateTimeOffset now)
    {
        if (entries.Count == 0)
        {
            console.WriteLine($"no messages in {directory}");
            return;
        }
        var table = NewTable(border, "ID", "Received", "Sender", "Recipients", "Size", "Attempts", "Next attempt", "Held");
        table.Columns[4].RightAligned();
        table.Columns[5].RightAligned();
        foreach (var c in new[] { 0, 4, 5, 6, 7 }) table.Columns[c].NoWrap();
        foreach (var entry in entries)
        {
            var envelope = entry.Envelope;
            var state = entry.State;
            var lines = envelope.Recipients.Select((address, i) =>
            {
                var r = i < state.Recipients.Length ? state.Recipients[i] : RecipientStatus.Fresh;
                return $"{address} {RecipientStateName(r.State)}{(r.Status is null ? "" : " " + r.Status)}";
            });
            table.AddRow(
                Plain(envelope.Id.Value),
                Plain($"{Timestamp(envelope.ReceivedAt)} ({Age(envelope.ReceivedAt, now)} ago)"),
                Plain(Sender(envelope.Sender)),
                Plain(string.Join("\n", lines)),
                Plain(Size(envelope.BodyLength)),
                Plain(Number(state.Attempts)),
                Plain(state.Held ? "-" : NextAttempt(state.NextAttemptAt, now)),
                Plain(state.Held ? "yes" : "no"));
        }
        console.Write(table);
        console.WriteLine($"{Count(entries.Count, "message")} in {directory}");
    }

    /// <summary>The JSON of <c>spool inspect --json</c>: one object per message.</summary>
    public static object SpoolJson(IReadOnlyList<SpoolEntry> entries) => entries.Select(entry => new
    {
        id = entry.Envelope.Id.Value,
        received = entry.Envelope.ReceivedAt,
        sender = entry.Envelope.Sender,
        recipients = entry.Envelope.Recipients.Select((address, i) =>
        {
            var r = i < entry.State.Recipients.Length ? entry.State.Recipients[i] : RecipientStatus.Fresh;
            return new { address, state = RecipientStateName(r.State), status = r.Status, diagnostic = r.Diagnostic, remoteMta = r.RemoteMta, at = r.At };
        }).ToList(),
        size = entry.Envelope.BodyLength,
        attempts = entry.State.Attempts,
        nextAttempt = entry.State.NextAttemptAt,
        held = entry.State.Held,
        client = entry.Envelope.ClientAddress,
        helo = entry.Envelope.HeloName,
        protocol = entry.Envelope.Protocol,
        authUser = entry.Envelope.AuthUser,
    }).ToList();

    public static string RecipientStateName(RecipientState state) => state.ToString().ToLowerInvariant();

    /// <summary>"45s", "3m12s", "2h05m", "3d04h": the two largest units.</summary>
    public static string Duration(TimeSpan span)
    {
        if (span < TimeSpan.Zero) span = TimeSpan.Zero;
        var seconds = (long)span.TotalSeconds;
        if (seconds < 60) return $"{seconds}s";
        if (seconds < 3600) return $"{seconds / 60}m{seconds % 60:00}s";
        if (seconds < 86400) return $"{seconds / 3600}h{seconds % 3600 / 60:00}m";
        return $"{seconds / 86400}d{seconds % 86400 / 3600:00}h";
    }

    public static string Age(DateTimeOffset? since, DateTimeOffset now) => since is { } s ? Duration(now - s) : "-";

    /// <summary>"in 59m58s", "due" (the time has come), or "-" (none planned).</summary>
    public static string NextAttempt(DateTimeOffset? next, DateTimeOffset now) =>
        next is not { } n ? "-" : n <= now ? "due" : "in " + Duration(n - now);

    public static string Timestamp(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    public static string Size(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0:0.#} KiB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024):0.#} MiB"),
    };

    private static string Sender(string? sender) => string.IsNullOrEmpty(sender) ? "<>" : sender;

    private static string Number(int n) => n.ToString(CultureInfo.InvariantCulture);

    private static string Count(int n, string noun) => $"{Number(n)} {noun}{(n == 1 ? "" : "s")}";

    private static string Flags(JsonElement flags) => flags.ValueKind switch
    {
        JsonValueKind.Number when flags.TryGetInt32(out var n) => n == 0 ? "none" : ((MessageFlags)n).ToString(),
        JsonValueKind.String => flags.GetString() ?? "",
        JsonValueKind.Array when flags.GetArrayLength() > 0 => string.Join(", ", flags.EnumerateArray().Select(f => f.ToString())),
        _ => "none",
    };

    private static Table NewTable(TableBorder border, params string[] headings)
    {
        var table = new Table().Border(border);
        foreach (var h in headings) table.AddColumn(new TableColumn(new Text(h, new Style(decoration: Decoration.Bold))));
        return table;
    }

    private static IRenderable Plain(string text) => new Text(text);

    private static IRenderable Error(string? text)
    {
        if (string.IsNullOrEmpty(text)) return new Text("");
        var line = text.ReplaceLineEndings(" ");
        if (line.Length > ErrorWidth) line = line[..(ErrorWidth - 3)] + "...";
        return new Text(line, new Style(Color.Red));
    }

    private static IRenderable State(string? state) => new Text(state ?? "-", state switch
    {
        "held" or "deferred" => new Style(Color.Yellow),
        "failed" or "bounced" or "bounce" => new Style(Color.Red),
        "delivered" or "sent" => new Style(Color.Green),
        _ => Style.Plain,
    });
}
