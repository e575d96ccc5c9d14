namespace RelayMta.Engine.Diagnostics;

/// <summary>One 10-second slice of activity.</summary>
public sealed record ActivityBucket(DateTimeOffset Start, int Accepted, int Delivered, int Deferred, int Bounced);

/// <summary>One delivery attempt for one recipient, as shown on the dashboard.</summary>
public sealed record DeliveryRecord(DateTimeOffset At, string QueueId, string Recipient, string Relay, string? Tls, string Status, string Result,
    string Diagnostic);

/// <summary>What the dashboard shows: recent rates and the last deliveries.</summary>
public sealed record ActivitySnapshot(int BucketSeconds, IReadOnlyList<ActivityBucket> Buckets, IReadOnlyList<DeliveryRecord> Recent);

/// <summary>
/// Recent activity for the live dashboard: counts of accepted, delivered, deferred and bounced in
/// 10-second buckets over the last 30 minutes, and the last 100 delivery attempts. Thread-safe, fixed
/// size (a ring), cheap to record into from sessions and the queue manager.
/// </summary>
public sealed class ActivityLog
{
    /// <summary>Seconds per bucket.</summary>
    public const int BucketSeconds = 10;
    private const int Buckets = 180; // 30 minutes
    private const int RecentCapacity = 100;

    private readonly object _gate = new();
    private readonly long[] _bucketStart = new long[Buckets];
    private readonly int[,] _counts = new int[Buckets, 4];
    private readonly Queue<DeliveryRecord> _recent = new();
    private readonly Func<DateTimeOffset> _clock;

    /// <summary>Creates a log on the wall clock (or a test clock).</summary>
    public ActivityLog(Func<DateTimeOffset>? clock = null) => _clock = clock ?? (() => DateTimeOffset.UtcNow);

    /// <summary>A message was accepted.</summary>
    public void Accepted() => Count(0);

    /// <summary>A delivery attempt for one recipient ended.</summary>
    public void Delivery(DeliveryRecord record)
    {
        Count(record.Result switch
        {
            "sent" => 1,
            "deferred" => 2,
            _ => 3,
        });
        lock (_gate)
        {
            _recent.Enqueue(record);
            while (_recent.Count > RecentCapacity) _recent.Dequeue();
        }
    }

    /// <summary>The last 30 minutes (oldest bucket first, empty buckets included) and the recent deliveries (newest first).</summary>
    public ActivitySnapshot Snapshot()
    {
        var now = _clock().ToUnixTimeSeconds() / BucketSeconds;
        var buckets = new List<ActivityBucket>(Buckets);
        lock (_gate)
        {
            for (var n = now - Buckets + 1; n <= now; n++)
            {
                var slot = (int)(n % Buckets);
                var start = DateTimeOffset.FromUnixTimeSeconds(n * BucketSeconds);
                buckets.Add(_bucketStart[slot] == n
                    ? new ActivityBucket(start, _counts[slot, 0], _counts[slot, 1], _counts[slot, 2], _counts[slot, 3])
                    : new ActivityBucket(start, 0, 0, 0, 0));
            }
            return new ActivitySnapshot(BucketSeconds, buckets, _recent.Reverse().ToList());
        }
    }

    private void Count(int kind)
    {
        var n = _clock().ToUnixTimeSeconds() / BucketSeconds;
        var slot = (int)(n % Buckets);
        lock (_gate)
        {
            if (_bucketStart[slot] != n)
            {
                _bucketStart[slot] = n;
                for (var k = 0; k < 4; k++) _counts[slot, k] = 0;
            }
            _counts[slot, kind]++;
        }
    }
}
