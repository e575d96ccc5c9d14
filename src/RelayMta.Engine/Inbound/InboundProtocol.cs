using System.Net.Sockets;

namespace RelayMta.Engine.Inbound;

/// <summary>Messages of the listener's and sessions' conversations.</summary>
public static class InboundProtocol
{
    /// <summary>A connection was accepted (and admitted by the limiter) on a listener of <paramref name="Kind"/>.</summary>
    internal sealed record Accepted(Socket Socket, ListenerKind Kind, System.Net.IPAddress Client, bool Exempt);

    /// <summary>Stop accepting connections (shutdown, first phase). Replies <see cref="Akka.Done"/>.</summary>
    public sealed record Unbind
    {
        /// <summary>The one instance.</summary>
        public static readonly Unbind Instance = new();
    }

    /// <summary>
    /// Let sessions finish their transaction, then close them; past <paramref name="Deadline"/>
    /// answer 421 and close. Replies <see cref="Akka.Done"/> when every session has ended.
    /// </summary>
    public sealed record DrainSessions(TimeSpan Deadline);

    /// <summary>To a session: finish the current transaction, then 421 and close.</summary>
    public sealed record Drain
    {
        /// <summary>The one instance.</summary>
        public static readonly Drain Instance = new();
    }

    /// <summary>To a session: 421 and close now.</summary>
    public sealed record ForceClose
    {
        /// <summary>The one instance.</summary>
        public static readonly ForceClose Instance = new();
    }

    /// <summary>The session's I/O loop ended normally.</summary>
    internal sealed record Ended
    {
        public static readonly Ended Instance = new();
    }

    /// <summary>The session's I/O loop failed.</summary>
    internal sealed record Faulted(Exception Cause);

    /// <summary>Asks how many sessions are open. Replies <see cref="ListenerStatus"/>.</summary>
    public sealed record GetStatus
    {
        /// <summary>The one instance.</summary>
        public static readonly GetStatus Instance = new();
    }

    /// <summary>Reply to <see cref="GetStatus"/>.</summary>
    public sealed record ListenerStatus(int OpenSessions, long TotalSessions, bool Accepting);
}
