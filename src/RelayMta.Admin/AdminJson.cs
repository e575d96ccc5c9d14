using System.Text.Json;
using System.Text.Json.Serialization;

namespace RelayMta.Admin;

/// <summary>How the admin API writes JSON: camelCase names, enums as camelCase strings, ISO 8601 times, nulls kept.</summary>
internal static class AdminJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
    };
}
