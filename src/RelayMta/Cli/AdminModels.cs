using System.Text.Json;
using System.Text.Json.Serialization;

namespace RelayMta.Cli;

// The admin API's JSON as the CLI reads it. These are the CLI's own types, not the engine's
// records: the contract is the JSON (names matched case-insensitively), and fields the CLI does not
// show are ignored.

/// <summary>GET the queue summary.</summary>
internal sealed record QueueSummaryDto(int Messages, int Recipients, DateTimeOffset? Oldest, IReadOnlyList<DestinationSummaryDto>? Destinations);

/// <summary>One destination's line of the summary.</summary>
internal sealed record DestinationSummaryDto(
    string Destination,
    int Messages,
    int Recipients,
    DateTimeOffset? Oldest,
    string? LastError,
    DateTimeOffset? NextAttempt,
    int Connections,
    bool Suspended,
    bool CircuitOpen);

/// <summary>A page of the message list.</summary>
internal sealed record MessageListDto(int Total, int Page, int PageSize, IReadOnlyList<MessageSummaryDto>? Items);

/// <summary>A message in brief.</summary>
internal sealed record MessageSummaryDto(
    string Id,
    string? Sender,
    int Recipients,
    int Pending,
    DateTimeOffset Received,
    long Size,
    string? State,
    DateTimeOffset? NextAttempt,
    int Attempts,
    IReadOnlyList<string>? Destinations,
    string? LastError);

/// <summary>One message in full.</summary>
internal sealed record MessageDetailDto(
    MessageSummaryDto Summary,
    EnvelopeDto? Envelope,
    IReadOnlyList<RecipientDetailDto>? RecipientStatus,
    IReadOnlyList<AttemptDto>? Attempts,
    string? Headers);

/// <summary>The envelope of a message.</summary>
internal sealed record EnvelopeDto(
    DateTimeOffset? Received,
    string? Sender,
    IReadOnlyList<string>? Recipients,
    string? Client,
    string? Helo,
    string? Protocol,
    string? AuthUser,
    JsonElement Flags,
    long Size);

/// <summary>One recipient of a message.</summary>
internal sealed record RecipientDetailDto(
    string Address,
    string? State,
    string? Destination,
    string? Status,
    string? Diagnostic,
    string? RemoteMta,
    DateTimeOffset? At);

/// <summary>One delivery attempt for one recipient.</summary>
internal sealed record AttemptDto(DateTimeOffset At, string? Recipient, string? Relay, string? Tls, string? Status, string? Result, string? Diagnostic);

/// <summary>What an action did.</summary>
internal sealed record ActionResultDto(bool Found, int Affected, string? Message);

internal static class AdminJson
{
    /// <summary>Reading: names in any case, numbers as numbers or strings, unknown fields ignored.</summary>
    public static readonly JsonSerializerOptions Read = new(JsonSerializerDefaults.Web)
    {
        NumberHandling = JsonNumberHandling.AllowReadingFromString,
    };

    /// <summary>Writing what the CLI prints (--json): indented, camelCase, the characters as they are.</summary>
    public static readonly JsonSerializerOptions Write = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    /// <summary>The server's JSON, indented; text that is not JSON is returned as it is.</summary>
    public static string Pretty(string json)
    {
        try
        {
            using var document = JsonDocument.Parse(json);
            return JsonSerializer.Serialize(document.RootElement, Write);
        }
        catch (JsonException)
        {
            return json;
        }
    }
}
