using Microsoft.Extensions.Logging;

namespace RelayMta.Engine.Diagnostics;

/// <summary>
/// The log lines written for every message (accepted, each delivery attempt, removed), generated
/// at compile time: no boxing, no template parsing, and nothing at all when the level is off.
/// </summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information,
        Message = "{QueueId}: accepted from=<{Sender}> size={Size} nrcpt={Recipients} client={Helo}[{Client}] session={Session}{Auth}{Tls}")]
    public static partial void Accepted(ILogger log, string queueId, string sender, long size, int recipients, string? helo, string client,
        long session, string auth, string tls);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information,
        Message = "{QueueId}: to=<{Recipient}>, relay={Relay}, tls={Tls}, delay={Delay}, dsn={Dsn}, status={Status} ({Diagnostic})")]
    public static partial void Delivery(ILogger log, string queueId, string recipient, string relay, string tls, string delay, string dsn,
        string status, string diagnostic);

    [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "{QueueId}: removed")]
    public static partial void Removed(ILogger log, string queueId);

    [LoggerMessage(EventId = 4, Level = LogLevel.Debug, Message = "session {Session}: connect from [{Client}]")]
    public static partial void Connect(ILogger log, long session, string client);

    [LoggerMessage(EventId = 5, Level = LogLevel.Debug,
        Message = "session {Session}: disconnect from [{Client}] commands={Commands} accepted={Accepted} errors={Errors}")]
    public static partial void Disconnect(ILogger log, long session, string client, int commands, int accepted, int errors);
}
