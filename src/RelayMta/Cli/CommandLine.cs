using System.Globalization;

namespace RelayMta.Cli;

/// <summary>What an operator command asks for.</summary>
internal enum CliAction
{
    QueueSummary,
    QueueList,
    QueueShow,
    QueueRetry,
    QueueHold,
    QueueRelease,
    QueueDelete,
    DestinationSuspend,
    DestinationResume,
    SpoolInspect,
}

/// <summary>Where the admin API is and how to talk to it; null means "from the configuration".</summary>
internal sealed record AdminOptions(Uri? Url = null, string? ConfigPath = null, string? TokenFile = null);

/// <summary>The filters and page of <c>queue list</c>; null means any (or the server's default page).</summary>
internal sealed record ListOptions(
    string? Destination = null,
    string? Sender = null,
    string? Recipient = null,
    string? State = null,
    long? MinAgeSeconds = null,
    long? MaxAgeSeconds = null,
    int? Page = null,
    int? PageSize = null);

/// <summary>One parsed operator command.</summary>
internal sealed record CliCommand(CliAction Action)
{
    public AdminOptions Admin { get; init; } = new();

    /// <summary>Print the server's JSON (or, for spool inspect, our own) instead of tables.</summary>
    public bool Json { get; init; }

    /// <summary>The queue id of show, retry ID, hold, release, delete.</summary>
    public string? Id { get; init; }

    /// <summary>The destination of retry --destination, suspend, resume.</summary>
    public string? Destination { get; init; }

    /// <summary>retry --all.</summary>
    public bool All { get; init; }

    /// <summary>delete --bounce.</summary>
    public bool Bounce { get; init; }

    public ListOptions List { get; init; } = new();

    /// <summary>The spool directory of spool inspect.</summary>
    public string? Directory { get; init; }
}

/// <summary>The outcome of parsing: a command, a request for help, or a usage error.</summary>
internal abstract record CliParse
{
    public sealed record Run(CliCommand Command) : CliParse;

    public sealed record Help : CliParse;

    public sealed record Error(string Problem) : CliParse;
}

/// <summary>
/// Parses <c>queue …</c>, <c>destination …</c> and <c>spool …</c> command lines. Options may come
/// before or after the words, as <c>--name VALUE</c> or <c>--name=VALUE</c>; <c>--</c> ends the
/// options. Anything unknown, missing, repeated or out of range is a usage error.
/// </summary>
internal static class CommandLine
{
    public static readonly string[] Groups = ["queue", "destination", "spool"];

    private static readonly HashSet<string> ValueOptions =
    [
        "--url", "--config", "--token-file", "--destination", "--sender", "--recipient", "--state", "--min-age", "--max-age", "--page",
        "--page-size",
    ];

    private static readonly HashSet<string> FlagOptions = ["--json", "--all", "--bounce"];

    private static readonly string[] AdminOptionNames = ["--url", "--config", "--token-file", "--json"];

    private static readonly string[] States = ["active", "deferred", "held"];

    /// <summary>Most messages one page may hold; the server clamps to the same.</summary>
    public const int MaxPageSize = 1000;

