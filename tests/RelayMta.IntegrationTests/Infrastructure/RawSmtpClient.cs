using System.Net;
using System.Net.Sockets;
using System.Text;

namespace RelayMta.IntegrationTests.Infrastructure;

/// <summary>One SMTP reply as read off the wire.</summary>
public sealed record WireReply(int Code, IReadOnlyList<string> Lines)
{
    /// <summary>The text of the last line after the code and separator.</summary>
    public string LastText => Lines[^1].Length > 4 ? Lines[^1][4..] : "";

    public override string ToString() => string.Join(" | ", Lines);
}

/// <summary>A raw-socket SMTP client for protocol edge cases: sends exact bytes, reads whole replies.</summary>
public sealed class RawSmtpClient : IAsyncDisposable
{
    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;
    private readonly byte[] _buffer = new byte[64 * 1024];
    private readonly StringBuilder _pending = new();

    private RawSmtpClient(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
    }

    public static async Task<RawSmtpClient> ConnectAsync(IPEndPoint endpoint)
    {
        var tcp = new TcpClient(endpoint.AddressFamily);
        await tcp.ConnectAsync(endpoint);
        return new RawSmtpClient(tcp);
    }

    public Task SendAsync(string text) => SendAsync(Encoding.UTF8.GetBytes(text));

    public async Task SendAsync(byte[] bytes)
    {
        await _stream.WriteAsync(bytes);
        await _stream.FlushAsync();
    }

    /// <summary>Sends a command line with CRLF and reads its reply.</summary>
    public async Task<WireReply> CommandAsync(string line)
    {
        await SendAsync(line + "\r\n");
        return await ReadReplyAsync();
    }

    /// <summary>Reads one complete (possibly multi-line) reply.</summary>
    public async Task<WireReply> ReadReplyAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(15));
        var lines = new List<string>();
        while (true)
        {
            var line = await ReadLineAsync(cts.Token) ?? throw new IOException("connection closed while reading a reply; got: " + string.Join(" | ", lines));
            lines.Add(line);
            if (line.Length < 3 || !int.TryParse(line.AsSpan(0, 3), out var code)) throw new InvalidDataException("not a reply line: " + line);
            if (line.Length == 3 || line[3] == ' ') return new WireReply(code, lines);
            if (line[3] != '-') throw new InvalidDataException("bad reply separator: " + line);
        }
    }

    /// <summary>True when the server closes the connection (reads to EOF, ignoring nothing).</summary>
    public async Task<bool> IsClosedAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            while (true)
            {
                if (_pending.Length > 0) return false;
                var n = await _stream.ReadAsync(_buffer, cts.Token);
                if (n == 0) return true;
                _pending.Append(Encoding.UTF8.GetString(_buffer, 0, n));
            }
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        catch (IOException)
        {
            return true;
        }
    }

    private async Task<string?> ReadLineAsync(CancellationToken ct)
    {
        while (true)
        {
            var text = _pending.ToString();
            var crlf = text.IndexOf("\r\n", StringComparison.Ordinal);
            if (crlf >= 0)
            {
                _pending.Remove(0, crlf + 2);
                return text[..crlf];
            }
            var n = await _stream.ReadAsync(_buffer, ct);
            if (n == 0) return null;
            _pending.Append(Encoding.UTF8.GetString(_buffer, 0, n));
        }
    }

    public ValueTask DisposeAsync()
    {
        _tcp.Dispose();
        return ValueTask.CompletedTask;
    }
}
