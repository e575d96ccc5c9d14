using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Net;
using RelayMta.Engine.Outbound;
using RelayMta.Engine.Queue;
using RelayMta.Engine.Spool;

namespace RelayMta.Engine.Tests.Outbound;

/// <summary>An in-memory SMTP transport for actor tests: counts sessions, records deliveries, injects faults.</summary>
internal sealed class StubTransport : IOutboundTransport
{
    private int _open;
    private int _maxOpen;
    private int _opens;

    /// <summary>Called before each open; may throw to simulate a fault.</summary>
    public Func<int, Exception?> OnOpen { get; set; } = _ => null;

    /// <summary>What each recipient gets.</summary>
    public Func<DeliveryJob, int, DeliveryOutcome> Outcome { get; set; } =
        (_, _) => new DeliveryOutcome.Delivered("2.0.0", "250 2.0.0 OK", "stub.test");

    /// <summary>How long a transaction takes.</summary>
    public TimeSpan TransactionTime { get; set; } = TimeSpan.FromMilliseconds(5);

    public int Opens => Volatile.Read(ref _opens);

    public int MaxConcurrentSessions => Volatile.Read(ref _maxOpen);

    public ConcurrentQueue<(QueueId Id, ImmutableArray<int> Recipients, string Address)> Deliveries { get; } = new();

    public async Task<IOutboundSession> OpenAsync(RemoteHost host, IPAddress address, int port, RelayMta.Engine.Hosting.TlsLevel tls, Credentials? credentials, CancellationToken ct)
    {
        var n = Interlocked.Increment(ref _opens);
        if (OnOpen(n) is { } fault) throw fault;
        await Task.Yield();
        var open = Interlocked.Increment(ref _open);
        int max;
        while ((max = Volatile.Read(ref _maxOpen)) < open && Interlocked.CompareExchange(ref _maxOpen, open, max) != max)
        {
        }
        return new Session(this, address.ToString());
    }

    private sealed class Session(StubTransport owner, string address) : IOutboundSession
    {
        private bool _disposed;
        public string RemoteMta => $"stub[{address}]:25";
        public string RemoteHostName => "stub.test";
        public string? Tls => null;
        public bool Usable => !_disposed;

        public async Task<TransactionResult> SendAsync(DeliveryJob job, CancellationToken ct)
        {
            await Task.Delay(owner.TransactionTime, ct);
            var results = job.Recipients.Select(i => new RecipientResult(i, owner.Outcome(job, i))).ToImmutableArray();
            if (results.Any(r => r.Outcome is DeliveryOutcome.Delivered)) owner.Deliveries.Enqueue((job.Id, job.Recipients, address));
            return new TransactionResult(results);
        }

        public Task<bool> ResetAsync(CancellationToken ct) => Task.FromResult(true);

        public Task QuitAsync(CancellationToken ct) => Task.CompletedTask;

        public ValueTask DisposeAsync()
        {
            if (!_disposed) Interlocked.Decrement(ref owner._open);
            _disposed = true;
            return ValueTask.CompletedTask;
        }
    }
}
