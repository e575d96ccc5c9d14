using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using ARSoft.Tools.Net;
using ARSoft.Tools.Net.Dns;

namespace RelayMta.IntegrationTests.Infrastructure;

/// <summary>
/// An authoritative-looking DNS server on 127.0.0.1 (UDP and TCP, same free port) answering from records
/// the test configures, built on ARSoft.Tools.Net's <see cref="DnsServer"/>. Point
/// <c>relay-mta.dns.servers</c> at <see cref="Endpoint"/>.
/// <para>
/// Names are case-insensitive, with or without a trailing dot. A name that was never configured answers
/// NXDOMAIN; a name that has records, but none of the asked type, answers NOERROR with an empty answer
/// (NODATA). <see cref="SetNxDomain"/>, <see cref="SetServFail"/> and <see cref="SetNoAnswer"/> override a
/// name's records for every type until <see cref="Clear"/>. Only the first question of a query is answered.
/// </para>
/// </summary>
public sealed class TestDnsServer : IAsyncDisposable
{
    private const int TransportTimeoutMs = 5_000;
    private const int TcpKeepAliveMs = 10_000;

    private readonly object _gate = new();
    private readonly Dictionary<string, Entry> _names = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Name, RecordType Type), int> _queries = new();
    private readonly ConcurrentQueue<Exception> _errors = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly DnsServer _server;
    private int _ttl = 300;
    private int _disposed;

    private TestDnsServer(DnsServer server, IPEndPoint endpoint)
    {
        _server = server;
        Endpoint = endpoint;
    }

    /// <summary>The UDP and TCP endpoint the server listens on.</summary>
    public IPEndPoint Endpoint { get; }

    /// <summary>TTL, in seconds, of every record in answers given from now on (records are built per answer).</summary>
    public int Ttl
    {
        get => Volatile.Read(ref _ttl);
        set => Volatile.Write(ref _ttl, value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(value)));
    }

    /// <summary>Exceptions ARSoft reported through <see cref="DnsServer.ExceptionThrown"/> (should stay empty).</summary>
    public IReadOnlyList<Exception> Errors => _errors.ToArray();

    /// <summary>Starts a server on 127.0.0.1 with a port free for both UDP and TCP.</summary>
    public static Task<TestDnsServer> StartAsync()
    {
        for (var attempt = 1; ; attempt++)
        {
            var endpoint = new IPEndPoint(IPAddress.Loopback, LoopbackPorts.FindTcpAndUdpPortFreeOn(IPAddress.Loopback));
            var udp = new UdpServerTransport(endpoint, TransportTimeoutMs);
            var tcp = new TcpServerTransport(endpoint, TransportTimeoutMs, TcpKeepAliveMs);
            var server = new DnsServer(udp, tcp);
            var dns = new TestDnsServer(server, endpoint);
            server.QueryReceived += dns.OnQueryReceivedAsync;
            server.ExceptionThrown += dns.OnExceptionAsync;
            try
            {
                // Binds both transports synchronously, then runs the accept loops on the thread pool.
                server.Start();
                return Task.FromResult(dns);
            }
            catch (SocketException) when (attempt < 5)
            {
                // Lost the port between the probe and the bind; Start() may have bound one transport.
                udp.Dispose();
                tcp.Dispose();
            }
        }
    }

    public void AddMx(string domain, ushort preference, string exchange) =>
        Add(domain, new MxSpec(preference, Normalize(exchange)));

    /// <summary>RFC 7505 null MX: "MX 0 ." — the domain accepts no mail.</summary>
    public void AddNullMx(string domain) => Add(domain, new MxSpec(0, ""));

    public void AddA(string name, IPAddress address) =>
        Add(name, new AddressSpec(address.AddressFamily == AddressFamily.InterNetwork ? address : throw new ArgumentException($"{address} is not IPv4", nameof(address))));

    public void AddAaaa(string name, IPAddress address) =>
        Add(name, new AddressSpec(address.AddressFamily == AddressFamily.InterNetworkV6 ? address : throw new ArgumentException($"{address} is not IPv6", nameof(address))));

    /// <summary>Every query for the name answers NXDOMAIN (even if it has records).</summary>
    public void SetNxDomain(string name) => SetMode(name, Mode.NxDomain);

    /// <summary>Every query for the name answers SERVFAIL.</summary>
    public void SetServFail(string name) => SetMode(name, Mode.ServFail);

    /// <summary>Queries for the name are never answered: the client times out.</summary>
    public void SetNoAnswer(string name) => SetMode(name, Mode.NoAnswer);

    /// <summary>Forgets the name's records and mode: it answers NXDOMAIN again (query counts are kept).</summary>
    public void Clear(string name)
    {
        lock (_gate) _names.Remove(Normalize(name));
    }

    /// <summary>Queries received so far for <paramref name="name"/> and <paramref name="type"/> (answered or not).</summary>
    public int Queries(string name, RecordType type) => _queries.TryGetValue((Normalize(name), type), out var n) ? n : 0;

    /// <summary>Queries received so far for <paramref name="name"/>, of any type.</summary>
    public int Queries(string name)
    {
        var key = Normalize(name);
        return _queries.Where(kv => kv.Key.Name == key).Sum(kv => kv.Value);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        // Stop() cancels the accept loops and closes both sockets; then release handlers parked by
        // SetNoAnswer (their late reply goes to a closed socket and is dropped by ARSoft).
        await Task.Run(_server.Stop);
        _stopping.Cancel();
    }

    /// <summary>Lower case, no trailing dot; the root is "".</summary>
    private static string Normalize(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return name.TrimEnd('.').ToLowerInvariant();
    }

    private static string Normalize(DomainName name) => string.Join('.', name.Labels).ToLowerInvariant();

    private static DomainName ToDomainName(string normalized) => normalized.Length == 0 ? DomainName.Root : DomainName.Parse(normalized);

    private void Add(string name, RecordSpec record)
    {
        var key = Normalize(name);
        if (key.Length == 0) throw new ArgumentException("the root cannot have records here", nameof(name));
        lock (_gate)
        {
            if (!_names.TryGetValue(key, out var entry)) _names[key] = entry = new Entry();
            entry.Records.Add(record);
        }
    }

    private void SetMode(string name, Mode mode)
    {
        var key = Normalize(name);
        lock (_gate)
        {
            if (!_names.TryGetValue(key, out var entry)) _names[key] = entry = new Entry();
            entry.Mode = mode;
        }
    }

    private Task OnExceptionAsync(object sender, ExceptionEventArgs e)
    {
        _errors.Enqueue(e.Exception);
        return Task.CompletedTask;
    }

    private async Task OnQueryReceivedAsync(object sender, QueryReceivedEventArgs e)
    {
        // ARSoft answers SERVFAIL when Response stays null or this handler throws; it has no way to
        // "not answer" except not returning.
        if (e.Query is not DnsMessage query) return;
        var response = query.CreateResponseInstance();
        response.IsAuthoritiveAnswer = true;
        response.IsRecursionAllowed = true;
        if (query.Questions.Count == 0)
        {
            response.ReturnCode = ReturnCode.FormatError;
            e.Response = response;
            return;
        }

        var question = query.Questions[0];
        var name = Normalize(question.Name);
        _queries.AddOrUpdate((name, question.RecordType), 1, (_, n) => n + 1);

        Mode mode;
        List<DnsRecordBase> answers = [];
        lock (_gate)
        {
            if (!_names.TryGetValue(name, out var entry)) mode = Mode.NxDomain;
            else
            {
                mode = entry.Mode;
                if (mode == Mode.Records)
                {
                    var ttl = Ttl;
                    foreach (var record in entry.Records)
                    {
                        var answer = record.ToRecord(question.Name, question.RecordType, ttl);
                        if (answer is not null) answers.Add(answer);
                    }
                }
            }
        }

        switch (mode)
        {
            case Mode.NoAnswer:
                try
                {
                    await Task.Delay(Timeout.Infinite, _stopping.Token);
                }
                catch (OperationCanceledException)
                {
                }
                // Nobody is listening any more; this goes nowhere.
                response.ReturnCode = ReturnCode.ServerFailure;
                break;
            case Mode.NxDomain:
                response.ReturnCode = ReturnCode.NxDomain;
                break;
            case Mode.ServFail:
                response.ReturnCode = ReturnCode.ServerFailure;
                break;
            default:
                response.ReturnCode = ReturnCode.NoError; // an empty answer here is NODATA
                response.AnswerRecords.AddRange(answers);
                break;
        }
        e.Response = response;
    }

    private enum Mode
    {
        Records,
        NxDomain,
        ServFail,
        NoAnswer,
    }

    private sealed class Entry
    {
        public Mode Mode { get; set; } = Mode.Records;

        public List<RecordSpec> Records { get; } = [];
    }

    private abstract record RecordSpec
    {
        public abstract DnsRecordBase? ToRecord(DomainName owner, RecordType asked, int ttl);
    }

    private sealed record MxSpec(ushort Preference, string Exchange) : RecordSpec
    {
        public override DnsRecordBase? ToRecord(DomainName owner, RecordType asked, int ttl) =>
            asked is RecordType.Mx or RecordType.Any ? new MxRecord(owner, ttl, Preference, ToDomainName(Exchange)) : null;
    }

    private sealed record AddressSpec(IPAddress Address) : RecordSpec
    {
        public override DnsRecordBase? ToRecord(DomainName owner, RecordType asked, int ttl) =>
            Address.AddressFamily == AddressFamily.InterNetwork
                ? asked is RecordType.A or RecordType.Any ? new ARecord(owner, ttl, Address) : null
                : asked is RecordType.Aaaa or RecordType.Any ? new AaaaRecord(owner, ttl, Address) : null;
    }
}
