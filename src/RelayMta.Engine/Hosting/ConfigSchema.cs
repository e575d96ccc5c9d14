namespace RelayMta.Engine.Hosting;

/// <summary>The kinds of value a key may hold.</summary>
internal enum KeyKind
{
    Object,
    /// <summary>An object whose keys are chosen by the operator (e.g. per-destination overrides).</summary>
    Map,
    String,
    StringList,
    Integer,
    Size,
    Duration,
    DurationList,
    Boolean,
}

/// <summary>
/// Every key under <c>relay-mta</c> and what it holds. A key in a user's file that is not here is
/// an error (a typo would otherwise be ignored silently).
/// </summary>
internal static class ConfigSchema
{
    public static readonly IReadOnlyDictionary<string, KeyKind> Keys = new Dictionary<string, KeyKind>(StringComparer.Ordinal)
    {
        ["hostname"] = KeyKind.String,
        ["listen"] = KeyKind.StringList,
        ["spool-dir"] = KeyKind.String,
        ["local"] = KeyKind.Object,
        ["local.domains"] = KeyKind.StringList,
        ["local.mailbox-root"] = KeyKind.String,
        ["local.recipients"] = KeyKind.String,
        ["relay"] = KeyKind.Object,
        ["relay.allowed-networks"] = KeyKind.StringList,
        ["relay.smarthost"] = KeyKind.String,
        ["dns"] = KeyKind.Object,
        ["dns.servers"] = KeyKind.StringList,
        ["dns.timeout"] = KeyKind.Duration,
        ["dns.retries"] = KeyKind.Integer,
        ["outbound"] = KeyKind.Object,
        ["outbound.port"] = KeyKind.Integer,
        ["outbound.retry-intervals"] = KeyKind.DurationList,
        ["outbound.max-queue-lifetime"] = KeyKind.Duration,
        ["outbound.max-connections"] = KeyKind.Integer,
        ["outbound.max-connections-per-destination"] = KeyKind.Integer,
        ["outbound.max-messages-per-connection"] = KeyKind.Integer,
        ["outbound.connection-idle-timeout"] = KeyKind.Duration,
        ["outbound.timeouts"] = KeyKind.Object,
        ["outbound.timeouts.connect"] = KeyKind.Duration,
        ["outbound.timeouts.greeting"] = KeyKind.Duration,
        ["outbound.timeouts.command"] = KeyKind.Duration,
        ["outbound.timeouts.mail"] = KeyKind.Duration,
        ["outbound.timeouts.rcpt"] = KeyKind.Duration,
        ["outbound.timeouts.data-init"] = KeyKind.Duration,
        ["outbound.timeouts.data-block"] = KeyKind.Duration,
        ["outbound.timeouts.data-done"] = KeyKind.Duration,
        ["outbound.circuit-breaker"] = KeyKind.Object,
        ["outbound.circuit-breaker.failures"] = KeyKind.Integer,
        ["outbound.circuit-breaker.break"] = KeyKind.Duration,
        ["limits"] = KeyKind.Object,
        ["limits.max-message-size"] = KeyKind.Size,
        ["limits.max-recipients"] = KeyKind.Integer,
        ["limits.max-errors"] = KeyKind.Integer,
        ["limits.command-timeout"] = KeyKind.Duration,
        ["limits.data-timeout"] = KeyKind.Duration,
        ["limits.max-received-headers"] = KeyKind.Integer,
        ["limits.max-header-size"] = KeyKind.Size,
        ["shutdown"] = KeyKind.Object,
        ["shutdown.drain-timeout"] = KeyKind.Duration,
    };
}
