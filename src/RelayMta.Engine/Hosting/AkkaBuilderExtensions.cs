using Akka.Actor;
using Akka.Hosting;
using RelayMta.Engine.Inbound;
using Microsoft.Extensions.Logging;
using RelayMta.Engine.Local;
using RelayMta.Engine.Outbound;
using RelayMta.Engine.Queue;

namespace RelayMta.Engine.Hosting;

/// <summary>Marker for the registry: the queue manager actor.</summary>
public sealed class QueueManagerKey;

/// <summary>Marker for the registry: the SMTP listener actor.</summary>
public sealed class ListenerKey;

/// <summary>Marker for the registry: the local delivery actor.</summary>
public sealed class LocalDeliveryKey;

/// <summary>The one place where RelayMta's actors are created and wired (host and tests both use it).</summary>
public static class AkkaBuilderExtensions
{
    /// <summary>Adds RelayMta's actors, their shutdown tasks and Akka settings to the builder.</summary>
    public static AkkaConfigurationBuilder AddRelayMta(this AkkaConfigurationBuilder builder, RelayMtaRuntime runtime)
    {
        var settings = runtime.Settings;
        var drain = settings.DrainTimeout;
        var drainSeconds = (int)Math.Ceiling(drain.TotalSeconds);
        builder.AddHocon($$"""
            akka {
              loglevel = WARNING
              coordinated-shutdown {
                phases {
                  service-unbind { timeout = 10s }
                  service-requests-done { timeout = {{drainSeconds + 10}}s }
                  service-stop { timeout = 20s }
                }
                exit-clr = off
              }
            }
            """, HoconAddMode.Prepend);

        return builder.WithActors((system, registry) =>
        {
            var writer = new MaildirWriter(settings.Local.MailboxRoot, settings.Hostname, settings.Local.Recipients == LocalRecipientPolicy.Any);
            var local = system.ActorOf(Props.Create(() => new LocalDeliveryActor(writer, runtime.Spool, 8)), "local-delivery");
            var schedule = new RetrySchedule(settings.Outbound.RetryIntervals, settings.Outbound.MaxQueueLifetime);
            var resolver = new MxResolver(settings.Dns, runtime.Loggers.CreateLogger("RelayMta.Dns"));
            var transport = runtime.OutboundTransport
                            ?? new SmtpOutboundTransport(settings.Hostname, settings.Outbound, id => runtime.Spool.OpenBody(id));
            var outboundContext = new OutboundContext(settings, resolver, transport, schedule, runtime.Loggers.CreateLogger("RelayMta.Outbound"),
                runtime.Metrics);
            Func<IActorRef, Props> outbound = qm => Props.Create(() => new OutboundActor(outboundContext, qm));
            var metrics = runtime.Metrics;
            var queue = system.ActorOf(Props.Create(() => new QueueManagerActor(settings, runtime.Spool, local, outbound, runtime.Loggers, metrics)),
                "queue-manager");
            var context = new InboundContext(settings, runtime.Spool, queue, runtime.Loggers, metrics);
            metrics.Registry.AddBeforeCollectCallback(() =>
            {
                var (lookups, failures) = resolver.Counters;
                metrics.DnsLookups.IncTo(lookups);
                metrics.DnsFailures.IncTo(failures);
                var (records, flushes) = runtime.Spool.CommitCounters;
                metrics.SpoolRecords.IncTo(records);
                metrics.SpoolFlushes.IncTo(flushes);
                var (flushing, batches) = runtime.Spool.CommitTimes;
                metrics.SpoolFlushSeconds.IncTo(flushing.TotalSeconds);
                metrics.SpoolBatchSeconds.IncTo(batches.TotalSeconds);
            });
            var listener = system.ActorOf(Props.Create(() => new ListenerActor(runtime.Listeners, context)), "listener");
            runtime.Inbound = context;
            runtime.QueueManager = queue;
            runtime.Listener = listener;
            registry.Register<LocalDeliveryKey>(local);
            registry.Register<QueueManagerKey>(queue);
            registry.Register<ListenerKey>(listener);

            var shutdown = CoordinatedShutdown.Get(system);
            shutdown.AddTask(CoordinatedShutdown.PhaseServiceUnbind, "relay-mta-unbind",
                () => listener.Ask<Akka.Done>(InboundProtocol.Unbind.Instance, TimeSpan.FromSeconds(9)));
            shutdown.AddTask(CoordinatedShutdown.PhaseServiceRequestsDone, "relay-mta-drain",
                () => listener.Ask<Akka.Done>(new InboundProtocol.DrainSessions(drain), drain + TimeSpan.FromSeconds(8)));
            shutdown.AddTask(CoordinatedShutdown.PhaseServiceStop, "relay-mta-quiesce",
                () => queue.Ask<Akka.Done>(new QueueProtocol.Quiesce(TimeSpan.FromSeconds(15)), TimeSpan.FromSeconds(18)));
        });
    }
}
