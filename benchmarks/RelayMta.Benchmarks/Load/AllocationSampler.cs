using System.Collections.Concurrent;
using System.Diagnostics.Tracing;

namespace RelayMta.Benchmarks.Load;

/// <summary>
/// Which types the process allocates, from the runtime's own sampling (GCAllocationTick: one event
/// about every 100 KB allocated, naming the type that crossed the mark). Statistical, no call
/// stacks, no extra package: enough to see what a request path allocates (<c>load --alloc-types</c>).
/// </summary>
internal sealed class AllocationSampler : EventListener
{
    private const EventKeywords GcKeyword = (EventKeywords)0x1;
    private readonly ConcurrentDictionary<string, long> _bytes = new();
    private readonly ConcurrentDictionary<string, long> _poolMisses = new();
    private volatile bool _recording;

    public void Start()
    {
        _bytes.Clear();
        _poolMisses.Clear();
        _recording = true;
    }

    public IReadOnlyList<(string Type, long Bytes)> Stop()
    {
        _recording = false;
        return _bytes.OrderByDescending(p => p.Value).Select(p => (p.Key, p.Value)).ToList();
    }

    /// <summary>
    /// ArrayPool events that mean an allocation or a lost buffer: "allocated SIZE (reason)" when a
    /// Rent found nothing pooled, "dropped SIZE" when a Return found its bucket full. Counts.
    /// </summary>
    public IReadOnlyList<(string What, long Count)> PoolMisses() =>
        _poolMisses.OrderByDescending(p => p.Value).Select(p => (p.Key, p.Value)).ToList();

    protected override void OnEventSourceCreated(EventSource source)
    {
        if (source.Name == "Microsoft-Windows-DotNETRuntime") EnableEvents(source, EventLevel.Verbose, GcKeyword);
        // BufferAllocated and BufferDropped are Informational; BufferRented/Returned (Verbose) are not wanted.
        if (source.Name == "System.Buffers.ArrayPoolEventSource") EnableEvents(source, EventLevel.Informational);
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (_recording && e.EventSource.Name == "System.Buffers.ArrayPoolEventSource" && e.Payload is not null)
        {
            string? Field(string field)
            {
                var i = e.PayloadNames?.IndexOf(field) ?? -1;
                return i >= 0 ? Convert.ToString(e.Payload[i], System.Globalization.CultureInfo.InvariantCulture) : null;
            }
            var key = e.EventName switch
            {
                "BufferAllocated" => $"allocated {Field("bufferSize")} ({Reason(Field("reason"))})",
                "BufferDropped" => $"dropped {Field("bufferSize")}",
                _ => null,
            };
            if (key is not null) _poolMisses.AddOrUpdate(key, 1, (_, n) => n + 1);
            return;
        }
        if (!_recording || e.EventName is not { } name || !name.StartsWith("GCAllocationTick", StringComparison.Ordinal) || e.Payload is null) return;
        var type = "?";
        long amount = 0;
        for (var i = 0; i < e.Payload.Count; i++)
        {
            switch (e.PayloadNames?[i])
            {
                case "TypeName": type = e.Payload[i] as string ?? "?"; break;
                case "AllocationAmount64": amount = Convert.ToInt64(e.Payload[i], System.Globalization.CultureInfo.InvariantCulture); break;
            }
        }
        _bytes.AddOrUpdate(type, amount, (_, total) => total + amount);
    }

    private static string Reason(string? reason) => reason switch
    {
        "0" => "pooled: first use",
        "1" => "over the pool's maximum size",
        "2" => "pool exhausted",
        _ => reason ?? "?",
    };
}
