using System.Globalization;
using Akka.Configuration;
using Akka.Configuration.Hocon;

namespace RelayMta.Engine.Hosting;

/// <summary>
/// Reads <c>hocon/relay.hocon</c> (embedded in this assembly, so the defaults are always there) and
/// layers an operator's file over it. Every value is checked here, once, and a bad one stops
/// start-up with a <see cref="ConfigException"/> naming the file and the key.
/// </summary>
public static class ConfigLoader
{
    /// <summary>How errors name the defaults.</summary>
    public const string DefaultsName = "hocon/relay.hocon (embedded defaults)";

    /// <summary>The text of the embedded defaults.</summary>
    public static string DefaultsText()
    {
        using var stream = typeof(ConfigLoader).Assembly.GetManifestResourceStream("RelayMta.relay.hocon")
                           ?? throw new InvalidOperationException("embedded relay.hocon is missing");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    /// <summary>Loads the defaults, layered under <paramref name="userPath"/> when given.</summary>
    public static LoadedConfig Load(string? userPath)
    {
        var defaults = Parse(DefaultsText(), DefaultsName);
        if (userPath is null) return Build(defaults, null, null);

        string text;
        try
        {
            text = File.ReadAllText(userPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException(userPath, "--config", $"cannot read the file ({e.Message})", e);
        }
        return LoadText(text, userPath, defaults);
    }

    /// <summary>Layers HOCON text (named <paramref name="fileName"/> in errors) over the defaults.</summary>
    public static LoadedConfig LoadText(string text, string fileName) => LoadText(text, fileName, Parse(DefaultsText(), DefaultsName));

    private static LoadedConfig LoadText(string text, string fileName, Config defaults)
    {
        var user = Parse(text, fileName);
        CheckKeys(user, fileName);
        return Build(user.WithFallback(defaults), user, fileName);
    }

    private static LoadedConfig Build(Config merged, Config? user, string? userFile)
    {
        string FileOf(string key) => user is not null && userFile is not null && user.HasPath(StripIndex(key)) ? userFile : DefaultsName;
        var reader = new SettingsReader(merged.GetConfig("relay-mta"), FileOf);
        var settings = RelayMtaSettings.Create(reader);
        var akka = user is not null && user.HasPath("akka") ? user.GetValue("akka").AtKey("akka") : Config.Empty;
        return new LoadedConfig(settings, akka, userFile);
    }

    private static Config Parse(string text, string fileName)
    {
        try
        {
            var config = ConfigurationFactory.ParseString(text);
            CheckComplete(config.Root, "", fileName);
            return config;
        }
        catch (ConfigException)
        {
            throw;
        }
        catch (Exception e)
        {
            throw new ConfigException(fileName, "(syntax)", e.Message.Split('\n')[0].Trim(), e);
        }
    }

    // The HOCON parser accepts a key with no value ("a = " at the end of a file); refuse those.
    private static void CheckComplete(HoconValue value, string path, string fileName)
    {
        if (value.IsObject())
        {
            foreach (var (key, child) in value.GetObject().Items)
                CheckComplete(child, path.Length == 0 ? key : path + "." + key, fileName);
        }
        else if (value.IsEmpty || value.Values.Count == 0)
        {
            if (path.Length > 0 && !value.IsArray()) throw new ConfigException(fileName, path, "has no value");
        }
    }

    private static void CheckKeys(Config user, string fileName)
    {
        if (user.Root is null || !user.Root.IsObject()) return;
        foreach (var (key, value) in user.Root.GetObject().Items)
        {
            if (key == "akka") continue; // passed to Akka.NET as it is
            if (key != "relay-mta") throw new ConfigException(fileName, key, "unknown key (RelayMta's settings live under relay-mta)");
            if (!value.IsObject()) throw new ConfigException(fileName, key, "must be an object");
            CheckObject(value.GetObject(), "", fileName);
        }
    }

    private static void CheckObject(HoconObject obj, string prefix, string fileName)
    {
        foreach (var (key, value) in obj.Items)
        {
            var path = prefix.Length == 0 ? key : prefix + "." + key;
            if (!ConfigSchema.Keys.TryGetValue(path, out var kind))
                throw new ConfigException(fileName, "relay-mta." + path, "unknown key");
            if (kind == KeyKind.Object)
            {
                if (!value.IsObject()) throw new ConfigException(fileName, "relay-mta." + path, "must be an object { ... }");
                CheckObject(value.GetObject(), path, fileName);
            }
            else if (kind == KeyKind.Map && !value.IsObject())
            {
                throw new ConfigException(fileName, "relay-mta." + path, "must be an object { ... }");
            }
        }
    }

    private static string StripIndex(string key)
    {
        var bracket = key.IndexOf('[');
        var path = bracket < 0 ? key : key[..bracket];
        return path.StartsWith("relay-mta.", StringComparison.Ordinal) ? path : "relay-mta." + path;
    }

    internal static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}

/// <summary>The result of loading: the settings, any <c>akka</c> overrides, and the file used.</summary>
public sealed record LoadedConfig(RelayMtaSettings Settings, Config AkkaOverrides, string? UserFile);
