namespace RelayMta.Cli;

/// <summary>
/// Exit codes of the operator commands (<c>queue</c>, <c>destination</c>, <c>spool</c>): a contract
/// that operators' scripts rely on.
/// </summary>
internal static class CliExit
{
    public const int Ok = 0;

    /// <summary>No such message or destination (HTTP 404), or no spool at the directory given.</summary>
    public const int NotFound = 1;

    /// <summary>Unknown words, missing arguments, bad numbers; the usage goes to standard error.</summary>
    public const int Usage = 2;

    /// <summary>
    /// The admin API cannot be used: connection refused, timeout, unknown host, 401/403, 5xx; or the
    /// spool is held by a running server.
    /// </summary>
    public const int Unavailable = 3;

    /// <summary>The --config file does not load (the same code the server uses, sysexits.h EX_CONFIG).</summary>
    public const int Config = 78;
}

/// <summary>A failure that ends the command with an exit code and one line on standard error.</summary>
internal sealed class CliException(int exitCode, string message, Exception? inner = null) : Exception(message, inner)
{
    public int ExitCode { get; } = exitCode;
}
