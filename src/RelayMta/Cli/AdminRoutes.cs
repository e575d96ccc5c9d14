using System.Globalization;
using System.Text;

namespace RelayMta.Cli;

/// <summary>The admin API's routes (README, "Admin HTTP API"; src/RelayMta.Admin/AdminApi.cs), relative to its base URL.</summary>
internal static class AdminRoutes
{
    public static (HttpMethod Method, string Route) For(CliCommand c) => c.Action switch
    {
        CliAction.QueueSummary => (HttpMethod.Get, "api/queue"),
        CliAction.QueueList => (HttpMethod.Get, "api/messages" + Query(c.List)),
        CliAction.QueueShow => (HttpMethod.Get, $"api/messages/{Segment(c.Id!)}"),
        CliAction.QueueRetry when c.Id is { } id => (HttpMethod.Post, $"api/messages/{Segment(id)}/retry"),
        CliAction.QueueRetry when c.Destination is { } d => (HttpMethod.Post, $"api/destinations/{Segment(d)}/retry"),
        CliAction.QueueRetry => (HttpMethod.Post, "api/retry"),
        CliAction.QueueHold => (HttpMethod.Post, $"api/messages/{Segment(c.Id!)}/hold"),
        CliAction.QueueRelease => (HttpMethod.Post, $"api/messages/{Segment(c.Id!)}/release"),
        CliAction.QueueDelete => (HttpMethod.Delete, $"api/messages/{Segment(c.Id!)}" + (c.Bounce ? "?bounce=true" : "")),
        CliAction.DestinationSuspend => (HttpMethod.Post, $"api/destinations/{Segment(c.Destination!)}/suspend"),
        CliAction.DestinationResume => (HttpMethod.Post, $"api/destinations/{Segment(c.Destination!)}/resume"),
        _ => throw new ArgumentOutOfRangeException(nameof(c), c.Action, "not an admin API command"),
    };

    private static string Segment(string value) => Uri.EscapeDataString(value);

    private static string Query(ListOptions o)
    {
        var query = new StringBuilder();
        void Add(string name, string? value)
        {
            if (value is null) return;
            query.Append(query.Length == 0 ? '?' : '&').Append(name).Append('=').Append(Uri.EscapeDataString(value));
        }
        Add("destination", o.Destination);
        Add("sender", o.Sender);
        Add("recipient", o.Recipient);
        Add("state", o.State);
        Add("minAge", o.MinAgeSeconds?.ToString(CultureInfo.InvariantCulture));
        Add("maxAge", o.MaxAgeSeconds?.ToString(CultureInfo.InvariantCulture));
        Add("page", o.Page?.ToString(CultureInfo.InvariantCulture));
        Add("pageSize", o.PageSize?.ToString(CultureInfo.InvariantCulture));
        return query.ToString();
    }
}
