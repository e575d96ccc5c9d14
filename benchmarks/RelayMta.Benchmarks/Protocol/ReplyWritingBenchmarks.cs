using System.Buffers;
using System.Text;
using BenchmarkDotNet.Attributes;
using RelayMta.Protocol.Smtp;

namespace RelayMta.Benchmarks.Protocol;

/// <summary>
/// Replies into a buffer writer, as <c>SmtpSession.Write</c> puts them into its PipeWriter: a
/// reply's wire form is encoded once when the <see cref="SmtpReply"/> is made, so writing a
/// prepared reply is a copy. Also measured: what making a reply per message costs (the session
/// builds "250 2.0.0 OK: queued as ID" after every DATA), and the client side's reply parsing
/// (<see cref="ReplyReader"/>, used by the delivery agents for every reply of the remote server).
/// </summary>
[MemoryDiagnoser]
public class ReplyWritingBenchmarks
{
    private readonly ArrayBufferWriter<byte> _writer = new(4096);
    private SmtpReply _ehlo = null!;
    private ReadOnlySequence<byte> _singleLineWire;
    private ReadOnlySequence<byte> _ehloWire;
    private string _queueId = "";

    [GlobalSetup]
    public void Setup()
    {
        // The same lines InboundContext prepares for EHLO (no STARTTLS, no AUTH).
        _ehlo = new SmtpReply(250, "", string.Join('\n', "relay.example.org", "PIPELINING", "SIZE 26214400", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8"));
        _singleLineWire = new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes("250 2.0.0 OK: queued as 00CPC3ZHKG000\r\n"));
        _ehloWire = new ReadOnlySequence<byte>(_ehlo.Utf8);
        _queueId = "00CPC3ZHKG000";
    }

    /// <summary>One prepared single-line reply (250 2.1.0 Sender OK).</summary>
    [Benchmark]
    public int SingleLine()
    {
        _writer.ResetWrittenCount();
        _writer.Write(Replies.SenderOk.Utf8.Span);
        return _writer.WrittenCount;
    }

    /// <summary>The multi-line EHLO reply (six lines).</summary>
    [Benchmark]
    public int EhloMultiLine()
    {
        _writer.ResetWrittenCount();
        _writer.Write(_ehlo.Utf8.Span);
        return _writer.WrittenCount;
    }

    /// <summary>The replies to a pipelined MAIL, RCPT, RCPT, DATA batch, written back to back before one flush.</summary>
    [Benchmark]
    public int PipelinedBatch()
    {
        _writer.ResetWrittenCount();
        _writer.Write(Replies.SenderOk.Utf8.Span);
        _writer.Write(Replies.RecipientOk.Utf8.Span);
        _writer.Write(Replies.RecipientOk.Utf8.Span);
        _writer.Write(Replies.StartData.Utf8.Span);
        return _writer.WrittenCount;
    }

    /// <summary>
    /// The reply after each accepted message, made and written as <c>SmtpSession.FinishDataAsync</c>
    /// does: <c>new SmtpReply(250, "2.0.0", "OK: queued as " + id)</c>.
    /// </summary>
    [Benchmark]
    public int QueuedReplyPerMessage()
    {
        var reply = new SmtpReply(250, "2.0.0", "OK: queued as " + _queueId);
        _writer.ResetWrittenCount();
        _writer.Write(reply.Utf8.Span);
        return _writer.WrittenCount;
    }

    /// <summary>Client side: parse "250 2.0.0 OK: queued as ..." (done for every reply of every delivery).</summary>
    [Benchmark]
    public int ParseSingleLine()
    {
        var buffer = _singleLineWire;
        return ReplyReader.TryRead(ref buffer, out var response) == ReplyStatus.Complete ? response!.Code : -1;
    }

    /// <summary>Client side: parse the multi-line EHLO reply.</summary>
    [Benchmark]
    public int ParseEhloMultiLine()
    {
        var buffer = _ehloWire;
        return ReplyReader.TryRead(ref buffer, out var response) == ReplyStatus.Complete ? response!.Lines.Count : -1;
    }
}
