using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace RelayMta.Benchmarks.Load;

/// <summary>
/// An accept-all SMTP server on a free loopback port: the relay's smarthost in the load benchmark.
/// Speaks just enough ESMTP for the relay's delivery agents (EHLO with PIPELINING and 8BITMIME,
/// MAIL, RCPT, DATA, RSET, NOOP, QUIT), answers a pipelined batch with one write, finds the end of
/// DATA without keeping the content, and records the <c>X-Bench-Id</c> of every message it gets,
/// so the benchmark can check that each acknowledged message was delivered exactly once.
/// </summary>
internal sealed class SmtpSink : IAsyncDisposable
{
    private static readonly byte[] Banner = "220 sink.bench ESMTP accept-all\r\n"u8.ToArray();
    private static readonly byte[] EhloReply = "250-sink.bench\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES\r\n"u8.ToArray();
    private static readonly byte[] Ok = "250 2.0.0 OK\r\n"u8.ToArray();
    private static readonly byte[] GoAhead = "354 End data with <CR><LF>.<CR><LF>\r\n"u8.ToArray();
    private static readonly byte[] Queued = "250 2.0.0 OK: delivered\r\n"u8.ToArray();
    private static readonly byte[] Bye = "221 2.0.0 Bye\r\n"u8.ToArray();
    private static readonly byte[] Unknown = "502 5.5.1 Not implemented\r\n"u8.ToArray();
    private static readonly TimeSpan IdleTimeout = TimeSpan.FromMinutes(2);

    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly List<Task> _connections = new();
    private Run _run = new(0, 0);
    private long _connectionsAccepted;

    private SmtpSink()
    {
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(1024);
        Endpoint = (IPEndPoint)_listener.LocalEndPoint!;
        _accepting = AcceptLoopAsync();
    }

    public IPEndPoint Endpoint { get; }

    /// <summary>Connections the relay has opened to us so far.</summary>
    public long ConnectionsAccepted => Interlocked.Read(ref _connectionsAccepted);

    /// <summary>What the sink received for the current run.</summary>
    public Run Current => Volatile.Read(ref _run);

    public static SmtpSink Start() => new();

