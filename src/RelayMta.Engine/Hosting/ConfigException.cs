namespace RelayMta.Engine.Hosting;

/// <summary>A configuration value that cannot be used: names the file and the key.</summary>
public sealed class ConfigException : Exception
{
    /// <summary>Creates the error for <paramref name="key"/> in <paramref name="file"/>.</summary>
    public ConfigException(string file, string key, string problem, Exception? inner = null)
        : base($"{file}: {key}: {problem}", inner)
    {
        File = file;
        Key = key;
        Problem = problem;
    }

    /// <summary>The file the bad value came from.</summary>
    public string File { get; }

    /// <summary>The full key path, e.g. <c>relay-mta.listen[0]</c>.</summary>
    public string Key { get; }

    /// <summary>What is wrong with it.</summary>
    public string Problem { get; }
}
