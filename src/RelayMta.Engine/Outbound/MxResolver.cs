using System.Net;
using System.Net.Sockets;
using DnsClient;
using DnsClient.Protocol;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;
using Polly.Timeout;
using RelayMta.Engine.Hosting;

namespace RelayMta.Engine.Outbound;

/// <summary>
/// Finds where mail for a domain goes (RFC 5321 5.1): MX records in preference order, random among
/// equal preference, each host's A and AAAA addresses; the domain's own addresses when it has no MX
/// (implicit MX); a null MX (RFC 7505, <c>MX 0 .</c>) or a domain that does not exist is permanent;
/// time-outs and SERVFAIL are temporary. One <see cref="LookupClient"/> for the process (DnsClient's
/// advice), with its cache on, so answers are reused for their TTL. A query that times out or fails
/// is retried with back-off through one Polly pipeline built here, once.
/// </summary>
public sealed class MxResolver
{
    private readonly LookupClient _client;
    private readonly ResiliencePipeline _pipeline;
    private readonly ILogger _log;
    private long _lookups;
    private long _failures;

    /// <summary>Creates the resolver from <c>relay-mta.dns</c>.</summary>
    public MxResolver(DnsSettings settings, ILogger log)
    {
        _log = log;
        var options = settings.Servers.Count > 0
            ? new LookupClientOptions(settings.Servers.ToArray())
            : new LookupClientOptions();
        options.UseCache = true;
        options.Timeout = settings.Timeout;
        options.Retries = 0; // Polly does the retrying, with back-off
        options.ThrowDnsErrors = false;
        options.UseTcpFallback = true;
        options.ContinueOnDnsError = true;
        _client = new LookupClient(options);

        var builder = new ResiliencePipelineBuilder();
        if (settings.Retries > 0)
        {
            builder.AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = settings.Retries,
                BackoffType = DelayBackoffType.Exponential,
                Delay = TimeSpan.FromMilliseconds(200),
                UseJitter = true,
                ShouldHandle = new PredicateBuilder().Handle<DnsResponseException>().Handle<TimeoutRejectedException>()
                    .Handle<SocketException>().HandleResult(r => r is IDnsQueryResponse { Header.ResponseCode: DnsHeaderResponseCode.ServerFailure }),
            });
        }
        builder.AddTimeout(settings.Timeout + TimeSpan.FromSeconds(1));
        _pipeline = builder.Build();
    }

    /// <summary>Lookups made and lookups that failed (for metrics).</summary>
    public (long Lookups, long Failures) Counters => (Interlocked.Read(ref _lookups), Interlocked.Read(ref _failures));

    /// <summary>Where mail for <paramref name="domain"/> (normalised, A-labels) goes.</summary>
    public async Task<RouteResult> ResolveMxAsync(string domain, CancellationToken ct)
    {
        if (domain.StartsWith('[')) return Literal(domain);

        var mx = await QueryAsync(domain, QueryType.MX, ct).ConfigureAwait(false);
        if (mx.Failure is not null) return mx.Failure;
        var response = mx.Response!;
        if (response.Header.ResponseCode == DnsHeaderResponseCode.NotExistentDomain)
            return new RouteResult.Failure(true, "5.1.2", $"domain {domain} does not exist (NXDOMAIN)");

        var records = response.Answers.MxRecords().ToList();
        // RFC 7505: "MX 0 ." says the domain accepts no mail.
        if (records.Any(r => r.Exchange.Value is "." or ""))
            return new RouteResult.Failure(true, "5.1.10", $"domain {domain} accepts no mail (null MX)");

        if (records.Count == 0)
        {
            // RFC 5321 5.1: no MX, so the domain itself is the host (implicit MX).
            var implicitHost = await HostAsync(domain, 0, ct).ConfigureAwait(false);
            return implicitHost switch
            {
                { Host: { } h } => new RouteResult.Hosts([h]),
                { Failure: { } f } => f.Permanent
                    ? new RouteResult.Failure(true, "5.1.2", $"domain {domain} has no MX and no address")
                    : f,
                _ => new RouteResult.Failure(false, "4.4.3", $"no address for {domain}"),
            };
        }

        // Preference order, random among equals (RFC 5321 5.1).
        var ordered = records.GroupBy(r => r.Preference).OrderBy(g => g.Key)
            .SelectMany(g => g.OrderBy(_ => Random.Shared.Next())).ToList();
        var hosts = new List<RemoteHost>(ordered.Count);
        RouteResult.Failure? firstFailure = null;
        foreach (var record in ordered)
        {
            var name = record.Exchange.Value.TrimEnd('.').ToLowerInvariant();
            var host = await HostAsync(name, record.Preference, ct).ConfigureAwait(false);
            if (host.Host is not null) hosts.Add(host.Host);
            else firstFailure ??= host.Failure;
        }
        if (hosts.Count > 0) return new RouteResult.Hosts(hosts);
        // Every MX host failed to resolve: try again later (the domain itself exists).
        return new RouteResult.Failure(false, "4.4.3", $"no MX host of {domain} could be resolved: {firstFailure?.Diagnostic}");
    }

    /// <summary>The addresses of one host (a smarthost, say), with no MX lookup.</summary>
    public async Task<RouteResult> ResolveHostAsync(string host, CancellationToken ct)
    {
        if (IPAddress.TryParse(host, out var ip)) return new RouteResult.Hosts([new RemoteHost(host, 0, [ip])]);
        var result = await HostAsync(host, 0, ct).ConfigureAwait(false);
        return result.Host is not null ? new RouteResult.Hosts([result.Host]) : result.Failure!;
    }

    private static RouteResult Literal(string domain)
    {
        var inner = domain[1..^1];
        if (inner.StartsWith("ipv6:", StringComparison.OrdinalIgnoreCase)) inner = inner[5..];
        return IPAddress.TryParse(inner, out var ip)
            ? new RouteResult.Hosts([new RemoteHost(domain, 0, [ip])])
            : new RouteResult.Failure(true, "5.1.2", $"bad address literal {domain}");
    }

    /// <summary>A and AAAA of a host; IPv4 first (the safer default on edge hosts), then IPv6.</summary>
    private async Task<(RemoteHost? Host, RouteResult.Failure? Failure)> HostAsync(string name, int preference, CancellationToken ct)
    {
        var a = QueryAsync(name, QueryType.A, ct);
        var aaaa = QueryAsync(name, QueryType.AAAA, ct);
        var (ra, raaaa) = (await a.ConfigureAwait(false), await aaaa.ConfigureAwait(false));
        var addresses = new List<IPAddress>();
        if (ra.Response is { } r4) addresses.AddRange(r4.Answers.ARecords().Select(x => x.Address));
        if (raaaa.Response is { } r6) addresses.AddRange(r6.Answers.AaaaRecords().Select(x => x.Address));
        if (addresses.Count > 0) return (new RemoteHost(name, preference, addresses.Distinct().ToList()), null);

        if (ra.Failure is { } fa) return (null, fa);
        if (raaaa.Failure is { } f6) return (null, f6);
        // Both lookups answered, and there is no address: NXDOMAIN, or a name with no A/AAAA at all.
        var nx = ra.Response?.Header.ResponseCode == DnsHeaderResponseCode.NotExistentDomain;
        return (null, new RouteResult.Failure(true, "5.1.2", nx ? $"host {name} does not exist" : $"host {name} has no address"));
    }

    private async Task<(IDnsQueryResponse? Response, RouteResult.Failure? Failure)> QueryAsync(string name, QueryType type, CancellationToken ct)
    {
        Interlocked.Increment(ref _lookups);
        try
        {
            var response = await _pipeline.ExecuteAsync(
                async token => await _client.QueryAsync(name, type, QueryClass.IN, token).ConfigureAwait(false), ct).ConfigureAwait(false);
            var code = response.Header.ResponseCode;
            if (code is DnsHeaderResponseCode.NoError or DnsHeaderResponseCode.NotExistentDomain) return (response, null);
            Interlocked.Increment(ref _failures);
            return (null, new RouteResult.Failure(false, "4.4.3", $"DNS {type} lookup for {name} failed: {code}"));
        }
        catch (Exception e) when (e is DnsResponseException or TimeoutRejectedException or SocketException or OperationCanceledException && !ct.IsCancellationRequested)
        {
            Interlocked.Increment(ref _failures);
            _log.LogDebug("DNS {Type} lookup for {Name} failed: {Error}", type, name, e.Message);
            return (null, new RouteResult.Failure(false, "4.4.3", $"DNS {type} lookup for {name} failed: {e.Message}"));
        }
    }
}