    public static CliParse Parse(IReadOnlyList<string> args)
    {
        if (args.Count == 0 || !Groups.Contains(args[0])) return new CliParse.Error("expected queue, destination or spool");
        var group = args[0];
        var words = new List<string>();
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var flags = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 1; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg == "--")
            {
                words.AddRange(args.Skip(i + 1));
                break;
            }
            if (arg is "--help" or "-h") return new CliParse.Help();
            if (!arg.StartsWith('-') || arg == "-")
            {
                words.Add(arg);
                continue;
            }
            var name = arg;
            string? inline = null;
            var eq = arg.IndexOf('=', StringComparison.Ordinal);
            if (arg.StartsWith("--", StringComparison.Ordinal) && eq > 2)
            {
                name = arg[..eq];
                inline = arg[(eq + 1)..];
            }
            if (name == "-c") name = "--config";
            if (ValueOptions.Contains(name))
            {
                if (values.ContainsKey(name)) return new CliParse.Error($"{name} is given twice");
                var value = inline;
                if (value is null)
                {
                    if (i + 1 >= args.Count) return new CliParse.Error($"{name} needs a value");
                    value = args[++i];
                }
                if (value.Length == 0) return new CliParse.Error($"{name} needs a value");
                values[name] = value;
            }
            else if (FlagOptions.Contains(name) && inline is null)
            {
                if (!flags.Add(name)) return new CliParse.Error($"{name} is given twice");
            }
            else
            {
                return new CliParse.Error($"unknown option '{arg}'");
            }
        }

        if (words.Count == 0) return new CliParse.Error(MissingVerb(group));
        var verb = words[0];
        var operands = words.Skip(1).ToList();
        var action = (group, verb) switch
        {
            ("queue", "summary") => CliAction.QueueSummary,
            ("queue", "list") => CliAction.QueueList,
            ("queue", "show") => CliAction.QueueShow,
            ("queue", "retry") => CliAction.QueueRetry,
            ("queue", "hold") => CliAction.QueueHold,
            ("queue", "release") => CliAction.QueueRelease,
            ("queue", "delete") => CliAction.QueueDelete,
            ("destination", "suspend") => CliAction.DestinationSuspend,
            ("destination", "resume") => CliAction.DestinationResume,
            ("spool", "inspect") => CliAction.SpoolInspect,
            _ => (CliAction?)null,
        };
        if (action is not { } a) return new CliParse.Error($"unknown command '{group} {verb}'");
        var title = $"{group} {verb}";

        // Which options each command takes, besides the admin ones.
        string[] own = a switch
        {
            CliAction.QueueList => ["--destination", "--sender", "--recipient", "--state", "--min-age", "--max-age", "--page", "--page-size"],
            CliAction.QueueRetry => ["--destination", "--all"],
            CliAction.QueueDelete => ["--bounce"],
            _ => [],
        };
        var allowed = a == CliAction.SpoolInspect ? ["--json"] : own.Concat(AdminOptionNames).ToArray();
        var given = values.Keys.Concat(flags).FirstOrDefault(o => !allowed.Contains(o));
        if (given is not null) return new CliParse.Error($"{title} does not take {given}");

        var command = new CliCommand(a) { Json = flags.Contains("--json") };
        if (a != CliAction.SpoolInspect)
        {
            Uri? url = null;
            if (values.TryGetValue("--url", out var urlText) && !TryParseUrl(urlText, out url))
                return new CliParse.Error($"--url '{urlText}' is not an address like http://127.0.0.1:8025");
            command = command with
            {
                Admin = new AdminOptions(url, values.GetValueOrDefault("--config"), values.GetValueOrDefault("--token-file")),
            };
        }

        // Operands: how many each command takes, and what they are.
        var operandName = a switch
        {
            CliAction.QueueShow or CliAction.QueueHold or CliAction.QueueRelease or CliAction.QueueDelete or CliAction.QueueRetry => "ID",
            CliAction.DestinationSuspend or CliAction.DestinationResume => "D",
            CliAction.SpoolInspect => "DIR",
            _ => null,
        };
        var operandOptional = a == CliAction.QueueRetry;
        if (operandName is null && operands.Count > 0) return new CliParse.Error($"{title}: unexpected '{operands[0]}'");
        if (operands.Count > 1) return new CliParse.Error($"{title}: unexpected '{operands[1]}'");
        if (operandName is not null && !operandOptional && operands.Count == 0) return new CliParse.Error($"{title}: missing {operandName}");
        var operand = operands.Count == 1 ? operands[0] : null;
        if (operand is { Length: 0 }) return new CliParse.Error($"{title}: {operandName} is empty");

        switch (a)
        {
            case CliAction.QueueShow or CliAction.QueueHold or CliAction.QueueRelease:
                return new CliParse.Run(command with { Id = operand });
            case CliAction.QueueDelete:
                return new CliParse.Run(command with { Id = operand, Bounce = flags.Contains("--bounce") });
            case CliAction.DestinationSuspend or CliAction.DestinationResume:
                return new CliParse.Run(command with { Destination = operand });
            case CliAction.SpoolInspect:
                return new CliParse.Run(command with { Directory = operand });
            case CliAction.QueueRetry:
            {
                var destination = values.GetValueOrDefault("--destination");
                var all = flags.Contains("--all");
                var chosen = (operand is null ? 0 : 1) + (destination is null ? 0 : 1) + (all ? 1 : 0);
                if (chosen != 1) return new CliParse.Error("queue retry: give one of ID, --destination D or --all");
                return new CliParse.Run(command with { Id = operand, Destination = destination, All = all });
            }
            case CliAction.QueueList:
            {
                var state = values.GetValueOrDefault("--state");
                if (state is not null && !States.Contains(state))
                    return new CliParse.Error($"--state '{state}': use active, deferred or held");
                long? minAge = null, maxAge = null;
                int? page = null, pageSize = null;
                if (values.TryGetValue("--min-age", out var text) && (minAge = ParseLong(text)) is null)
                    return new CliParse.Error($"--min-age '{text}' is not a number of seconds");
                if (values.TryGetValue("--max-age", out text) && (maxAge = ParseLong(text)) is null)
                    return new CliParse.Error($"--max-age '{text}' is not a number of seconds");
                if (minAge > maxAge) return new CliParse.Error("--min-age is more than --max-age");
                if (values.TryGetValue("--page", out text) && (page = ParseInt(text, 1, int.MaxValue)) is null)
                    return new CliParse.Error($"--page '{text}' is not a page number (1, 2, ...)");
                if (values.TryGetValue("--page-size", out text) && (pageSize = ParseInt(text, 1, MaxPageSize)) is null)
                    return new CliParse.Error($"--page-size '{text}' is not a number from 1 to {MaxPageSize}");
                return new CliParse.Run(command with
                {
                    List = new ListOptions(values.GetValueOrDefault("--destination"), values.GetValueOrDefault("--sender"),
                        values.GetValueOrDefault("--recipient"), state, minAge, maxAge, page, pageSize),
                });
            }
            default:
                return new CliParse.Run(command);
        }
    }

    private static string MissingVerb(string group) => group switch
    {
        "queue" => "missing command: queue summary, list, show, retry, hold, release or delete",
        "destination" => "missing command: destination suspend or destination resume",
        _ => "missing command: spool inspect DIR",
    };

    /// <summary>An absolute http or https address with a host and no query or fragment.</summary>
    internal static bool TryParseUrl(string text, out Uri? url)
    {
        url = null;
        if (!Uri.TryCreate(text, UriKind.Absolute, out var u)) return false;
        if (u.Scheme is not ("http" or "https") || u.Host.Length == 0 || u.Query.Length > 0 || u.Fragment.Length > 0 || u.UserInfo.Length > 0)
            return false;
        url = u;
        return true;
    }

    private static long? ParseLong(string text) =>
        text.All(char.IsAsciiDigit) && long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : null;

    private static int? ParseInt(string text, int min, int max) =>
        text.All(char.IsAsciiDigit) && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v >= min && v <= max
            ? v
            : null;
}
