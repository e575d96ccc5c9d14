using System.Buffers;
using System.Text;
using BenchmarkDotNet.Attributes;
using RelayMta.Benchmarks.Infrastructure;
using RelayMta.Protocol.Smtp;

namespace RelayMta.Benchmarks.Protocol;

/// <summary>
/// Command parsing as <c>SmtpSession</c> does it: the pipe hands over a
/// <see cref="ReadOnlySequence{T}"/>, <see cref="LineReader"/> takes a line off it, then
/// <see cref="CommandParser"/> reads the verb and the arguments from the line's span. The goal is
/// 0 bytes allocated per command: the session turns into strings only what it keeps.
/// </summary>
[MemoryDiagnoser]
public class CommandParsingBenchmarks
{
    private const int MaxCommandLine = 1000; // SmtpSession.MaxCommandLine

    private static readonly string[] DispatchLines =
    [
        "EHLO client.example.org",
        "MAIL FROM:<alice@example.org> SIZE=12345 BODY=8BITMIME",
        "RCPT TO:<bob@example.net>",
        "DATA",
        "RSET",
        "NOOP",
        "QUIT",
        "STARTTLS",
    ];

    private ReadOnlySequence<byte> _mail;
    private ReadOnlySequence<byte> _mailSplit;
    private ReadOnlySequence<byte> _rcpt;
    private ReadOnlySequence<byte> _ehlo;
    private ReadOnlySequence<byte> _transaction;
    private byte[][] _dispatch = [];

    [GlobalSetup]
    public void Setup()
    {
        _mail = Line("MAIL FROM:<alice.sender@example.org> SIZE=102400 BODY=8BITMIME\r\n");
        // The same line cut in two, as it is when a read ends mid-command: the session copies it to the stack.
        var split = Encoding.ASCII.GetBytes("MAIL FROM:<alice.sender@example.org> SIZE=102400 BODY=8BITMIME\r\n");
        _mailSplit = Segments.Chain([split.AsMemory(0, 20), split.AsMemory(20)]);
        _rcpt = Line("RCPT TO:<bob.recipient@example.net>\r\n");
        _ehlo = Line("EHLO client.example.org\r\n");
        // What a PIPELINING client sends in one write (RFC 2920).
        _transaction = Line("MAIL FROM:<alice@example.org> SIZE=2048\r\nRCPT TO:<bob@example.net>\r\nRCPT TO:<carol@example.net>\r\nDATA\r\n");
        _dispatch = DispatchLines.Select(Encoding.ASCII.GetBytes).ToArray();

        // Fail here, not with a silently wrong number, if the inputs stop parsing.
        if (MailFrom() != 102400 + 11) throw new InvalidOperationException("MAIL FROM did not parse");
        if (MailFromSplitLine() != 102400 + 11) throw new InvalidOperationException("split MAIL FROM did not parse");
        if (RcptTo() != 11) throw new InvalidOperationException("RCPT TO did not parse");
        if (Ehlo() != 18) throw new InvalidOperationException("EHLO did not parse");
        if (PipelinedTransaction() != 4) throw new InvalidOperationException("the pipelined transaction did not parse");
    }

    /// <summary>One MAIL FROM with SIZE and BODY=8BITMIME: line split, verb, path, parameters.</summary>
    [Benchmark]
    public long MailFrom()
    {
        var buffer = _mail;
        if (LineReader.TryReadLine(ref buffer, MaxCommandLine, out var line) != LineStatus.Line) return -1;
        return ParseMail(line.FirstSpan);
    }

    /// <summary>MAIL FROM whose bytes arrived in two reads (multi-segment line, copied to the stack as the session does).</summary>
    [Benchmark]
    public long MailFromSplitLine()
    {
        var buffer = _mailSplit;
        if (LineReader.TryReadLine(ref buffer, MaxCommandLine, out var line) != LineStatus.Line) return -1;
        Span<byte> copy = stackalloc byte[MaxCommandLine];
        line.CopyTo(copy);
        return ParseMail(copy[..(int)line.Length]);
    }

    /// <summary>One RCPT TO.</summary>
    [Benchmark]
    public long RcptTo()
    {
        var buffer = _rcpt;
        if (LineReader.TryReadLine(ref buffer, MaxCommandLine, out var line) != LineStatus.Line) return -1;
        var verb = CommandParser.ParseVerb(line.FirstSpan, out var argument);
        if (verb != SmtpVerb.Rcpt) return -1;
        var error = CommandParser.ParseRcptTo(argument, out var path);
        return error is null ? path.Domain.Length : -1;
    }

    /// <summary>EHLO: verb and the client's domain.</summary>
    [Benchmark]
    public long Ehlo()
    {
        var buffer = _ehlo;
        if (LineReader.TryReadLine(ref buffer, MaxCommandLine, out var line) != LineStatus.Line) return -1;
        var verb = CommandParser.ParseVerb(line.FirstSpan, out var argument);
        if (verb != SmtpVerb.Ehlo || !CommandParser.TryParseHelo(argument, out var domain)) return -1;
        return domain.Length;
    }

    /// <summary>Verb dispatch alone, over a mix of eight command lines; reported per line.</summary>
    [Benchmark(OperationsPerInvoke = 8)]
    public int VerbDispatch()
    {
        var sum = 0;
        foreach (var line in _dispatch)
        {
            sum += (int)CommandParser.ParseVerb(line, out var argument) + argument.Length;
        }
        return sum;
    }

    /// <summary>A pipelined MAIL, two RCPTs and DATA from one read: the session's inner loop for one batch.</summary>
    [Benchmark]
    public int PipelinedTransaction()
    {
        var buffer = _transaction;
        var handled = 0;
        while (LineReader.TryReadLine(ref buffer, MaxCommandLine, out var line) == LineStatus.Line)
        {
            var span = line.FirstSpan;
            switch (CommandParser.ParseVerb(span, out var argument))
            {
                case SmtpVerb.Mail:
                    if (CommandParser.ParseMailFrom(argument, out _, out _) is null) handled++;
                    break;
                case SmtpVerb.Rcpt:
                    if (CommandParser.ParseRcptTo(argument, out _) is null) handled++;
                    break;
                case SmtpVerb.Data:
                    if (argument.IsEmpty) handled++;
                    break;
            }
        }
        return handled;
    }

    private static long ParseMail(ReadOnlySpan<byte> line)
    {
        var verb = CommandParser.ParseVerb(line, out var argument);
        if (verb != SmtpVerb.Mail) return -1;
        var error = CommandParser.ParseMailFrom(argument, out var path, out var parameters);
        if (error is not null || parameters.Body != BodyType.EightBitMime) return -1;
        return parameters.Size + path.Domain.Length;
    }

    private static ReadOnlySequence<byte> Line(string text) => new(Encoding.ASCII.GetBytes(text));
}
