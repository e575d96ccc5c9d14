using System.Collections.Immutable;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;
using RelayMta.Engine.Spool;

namespace RelayMta.Benchmarks.Engine;

/// <summary>
/// Spool commits with fsync on: <see cref="Concurrency"/> writers each commit their share of 512
/// messages one after another. With one writer every commit pays a whole flush; with many, the
/// committer thread shares one fdatasync among all the records waiting (group commit), so the time
/// per message falls as concurrency rises. Reported per message (OperationsPerInvoke).
/// </summary>
[MemoryDiagnoser]
public class SpoolCommitBenchmarks
{
    private const int Messages = 512;
    private string _dir = "";
    private Spool _spool = null!;
    private byte[] _body = [];

    [Params(1, 16, 128)]
    public int Concurrency { get; set; }

    [Params(1024, 102400)]
    public int BodySize { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _dir = Path.Combine(Path.GetTempPath(), "relaymta-bench-" + Guid.NewGuid().ToString("N")[..8]);
        _spool = Spool.Open(_dir, new SpoolOptions(), NullLogger.Instance);
        _body = new byte[BodySize];
        Random.Shared.NextBytes(_body);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _spool.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Benchmark(OperationsPerInvoke = Messages)]
    public async Task Commit()
    {
        var perWriter = Messages / Concurrency;
        var writers = new Task[Concurrency];
        for (var w = 0; w < Concurrency; w++)
        {
            writers[w] = Task.Run(async () =>
            {
                for (var i = 0; i < perWriter; i++)
                {
                    var id = _spool.Ids.Next();
                    var envelope = new MailEnvelope(id, DateTimeOffset.UtcNow, "sender@example.test", ImmutableArray.Create("rcpt@example.test"),
                        "127.0.0.1", "bench.test", "ESMTP", null, MessageFlags.None, _body.Length);
                    var entry = await _spool.CommitAsync(envelope, _body);
                    _ = _spool.CompleteAsync(entry.Id); // keep the journal from growing without bound
                }
            });
        }
        await Task.WhenAll(writers);
    }
}
