using System.Buffers.Text;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;

namespace RelayMta.Benchmarks.Load;

/// <summary>
/// What one load iteration asks of the clients: where to connect, the message, how many messages
/// and how many sessions, and where to record what happened to each message.
/// </summary>
internal sealed class LoadPlan
{
    public LoadPlan(IPEndPoint relay, MessageTemplate message, int sessions, int messages, long firstId, TimeSpan operationTimeout)
    {
        Relay = relay;
        Message = message;
        Sessions = sessions;
        Messages = messages;
        FirstId = firstId;
        OperationTimeout = operationTimeout;
        LatencyTicks = new long[messages];
        Acknowledged = new bool[messages];
    }

    public IPEndPoint Relay { get; }
    public MessageTemplate Message { get; }
    public int Sessions { get; }
    public int Messages { get; }

    /// <summary>The X-Bench-Id of message 0; message i carries FirstId + i.</summary>
    public long FirstId { get; }

    public TimeSpan OperationTimeout { get; }

    /// <summary>Per message: Stopwatch ticks from sending the end-of-data dot to reading the 250.</summary>
    public long[] LatencyTicks { get; }

    /// <summary>Per message: the relay answered 250 after the dot.</summary>
    public bool[] Acknowledged { get; }

    /// <summary>Stopwatch timestamp of the last 250 after a dot.</summary>
    public long LastAcknowledgedAt;

    /// <summary>Transactions that got something other than 250/250/354/250.</summary>
    public int Failures;

    /// <summary>The first few failures, for the error message.</summary>
    public readonly List<string> FailureSamples = new();

    /// <summary>Messages session <paramref name="session"/> sends: a contiguous range of indexes.</summary>
    public (int Start, int Count) RangeOf(int session)
    {
        var per = Messages / Sessions;
        var extra = Messages % Sessions;
        var start = session * per + Math.Min(session, extra);
        return (start, per + (session < extra ? 1 : 0));
    }

    public void Fail(string what)
    {
        Interlocked.Increment(ref Failures);
        lock (FailureSamples)
            if (FailureSamples.Count < 5) FailureSamples.Add(what);
    }
}

/// <summary>
/// The message every client sends: content of the requested size (headers, ~76-character lines,
/// some starting with a dot) with an <c>X-Bench-Id</c> header of fixed width that each session
/// patches in place, so the sink can tell which message it got. Pre-encoded for the wire.
/// </summary>
internal sealed class MessageTemplate
{
    public const int IdDigits = 16;
    private const string IdHeader = "X-Bench-Id: ";

    public MessageTemplate(int size)
    {
        var headers = IdHeader + new string('0', IdDigits) + "\r\n" +
                      "From: <load@client.bench>\r\nTo: <rcpt@sink.bench>\r\nSubject: relay load benchmark\r\n" +
                      "Message-ID: <load@client.bench>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n";
        var content = Infrastructure.MailContent.Create(size, seed: size, headers);
        Size = size;
        Wire = Infrastructure.MailContent.DotStuff(content); // the header has no dots: the id stays at the same offset
        IdOffset = IdHeader.Length;
        Envelope = Encoding.ASCII.GetBytes($"MAIL FROM:<load@client.bench> SIZE={size}\r\nRCPT TO:<rcpt@sink.bench>\r\nDATA\r\n");
    }

    /// <summary>Content size (what the relay stores, before its Received: field).</summary>
    public int Size { get; }

    /// <summary>Dot-stuffed content, ending with CRLF, without the final dot.</summary>
    public byte[] Wire { get; }

    /// <summary>Where the id's digits start in <see cref="Wire"/>.</summary>
    public int IdOffset { get; }

    /// <summary>MAIL, RCPT and DATA in one write (PIPELINING, as smtp-source sends them).</summary>
    public byte[] Envelope { get; }

    public static void WriteId(Span<byte> digits, long id)
    {
        if (!Utf8Formatter.TryFormat(id, digits, out var n, new System.Buffers.StandardFormat('D', IdDigits)) || n != IdDigits)
            throw new InvalidOperationException("id too large");
    }

    /// <summary>Finds the id in the first bytes of a delivered message (after the relay's Received: field).</summary>
    public static bool TryReadId(ReadOnlySpan<byte> head, out long id)
    {
        id = 0;
        var at = head.IndexOf("\r\nX-Bench-Id: "u8);
        if (at < 0) return false;
        var digits = head[(at + 2 + IdHeader.Length)..];
        return digits.Length >= IdDigits && Utf8Parser.TryParse(digits[..IdDigits], out id, out var used) && used == IdDigits;
    }
}

/// <summary>
/// One fast raw-socket SMTP client session: EHLO once, then per message MAIL/RCPT/DATA in one
/// write, the content, the dot (timestamped), the reply (timestamped); QUIT at the end. Every
/// socket operation has a time-out. Nothing is allocated per message.
/// </summary>
internal sealed class SmtpLoadClient : IDisposable
{
    private static readonly byte[] Ehlo = "EHLO client.bench\r\n"u8.ToArray();
    private static readonly byte[] Dot = ".\r\n"u8.ToArray();
    private static readonly byte[] Rset = "RSET\r\n"u8.ToArray();
    private static readonly byte[] Quit = "QUIT\r\n"u8.ToArray();

