namespace RelayMta.Engine.Queue;

/// <summary>
/// When to try a deferred message again: <c>outbound.retry-intervals</c> in order, the last one
/// repeating, with a little jitter so messages deferred together do not all come back at once;
/// and when to give up (<c>outbound.max-queue-lifetime</c>).
/// </summary>
public sealed class RetrySchedule
{
    private readonly IReadOnlyList<TimeSpan> _intervals;

    /// <summary>Creates the schedule.</summary>
    public RetrySchedule(IReadOnlyList<TimeSpan> intervals, TimeSpan lifetime)
    {
        if (intervals.Count == 0) throw new ArgumentException("at least one interval", nameof(intervals));
        _intervals = intervals;
        Lifetime = lifetime;
    }

    /// <summary>How long a message may stay queued.</summary>
    public TimeSpan Lifetime { get; }

    /// <summary>The wait after the <paramref name="attempts"/>-th failed attempt (1 = the first).</summary>
    public TimeSpan DelayAfter(int attempts, bool jitter = true)
    {
        var baseDelay = _intervals[Math.Clamp(attempts - 1, 0, _intervals.Count - 1)];
        if (!jitter) return baseDelay;
        // up to +10%, as chasquid's nextDelay does, to spread retries of a burst
        return baseDelay + TimeSpan.FromTicks((long)(baseDelay.Ticks * 0.1 * Random.Shared.NextDouble()));
    }

    /// <summary>Whether a message received at <paramref name="receivedAt"/> has outlived the lifetime.</summary>
    public bool HasExpired(DateTimeOffset receivedAt, DateTimeOffset now) => now - receivedAt >= Lifetime;
}