    /// <summary>Starts counting for messages with ids <paramref name="firstId"/> .. +<paramref name="count"/>.</summary>
    public Run BeginRun(long firstId, int count)
    {
        var run = new Run(firstId, count);
        Volatile.Write(ref _run, run);
        return run;
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Dispose();
        try
        {
            await _accepting.ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
        Task[] open;
        lock (_connections) open = _connections.ToArray();
        await Task.WhenAny(Task.WhenAll(open), Task.Delay(TimeSpan.FromSeconds(10))).ConfigureAwait(false);
        _stop.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var client = await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            client.NoDelay = true;
            Interlocked.Increment(ref _connectionsAccepted);
            var task = Task.Run(() => ServeAsync(client));
            lock (_connections)
            {
                _connections.RemoveAll(t => t.IsCompleted);
                _connections.Add(task);
            }
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        var input = new byte[64 * 1024];
        var output = new byte[4096];
        var head = new byte[2048]; // the first bytes of each message, where the id is
        int start = 0, end = 0, pending = 0, headLength = 0, match = 0;
        var inData = false;
        using var idle = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        try
        {
            await SendAsync(socket, Banner, idle).ConfigureAwait(false);
            while (true)
            {
                if (inData)
                {
                    var span = input.AsSpan(start, end - start);
                    var done = ScanData(span, ref match);
                    var content = done < 0 ? span : span[..done];
                    if (headLength < head.Length)
                    {
                        var n = Math.Min(content.Length, head.Length - headLength);
                        content[..n].CopyTo(head.AsSpan(headLength));
                        headLength += n;
                    }
                    if (done < 0)
                    {
                        start = end = 0; // consumed; nothing of the content is kept
                    }
                    else
                    {
                        start += done;
                        inData = false;
                        Current.Record(head.AsSpan(0, headLength));
                        Append(output, ref pending, Queued);
                        continue;
                    }
                }
                else
                {
                    var span = input.AsSpan(start, end - start);
                    var lf = span.IndexOf((byte)'\n');
                    if (lf >= 0)
                    {
                        var line = span[..lf];
                        start += lf + 1;
                        var verb = line.Length >= 4 ? (line[0] | 0x20) << 24 | (line[1] | 0x20) << 16 | (line[2] | 0x20) << 8 | (line[3] | 0x20) : 0;
                        switch (verb)
                        {
                            case 'e' << 24 | 'h' << 16 | 'l' << 8 | 'o':
                                Append(output, ref pending, EhloReply);
                                break;
                            case 'h' << 24 | 'e' << 16 | 'l' << 8 | 'o':
                            case 'm' << 24 | 'a' << 16 | 'i' << 8 | 'l':
                            case 'r' << 24 | 'c' << 16 | 'p' << 8 | 't':
                            case 'r' << 24 | 's' << 16 | 'e' << 8 | 't':
                            case 'n' << 24 | 'o' << 16 | 'o' << 8 | 'p':
                                Append(output, ref pending, Ok);
                                break;
                            case 'd' << 24 | 'a' << 16 | 't' << 8 | 'a':
                                Append(output, ref pending, GoAhead);
                                inData = true;
                                match = 2; // the DATA line's CRLF: a "." line may follow at once
                                headLength = 0;
                                break;
                            case 'q' << 24 | 'u' << 16 | 'i' << 8 | 't':
                                Append(output, ref pending, Bye);
                                await SendAsync(socket, output.AsMemory(0, pending), idle).ConfigureAwait(false);
                                return;
                            default:
                                Append(output, ref pending, Unknown);
                                break;
                        }
                        continue;
                    }
                    if (end - start == input.Length) return; // a 64 KiB command line: not the relay
                }

                // Nothing more to act on in the buffer: answer what was asked, then read.
                if (pending > 0)
                {
                    await SendAsync(socket, output.AsMemory(0, pending), idle).ConfigureAwait(false);
                    pending = 0;
                }
                if (start > 0)
                {
                    input.AsSpan(start, end - start).CopyTo(input);
                    end -= start;
                    start = 0;
                }
                idle.CancelAfter(IdleTimeout);
                var read = await socket.ReceiveAsync(input.AsMemory(end), SocketFlags.None, idle.Token).ConfigureAwait(false);
                if (read == 0) return;
                end += read;
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
        finally
        {
            socket.Dispose();
        }
    }

    private static void Append(byte[] output, ref int pending, byte[] reply)
    {
        reply.CopyTo(output.AsSpan(pending));
        pending += reply.Length;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private static async ValueTask SendAsync(Socket socket, ReadOnlyMemory<byte> bytes, CancellationTokenSource idle)
    {
        idle.CancelAfter(IdleTimeout);
        while (!bytes.IsEmpty)
        {
            var n = await socket.SendAsync(bytes, SocketFlags.None, idle.Token).ConfigureAwait(false);
            bytes = bytes[n..];
        }
    }

    /// <summary>
    /// Looks for CRLF "." CRLF. <paramref name="match"/> carries how much of it the previous bytes
    /// matched (2 at the start: the DATA line ended with CRLF). Returns the index just past the
    /// terminator, or -1 when the span held none (then the whole span is content).
    /// </summary>
    internal static int ScanData(ReadOnlySpan<byte> span, ref int match)
    {
        ReadOnlySpan<byte> terminator = "\r\n.\r\n"u8;
        var i = 0;
        while (i < span.Length)
        {
            if (match == 0)
            {
                var found = span[i..].IndexOf(terminator);
                if (found >= 0) return i + found + terminator.Length;
                // No whole terminator: only a partial one in the last four bytes can carry over.
                for (i = Math.Max(i, span.Length - 4); i < span.Length; i++) match = Step(match, span[i]);
                return -1;
            }
            match = Step(match, span[i]);
            i++;
            if (match == terminator.Length) return i;
        }
        return -1;

        static int Step(int m, byte b) => b == "\r\n.\r\n"u8[m] ? m + 1 : b == (byte)'\r' ? 1 : 0;
    }

    /// <summary>Delivery counts for one run of message ids.</summary>
    internal sealed class Run(long firstId, int count)
    {
        private readonly int[] _seen = new int[count];
        private long _delivered;
        private long _duplicates;
        private long _strays;

        public long FirstId { get; } = firstId;

        /// <summary>Messages received (whatever their id).</summary>
        public long Delivered => Interlocked.Read(ref _delivered);

        /// <summary>Messages of this run received more than once.</summary>
        public long Duplicates => Interlocked.Read(ref _duplicates);

        /// <summary>Messages without an id of this run (bounces, leftovers of an earlier run).</summary>
        public long Strays => Interlocked.Read(ref _strays);

        /// <summary>Times message <paramref name="index"/> of the run was received.</summary>
        public int Seen(int index) => Volatile.Read(ref _seen[index]);

        public void Record(ReadOnlySpan<byte> head)
        {
            if (MessageTemplate.TryReadId(head, out var id) && id >= FirstId && id < FirstId + _seen.Length)
            {
                if (Interlocked.Increment(ref _seen[id - FirstId]) > 1) Interlocked.Increment(ref _duplicates);
            }
            else
            {
                Interlocked.Increment(ref _strays);
            }
            Interlocked.Increment(ref _delivered);
        }
    }
}
