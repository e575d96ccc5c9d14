using System.Buffers;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Microsoft.Extensions.Logging.Abstractions;
using RelayMta.Benchmarks.Infrastructure;
using RelayMta.Engine.Spool;
using RelayMta.Protocol.Smtp;

namespace RelayMta.Benchmarks.Engine;

/// <summary>
/// The DATA path of a session without the socket: reads fed to <see cref="DataReader"/>, whose
/// output goes into the real sink, the spool's <see cref="IncomingMessage"/> (pooled chunks; a
/// body over 1 MiB spills to its own file as it streams). The message is then discarded rather
/// than committed (commits are <see cref="SpoolCommitBenchmarks"/>), so the spill file is created,
/// written (page cache, no fsync) and deleted in each operation.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(Config))]
public class DataIntoSpoolBodyBenchmarks
{
    private readonly DataReader _reader = new();
    private ReadOnlySequence<byte>[] _reads = [];
    private string _dir = "";
    private Spool _spool = null!;

    [Params(4096, 1024 * 1024, 25 * 1024 * 1024)]
    public int BodySize { get; set; }

    [Params(4096, 65536)]
    public int ReadSize { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var content = MailContent.Create(BodySize, seed: 42, "From: <alice@example.org>\r\nTo: <bob@example.net>\r\nSubject: benchmark\r\n");
        var stuffed = MailContent.DotStuff(content);
        var wire = new byte[stuffed.Length + 3];
        stuffed.CopyTo(wire, 0);
        ".\r\n"u8.CopyTo(wire.AsSpan(stuffed.Length));
        _reads = Segments.Split(wire, ReadSize).Select(p => new ReadOnlySequence<byte>(p)).ToArray();
        _dir = BenchDirectories.Create("spool-body");
        _spool = Spool.Open(_dir, new SpoolOptions(), NullLogger.Instance);
        if (Receive() != BodySize) throw new InvalidOperationException($"the body did not come to {BodySize} bytes");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _spool.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Benchmark]
    public long Receive()
    {
        using var body = _spool.Begin(_spool.Ids.Next());
        _reader.Reset(long.MaxValue);
        foreach (var read in _reads)
        {
            var buffer = read;
            if (_reader.Feed(ref buffer, body)) break;
        }
        return body.Length;
    }

    private sealed class Config : ManualConfig
    {
        public Config() => AddColumn(new ThroughputColumn(nameof(BodySize)));
    }
}
