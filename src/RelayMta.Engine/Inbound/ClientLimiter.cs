using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using RelayMta.Engine.Hosting;
using RelayMta.Protocol.Smtp;

namespace RelayMta.Engine.Inbound;

/// <summary>
/// Per-client-address accounting for abuse resistance (Postfix's anvil): concurrent sessions,
/// connections and messages per minute, and failed AUTH attempts. Thread-safe; the listener asks
/// it before creating a session actor, sessions ask it at MAIL and AUTH. Addresses in
/// <c>relay.allowed-networks</c> are exempt from the per-address limits (not from the overall one).
/// </summary>
internal sealed class ClientLimiter
{
    public static readonly SmtpReply TooManySessions = new(421, "4.7.0", "Too many connections, try again later");
    public static readonly SmtpReply TooManySessionsFromYou = new(421, "4.7.0", "Too many connections from your address, try again later");
    public static readonly SmtpReply ConnectionRate = new(421, "4.7.0", "Too many connections from your address per minute, try again later");
    public static readonly SmtpReply MessageRate = new(450, "4.7.1", "Too much mail from your address, slow down");
    public static readonly SmtpReply AuthBlocked = new(454, "4.7.0", "Too many failed authentication attempts, try again later");

    private readonly Func<LimitSettings> _limits;
    private readonly ConcurrentDictionary<IPAddress, Client> _clients = new();
    private int _sessions;

    public ClientLimiter(Func<LimitSettings> limits) => _limits = limits;

    /// <summary>Sessions open now.</summary>
    public int Sessions => Volatile.Read(ref _sessions);

    /// <summary>Admits a new connection, or says why not (and counts nothing).</summary>
    public SmtpReply? TryAdmit(IPAddress address, bool exempt)
    {
        var limits = _limits();
        if (Interlocked.Increment(ref _sessions) > limits.MaxSessions)
        {
            Interlocked.Decrement(ref _sessions);
            return TooManySessions;
        }
        if (exempt) return null;
        var client = _clients.GetOrAdd(address, static _ => new Client());
        lock (client)
        {
            if (client.Sessions >= limits.MaxSessionsPerIp)
            {
                Interlocked.Decrement(ref _sessions);
                return TooManySessionsFromYou;
            }
            if (limits.ConnectionsPerIpPerMinute > 0 && !client.Connections.TryTake(limits.ConnectionsPerIpPerMinute))
            {
                Interlocked.Decrement(ref _sessions);
                return ConnectionRate;
            }
            client.Sessions++;
        }
        return null;
    }

    /// <summary>A session admitted by <see cref="TryAdmit"/> ended.</summary>
    public void Release(IPAddress address, bool exempt)
    {
        Interlocked.Decrement(ref _sessions);
        if (exempt || !_clients.TryGetValue(address, out var client)) return;
        lock (client) client.Sessions--;
    }

    /// <summary>Counts a message (at MAIL); false when the address is over its rate.</summary>
    public bool TryCountMessage(IPAddress address, bool exempt)
    {
        var limit = _limits().MessagesPerIpPerMinute;
        if (exempt || limit == 0) return true;
        var client = _clients.GetOrAdd(address, static _ => new Client());
        lock (client) return client.Messages.TryTake(limit);
    }

    /// <summary>Whether the address has failed AUTH too often lately.</summary>
    public bool IsAuthBlocked(IPAddress address)
    {
        if (!_clients.TryGetValue(address, out var client)) return false;
        var limits = _limits();
        lock (client) return client.AuthFailuresIn(limits.AuthFailureWindow) >= limits.AuthFailuresPerIp;
    }

    /// <summary>Records a failed AUTH; true when the address has now reached the limit.</summary>
    public bool RecordAuthFailure(IPAddress address)
    {
        var limits = _limits();
        var client = _clients.GetOrAdd(address, static _ => new Client());
        lock (client)
        {
            client.AuthFailures.Enqueue(Stopwatch.GetTimestamp());
            return client.AuthFailuresIn(limits.AuthFailureWindow) >= limits.AuthFailuresPerIp;
        }
    }

    /// <summary>Forgets addresses with no session and nothing recent (call now and then).</summary>
    public void Prune()
    {
        var window = _limits().AuthFailureWindow;
        foreach (var (address, client) in _clients)
        {
            lock (client)
            {
                if (client.Sessions > 0 || !client.Connections.Expired || !client.Messages.Expired || client.AuthFailuresIn(window) > 0) continue;
            }
            _clients.TryRemove(address, out _);
        }
    }

    /// <summary>Addresses being tracked (for tests and metrics).</summary>
    public int TrackedAddresses => _clients.Count;

    private sealed class Client
    {
        public int Sessions;
        public readonly MinuteWindow Connections = new();
        public readonly MinuteWindow Messages = new();
        public readonly Queue<long> AuthFailures = new();

        public int AuthFailuresIn(TimeSpan window)
        {
            while (AuthFailures.TryPeek(out var t) && Stopwatch.GetElapsedTime(t) > window) AuthFailures.Dequeue();
            return AuthFailures.Count;
        }
    }

    /// <summary>A counter over fixed one-minute windows.</summary>
    private sealed class MinuteWindow
    {
        private long _start = Stopwatch.GetTimestamp();
        private int _count;

        public bool Expired => Stopwatch.GetElapsedTime(_start) >= TimeSpan.FromMinutes(1);

        public bool TryTake(int limit)
        {
            if (Expired)
            {
                _start = Stopwatch.GetTimestamp();
                _count = 0;
            }
            if (_count >= limit) return false;
            _count++;
            return true;
        }
    }
}
