using System.Text;
using Akka.Actor;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;
using RelayMta.Benchmarks.Infrastructure;
using RelayMta.Engine.Hosting;
using RelayMta.Engine.Inbound;
using RelayMta.Engine.Spool;
using RelayMta.Protocol.Smtp;

namespace RelayMta.Benchmarks.Engine;

/// <summary>
/// What RCPT costs the session after the parse (which allocates nothing, see
/// <see cref="Protocol.CommandParsingBenchmarks"/>): <c>InboundContext.CheckRecipient</c>, which
/// decides local or relayed and makes the address string the transaction keeps. The allocation
/// here is the address the session stores (and the pieces it is built from).
/// </summary>
[MemoryDiagnoser]
public class RecipientCheckBenchmarks
{
    private byte[] _relayed = [];
    private byte[] _local = [];
    private string _dir = "";
    private Spool _spool = null!;
    private InboundContext _context = null!;

    [GlobalSetup]
    public void Setup()
    {
        _dir = BenchDirectories.Create("rcpt");
        var config = ConfigLoader.LoadText($$"""
            relay-mta {
              spool-dir = "{{Path.Combine(_dir, "spool").Replace("\\", "\\\\", StringComparison.Ordinal)}}"
              local { domains = ["localhost", "example.org"], mailbox-root = "{{Path.Combine(_dir, "mail").Replace("\\", "\\\\", StringComparison.Ordinal)}}" }
              admin.listen = ""
            }
            """, "bench.hocon");
        _spool = Spool.Open(Path.Combine(_dir, "spool"), new SpoolOptions(), NullLogger.Instance);
        _context = new InboundContext(config.Settings, _spool, ActorRefs.Nobody, NullLoggerFactory.Instance);
        _relayed = Encoding.ASCII.GetBytes("TO:<bob.recipient@example.net>");
        _local = Encoding.ASCII.GetBytes("TO:<Alice.Local@Example.ORG>");
        if (Relayed() != "bob.recipient@example.net".Length || Local() != "alice.local@example.org".Length)
            throw new InvalidOperationException("the recipients were not accepted as expected");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _context.Clock.Dispose();
        _spool.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>RCPT TO a remote domain from a client allowed to relay: parse, then CheckRecipient.</summary>
    [Benchmark]
    public int Relayed()
    {
        if (CommandParser.ParseRcptTo(_relayed, out var path) is not null) return -1;
        return _context.CheckRecipient(path, mayRelay: true, out var address, out _) is null ? address.Length : -1;
    }

    /// <summary>RCPT TO one of our local domains (mailbox name checked, address lower-cased).</summary>
    [Benchmark]
    public int Local()
    {
        if (CommandParser.ParseRcptTo(_local, out var path) is not null) return -1;
        return _context.CheckRecipient(path, mayRelay: true, out var address, out _) is null ? address.Length : -1;
    }
}
