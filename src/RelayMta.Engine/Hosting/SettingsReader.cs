using System.Net;
using Akka.Configuration;
using Akka.Configuration.Hocon;

namespace RelayMta.Engine.Hosting;

/// <summary>
/// Typed reads of the merged <c>relay-mta</c> config. Each read checks the value's type and shape
/// and throws a <see cref="ConfigException"/> naming the key and the file it came from.
/// </summary>
public sealed class SettingsReader
{
    private readonly Config _config;
    private readonly Func<string, string> _fileOf;

    internal SettingsReader(Config config, Func<string, string> fileOf)
    {
        _config = config;
        _fileOf = fileOf;
    }

    /// <summary>A reader over HOCON text alone (tests, tools).</summary>
    public static SettingsReader FromText(string hocon, string fileName = "(text)") =>
        new(ConfigurationFactory.ParseString(hocon).GetConfig("relay-mta"), _ => fileName);

    /// <summary>Whether the key is set.</summary>
    public bool Has(string key) => _config.HasPath(key);

    /// <summary>An error for <paramref name="key"/>.</summary>
    public ConfigException Error(string key, string problem, Exception? inner = null) =>
        new(_fileOf("relay-mta." + key), "relay-mta." + key, problem, inner);

    /// <summary>A string value.</summary>
    public string String(string key)
    {
        var value = Value(key);
        if (!value.IsString()) throw Error(key, "must be a string");
        return value.GetString();
    }

    /// <summary>A list of strings.</summary>
    public IReadOnlyList<string> StringList(string key)
    {
        var value = Value(key);
        if (!IsList(value)) throw Error(key, "must be a list [ ... ]");
        var items = value.IsArray() ? value.GetArray() : Array.Empty<HoconValue>();
        var result = new List<string>(items.Count);
        for (var i = 0; i < items.Count; i++)
        {
            if (!items[i].IsString()) throw Error($"{key}[{i}]", "must be a string");
            result.Add(items[i].GetString());
        }
        return result;
    }

    /// <summary>An integer within [min, max].</summary>
    public int Int(string key, int min = int.MinValue, int max = int.MaxValue)
    {
        var value = Value(key);
        if (!value.IsString() || !int.TryParse(value.GetString(), System.Globalization.NumberStyles.Integer,
                System.Globalization.CultureInfo.InvariantCulture, out var n))
            throw Error(key, "must be a whole number");
        if (n < min || n > max) throw Error(key, $"must be between {min} and {max}");
        return n;
    }

    /// <summary>A size in bytes (a number, or a HOCON size such as 25MiB).</summary>
    public long Size(string key, long min = 0)
    {
        var value = Value(key);
        if (!value.IsString()) throw Error(key, "must be a size in bytes");
        var text = value.GetString();
        long n;
        if (!long.TryParse(text, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out n))
        {
            long? parsed;
            try
            {
                parsed = value.GetByteSize();
            }
            catch (Exception e)
            {
                throw Error(key, $"'{text}' is not a size in bytes", e);
            }
            if (parsed is null) throw Error(key, $"'{text}' is not a size in bytes");
            n = parsed.Value;
        }
        if (n < min) throw Error(key, $"must be at least {min}");
        return n;
    }

    /// <summary>A duration such as 30s, 5m, 1h, 5d.</summary>
    public TimeSpan Duration(string key, TimeSpan? min = null)
    {
        var value = Value(key);
        if (!value.IsString()) throw Error(key, "must be a duration such as 30s, 5m or 1h");
        var d = ParseDuration(value, key);
        if (min is { } m && d < m) throw Error(key, $"must be at least {m}");
        return d;
    }

    /// <summary>A list of durations.</summary>
    public IReadOnlyList<TimeSpan> DurationList(string key)
    {
        var value = Value(key);
        if (!IsList(value)) throw Error(key, "must be a list of durations [1m, 5m]");
        var items = value.IsArray() ? value.GetArray() : Array.Empty<HoconValue>();
        var result = new List<TimeSpan>(items.Count);
        for (var i = 0; i < items.Count; i++)
        {
            var d = ParseDuration(items[i], $"{key}[{i}]");
            if (d <= TimeSpan.Zero) throw Error($"{key}[{i}]", "must be positive");
            result.Add(d);
        }
        return result;
    }

    /// <summary>true or false.</summary>
    public bool Bool(string key)
    {
        var value = Value(key);
        var text = value.IsString() ? value.GetString() : "";
        return text switch
        {
            "true" or "on" or "yes" => true,
            "false" or "off" or "no" => false,
            _ => throw Error(key, "must be true or false"),
        };
    }

    /// <summary>One of a fixed set of words.</summary>
    public string OneOf(string key, params string[] allowed)
    {
        var text = String(key);
        if (!allowed.Contains(text, StringComparer.Ordinal))
            throw Error(key, $"'{text}' is not one of: {string.Join(", ", allowed)}");
        return text;
    }

    /// <summary>An "ip:port" endpoint ("[::1]:2525" for IPv6); the port is required.</summary>
    public IPEndPoint Endpoint(string key, string text)
    {
        if (!TryParseEndpoint(text, out var endpoint))
            throw Error(key, $"'{text}' is not an \"ip:port\" endpoint (use \"[::1]:2525\" for IPv6)");
        return endpoint;
    }

    /// <summary>The keys of an operator-chosen map, e.g. per-destination overrides.</summary>
    public IReadOnlyList<string> MapKeys(string key)
    {
        if (!_config.HasPath(key)) return Array.Empty<string>();
        var value = _config.GetValue(key);
        if (!value.IsObject()) throw Error(key, "must be an object { ... }");
        return value.GetObject().Items.Keys.ToList();
    }

    /// <summary>A reader for the object at <paramref name="key"/>, with keys reported under it.</summary>
    public SettingsReader Child(string key) => new(_config.GetConfig(key), k => _fileOf(key + "." + k));

    internal static bool TryParseEndpoint(string text, out IPEndPoint endpoint)
    {
        endpoint = null!;
        var colon = text.LastIndexOf(':');
        if (colon <= 0) return false;
        var host = text[..colon];
        if (host.Contains(':') && !(host.StartsWith('[') && host.EndsWith(']'))) return false; // bare IPv6 needs brackets
        if (host.StartsWith('[')) host = host[1..^1];
        if (!IPAddress.TryParse(host, out var ip)) return false;
        if (!int.TryParse(text[(colon + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port) || port > 65535)
            return false;
        endpoint = new IPEndPoint(ip, port);
        return true;
    }

    // An empty list parses as an array element that IsArray() does not recognise.
    private static bool IsList(HoconValue value) => value.IsArray() || (value.Values.Count > 0 && value.Values[0] is HoconArray);

    private TimeSpan ParseDuration(HoconValue value, string key)
    {
        try
        {
            var text = value.GetString();
            if (text.Length == 0 || !char.IsDigit(text[0])) throw new FormatException();
            return value.GetTimeSpan(false);
        }
        catch (Exception e)
        {
            throw Error(key, $"'{value.GetString()}' is not a duration such as 30s, 5m, 1h or 5d", e);
        }
    }

    private HoconValue Value(string key)
    {
        if (!_config.HasPath(key)) throw Error(key, "is missing");
        var value = _config.GetValue(key);
        if (value.IsObject() && !value.IsString()) throw Error(key, "must not be an object");
        return value;
    }
}