    private readonly LoadPlan _plan;
    private readonly int _session;
    private readonly Socket _socket;
    private readonly byte[] _wire;
    private readonly byte[] _input = new byte[16 * 1024];
    private readonly CancellationTokenSource _timeout = new();
    private int _start;
    private int _end;

    public SmtpLoadClient(LoadPlan plan, int session)
    {
        _plan = plan;
        _session = session;
        _socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        _wire = (byte[])plan.Message.Wire.Clone(); // each session patches its own copy's id
    }

    public async Task RunAsync(CancellationToken stop)
    {
        using var link = stop.Register(static s => ((CancellationTokenSource)s!).Cancel(), _timeout);
        var (first, count) = _plan.RangeOf(_session);
        try
        {
            Arm();
            await _socket.ConnectAsync(_plan.Relay, _timeout.Token).ConfigureAwait(false);
            await Expect(220, "greeting").ConfigureAwait(false);
            await SendAsync(Ehlo).ConfigureAwait(false);
            await Expect(250, "EHLO").ConfigureAwait(false);

            for (var i = first; i < first + count; i++)
            {
                MessageTemplate.WriteId(_wire.AsSpan(_plan.Message.IdOffset, MessageTemplate.IdDigits), _plan.FirstId + i);
                await SendAsync(_plan.Message.Envelope).ConfigureAwait(false);
                var mail = await ReadReplyAsync().ConfigureAwait(false);
                var rcpt = await ReadReplyAsync().ConfigureAwait(false);
                var data = await ReadReplyAsync().ConfigureAwait(false);
                if (mail != 250 || rcpt != 250 || data != 354)
                {
                    _plan.Fail($"message {i}: MAIL {mail}, RCPT {rcpt}, DATA {data}");
                    if (data == 354)
                    {
                        await SendAsync(Dot).ConfigureAwait(false); // empty message: refused, then carry on
                        await ReadReplyAsync().ConfigureAwait(false);
                    }
                    await SendAsync(Rset).ConfigureAwait(false);
                    await ReadReplyAsync().ConfigureAwait(false);
                    continue;
                }
                await SendAsync(_wire).ConfigureAwait(false);
                var sent = Stopwatch.GetTimestamp();
                await SendAsync(Dot).ConfigureAwait(false);
                var done = await ReadReplyAsync().ConfigureAwait(false);
                var now = Stopwatch.GetTimestamp();
                if (done == 250)
                {
                    _plan.LatencyTicks[i] = now - sent;
                    _plan.Acknowledged[i] = true;
                    InterlockedMax(ref _plan.LastAcknowledgedAt, now);
                }
                else
                {
                    _plan.Fail($"message {i}: {done} after the data");
                }
            }

            await SendAsync(Quit).ConfigureAwait(false);
            await Expect(221, "QUIT").ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or IOException or InvalidDataException)
        {
            var why = e is OperationCanceledException
                ? stop.IsCancellationRequested ? "the iteration's time-out" : $"no progress for {_plan.OperationTimeout.TotalSeconds:0}s"
                : e.Message;
            _plan.Fail($"session {_session}: {why}");
        }
    }

    public void Dispose()
    {
        _socket.Dispose();
        _timeout.Dispose();
    }

    /// <summary>Restarts the per-operation time-out (one timer per session, moved, never reallocated).</summary>
    private void Arm() => _timeout.CancelAfter(_plan.OperationTimeout);

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask SendAsync(ReadOnlyMemory<byte> bytes)
    {
        Arm();
        while (!bytes.IsEmpty)
        {
            var n = await _socket.SendAsync(bytes, SocketFlags.None, _timeout.Token).ConfigureAwait(false);
            bytes = bytes[n..];
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask Expect(int code, string what)
    {
        var got = await ReadReplyAsync().ConfigureAwait(false);
        if (got != code) throw new InvalidDataException($"session {_session}: {what} got {got}, expected {code}");
    }

    /// <summary>Reads one (possibly multi-line) reply and returns its code.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<int> ReadReplyAsync()
    {
        Arm();
        while (true)
        {
            while (TryTakeLine(out var code, out var last))
                if (last) return code;
            if (_start > 0)
            {
                _input.AsSpan(_start, _end - _start).CopyTo(_input);
                _end -= _start;
                _start = 0;
            }
            if (_end == _input.Length) throw new InvalidDataException("reply line too long");
            var n = await _socket.ReceiveAsync(_input.AsMemory(_end), SocketFlags.None, _timeout.Token).ConfigureAwait(false);
            if (n == 0) throw new IOException("the relay closed the connection");
            _end += n;
        }
    }

    private bool TryTakeLine(out int code, out bool last)
    {
        code = 0;
        last = false;
        var span = _input.AsSpan(_start, _end - _start);
        var lf = span.IndexOf((byte)'\n');
        if (lf < 0) return false;
        var line = span[..lf];
        _start += lf + 1;
        if (line.Length < 3) throw new InvalidDataException("not an SMTP reply");
        code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        last = line.Length < 4 || line[3] != (byte)'-';
        return true;
    }

    private static void InterlockedMax(ref long target, long value)
    {
        var current = Volatile.Read(ref target);
        while (value > current)
        {
            var seen = Interlocked.CompareExchange(ref target, value, current);
            if (seen == current) return;
            current = seen;
        }
    }
}
