namespace RelayMta.Engine.Spool;

/// <summary>A message's queue id: 13 characters of Crockford base32, sortable by time of acceptance.</summary>
public readonly record struct QueueId(string Value)
{
    /// <inheritdoc />
    public override string ToString() => Value;

    /// <summary>Whether <paramref name="text"/> has the shape of a queue id (used before touching files named by one).</summary>
    public static bool IsWellFormed(string text)
    {
        if (text.Length != QueueIdGenerator.Length) return false;
        foreach (var c in text)
            if (QueueIdGenerator.Alphabet.IndexOf(c) < 0) return false;
        return true;
    }
}

/// <summary>
/// Makes unique queue ids: milliseconds since 2020 in the high bits and a counter in the low 16,
/// so ids are unique within the process and increase over restarts while the clock does.
/// </summary>
public sealed class QueueIdGenerator
{
    internal const string Alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    internal const int Length = 13;
    private static readonly long Epoch = new DateTimeOffset(2020, 1, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
    private readonly object _gate = new();
    private long _lastMs;
    private int _sequence;

    /// <summary>Makes sure later ids sort after <paramref name="seen"/> (call after recovering a spool).</summary>
    public void Observe(QueueId seen)
    {
        var value = Decode(seen.Value);
        lock (_gate)
        {
            // Compare whole ids, not just their milliseconds: a later counter in the same millisecond counts too.
            if (value > (_lastMs << 16 | (uint)_sequence))
            {
                _lastMs = value >> 16;
                _sequence = (int)(value & 0xffff);
            }
        }
    }

    /// <summary>The next id.</summary>
    public QueueId Next()
    {
        long value;
        lock (_gate)
        {
            var ms = Math.Max(0, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - Epoch);
            if (ms > _lastMs)
            {
                _lastMs = ms;
                _sequence = 0;
            }
            else if (++_sequence > 0xffff)
            {
                _lastMs++; // borrow the next millisecond rather than repeat an id
                _sequence = 0;
            }
            value = _lastMs << 16 | (uint)_sequence;
        }
        return new QueueId(Encode(value));
    }

    private static string Encode(long value) =>
        string.Create(Length, value, static (span, v) =>
        {
            for (var i = span.Length - 1; i >= 0; i--)
            {
                span[i] = Alphabet[(int)(v & 31)];
                v >>= 5;
            }
        });

    private static long Decode(string text)
    {
        long v = 0;
        foreach (var c in text)
        {
            var d = Alphabet.IndexOf(c);
            if (d < 0) return 0;
            v = v << 5 | (uint)d;
        }
        return v;
    }
}
