using System.Buffers;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using RelayMta.Benchmarks.Infrastructure;
using RelayMta.Protocol.Smtp;

namespace RelayMta.Benchmarks.Protocol;

/// <summary>
/// DATA content through <see cref="DataReader"/> (dot-unstuffing, end-of-data detection) the way
/// <c>SmtpSession</c> drives it: each socket read is fed as it arrives, and the unstuffed bytes go
/// to a sink. Content is text lines of 60-78 characters, one in 32 starting with a dot, ended by
/// CRLF.CRLF. <see cref="BodySize"/> is the unstuffed size; MB/s is <see cref="BodySize"/> over the
/// mean. <see cref="ReadSize"/> is the size of each read: 4 KiB is what the session's pipe
/// (<c>StreamPipeReaderOptions(bufferSize: 4096)</c>) hands over today.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(Config))]
public class DataReaderBenchmarks
{
    private readonly DataReader _reader = new();
    private readonly DiscardingBufferWriter _sink = new();
    private ReadOnlySequence<byte>[] _reads = [];
    private ReadOnlySequence<byte> _buffered;

    [Params(4096, 1024 * 1024, 25 * 1024 * 1024)]
    public int BodySize { get; set; }

    [Params(4096, 16384, 65536)]
    public int ReadSize { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var content = MailContent.Create(BodySize, seed: 42, "From: <alice@example.org>\r\nTo: <bob@example.net>\r\nSubject: benchmark\r\n");
        var stuffed = MailContent.DotStuff(content);
        var wire = new byte[stuffed.Length + 3];
        stuffed.CopyTo(wire, 0);
        ".\r\n"u8.CopyTo(wire.AsSpan(stuffed.Length));
        var pieces = Segments.Split(wire, ReadSize);
        _reads = pieces.Select(p => new ReadOnlySequence<byte>(p)).ToArray();
        _buffered = Segments.Chain(pieces);

        if (PerRead() != BodySize || Buffered() != BodySize || _reader.Flags != DataFlags.None || _reader.LongestLine > 80)
            throw new InvalidOperationException($"the content did not unstuff to {BodySize} bytes (flags {_reader.Flags})");
    }

    /// <summary>One Feed per read, every read consumed, as the session's loop does.</summary>
    [Benchmark(Baseline = true)]
    public long PerRead()
    {
        _reader.Reset(long.MaxValue);
        _sink.Reset();
        foreach (var read in _reads)
        {
            var buffer = read;
            if (_reader.Feed(ref buffer, _sink)) break;
        }
        return _sink.Written;
    }

    /// <summary>The whole message already buffered in many segments (a session that fell behind): one Feed.</summary>
    [Benchmark]
    public long Buffered()
    {
        _reader.Reset(long.MaxValue);
        _sink.Reset();
        var buffer = _buffered;
        _reader.Feed(ref buffer, _sink);
        return _sink.Written;
    }

    private sealed class Config : ManualConfig
    {
        public Config() => AddColumn(new ThroughputColumn(nameof(BodySize)));
    }
}
