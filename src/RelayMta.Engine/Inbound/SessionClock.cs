using System.Diagnostics;

namespace RelayMta.Engine.Inbound;

/// <summary>
/// One clock for every session's time-outs. A session publishes its deadline (a plain field write,
/// on every read); a single timer sweeps the open sessions a few times a second and interrupts
/// those past it. This replaces a System.Threading.Timer per session, whose Change on every read
/// took a shared lock and cost memory for each of thousands of idle connections.
/// </summary>
internal sealed class SessionClock : IDisposable
{
    private readonly object _gate = new();
    private readonly HashSet<IDeadline> _sessions = new();
    private readonly Timer _timer;
    private IDeadline[] _snapshot = [];

    public SessionClock(TimeSpan resolution) =>
        _timer = new Timer(static s => ((SessionClock)s!).Sweep(), this, resolution, resolution);

    /// <summary>Something with a deadline (Stopwatch ticks; 0 = none) to be told when it passes.</summary>
    public interface IDeadline
    {
        long Deadline { get; }

        void DeadlinePassed();
    }

    public void Add(IDeadline session)
    {
        lock (_gate) _sessions.Add(session);
    }

    public void Remove(IDeadline session)
    {
        lock (_gate) _sessions.Remove(session);
    }

    public void Dispose() => _timer.Dispose();

    private void Sweep()
    {
        IDeadline[] sessions;
        lock (_gate)
        {
            if (_snapshot.Length != _sessions.Count) _snapshot = new IDeadline[_sessions.Count];
            _sessions.CopyTo(_snapshot);
            sessions = _snapshot;
        }
        var now = Stopwatch.GetTimestamp();
        foreach (var session in sessions)
        {
            var deadline = session.Deadline;
            if (deadline != 0 && now >= deadline) session.DeadlinePassed();
        }
    }
}
