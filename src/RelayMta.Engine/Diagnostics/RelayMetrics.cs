using Prometheus;

namespace RelayMta.Engine.Diagnostics;

/// <summary>
/// The relay's metrics, in a Prometheus registry of its own (so several relays in one process, as
/// in the tests, never mix their counts). Served as text at the admin listener's <c>/metrics</c>.
/// Sessions open is raised and lowered by the session actors themselves; the queue gauges (messages,
/// recipients, oldest age) are set by the queue manager on a one-second tick, so a scrape may see
/// them up to a second old; the DNS and spool journal counters are copied from their owners' own
/// counters just before each scrape.
/// </summary>
public sealed class RelayMetrics
{
    private static readonly double[] LatencyBuckets = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400];
    private static readonly double[] CommitBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

    /// <summary>Creates the registry and every metric in it.</summary>
    public RelayMetrics()
    {
        Registry = Prometheus.Metrics.NewCustomRegistry();
        var f = Prometheus.Metrics.WithCustomRegistry(Registry);
        SessionsOpen = f.CreateGauge("relaymta_sessions_open", "SMTP sessions open now.");
        SessionsTotal = f.CreateCounter("relaymta_sessions_total", "SMTP sessions accepted since start.");
        ConnectionsRefused = f.CreateCounter("relaymta_connections_refused_total", "Connections refused at connect by a limit.", "reason");
        MessagesAccepted = f.CreateCounter("relaymta_messages_accepted_total", "Messages accepted (250 after DATA).");
        MessagesRejected = f.CreateCounter("relaymta_messages_rejected_total", "Messages and recipients refused, by reason.", "reason");
        Deliveries = f.CreateCounter("relaymta_deliveries_total", "Delivery attempt results per recipient.", "result", "class");
        QueueMessages = f.CreateGauge("relaymta_queue_messages", "Messages in the queue.");
        QueueRecipients = f.CreateGauge("relaymta_queue_recipients", "Recipients not yet final.");
        QueueOldestAge = f.CreateGauge("relaymta_queue_oldest_age_seconds", "Age of the oldest message in the queue.");
        DeliveryLatency = f.CreateHistogram("relaymta_delivery_latency_seconds", "From acceptance to final delivery, per recipient.",
            new HistogramConfiguration { Buckets = LatencyBuckets, LabelNames = ["class"] });
        SpoolCommit = f.CreateHistogram("relaymta_spool_commit_seconds", "From end of DATA to the message being on disk.",
            new HistogramConfiguration { Buckets = CommitBuckets });
        DnsLookups = f.CreateCounter("relaymta_dns_lookups_total", "DNS lookups (one per name and type) made for outbound routing; retries of a lookup are not counted again.");
        DnsFailures = f.CreateCounter("relaymta_dns_failures_total", "DNS lookups that failed after their retries (time-out, SERVFAIL or another error; NXDOMAIN is an answer).");
        TlsSessions = f.CreateCounter("relaymta_tls_sessions_total", "TLS sessions established.", "direction");
        Bounces = f.CreateCounter("relaymta_bounces_total", "Delivery status notifications generated.");
        SpoolRecords = f.CreateCounter("relaymta_spool_records_total", "Journal records committed (messages, state changes, removals).");
        SpoolFlushes = f.CreateCounter("relaymta_spool_flushes_total", "Journal flushes (fdatasync); records per flush shows group commit at work.");
        SpoolFlushSeconds = f.CreateCounter("relaymta_spool_flush_seconds_total", "Time spent in journal flushes.");
        SpoolBatchSeconds = f.CreateCounter("relaymta_spool_batch_seconds_total", "Time the committer spent on batches (write, flush, bookkeeping).");
    }

    /// <summary>The registry to scrape.</summary>
    public CollectorRegistry Registry { get; }

    /// <summary>Recent activity for the dashboard.</summary>
    public ActivityLog Activity { get; } = new();

#pragma warning disable CS1591 // names are the metric names
    public Gauge SessionsOpen { get; }
    public Counter SessionsTotal { get; }
    public Counter ConnectionsRefused { get; }
    public Counter MessagesAccepted { get; }
    public Counter MessagesRejected { get; }
    public Counter Deliveries { get; }
    public Gauge QueueMessages { get; }
    public Gauge QueueRecipients { get; }
    public Gauge QueueOldestAge { get; }
    public Histogram DeliveryLatency { get; }
    public Histogram SpoolCommit { get; }
    public Counter DnsLookups { get; }
    public Counter DnsFailures { get; }
    public Counter TlsSessions { get; }
    public Counter Bounces { get; }
    public Counter SpoolRecords { get; }
    public Counter SpoolFlushes { get; }
    public Counter SpoolFlushSeconds { get; }
    public Counter SpoolBatchSeconds { get; }
#pragma warning restore CS1591

    /// <summary>Writes the Prometheus text exposition.</summary>
    public Task WriteAsync(Stream output, CancellationToken ct = default) => Registry.CollectAndExportAsTextAsync(output, ct);
}
