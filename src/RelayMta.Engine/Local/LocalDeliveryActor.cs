using System.Collections.Immutable;
using Akka.Actor;
using RelayMta.Engine.Queue;

namespace RelayMta.Engine.Local;

/// <summary>
/// Delivers messages for local domains into Maildirs. Receives <see cref="LocalProtocol.DeliverLocal"/>
/// from the queue manager and answers it with <see cref="QueueProtocol.RecipientResults"/>. The disk
/// work runs on the thread pool, a bounded number at a time, so the actor never blocks.
/// </summary>
internal sealed class LocalDeliveryActor : ReceiveActor
{
    private readonly MaildirWriter _writer;
    private readonly Spool.Spool _spool;
    private readonly int _parallelism;
    private readonly Queue<(LocalProtocol.DeliverLocal Work, IActorRef ReplyTo)> _waiting = new();
    private int _inFlight;

    public LocalDeliveryActor(MaildirWriter writer, Spool.Spool spool, int parallelism)
    {
        _writer = writer;
        _spool = spool;
        _parallelism = parallelism;

        Receive<LocalProtocol.DeliverLocal>(d =>
        {
            _waiting.Enqueue((d, Sender));
            Pump();
        });
        Receive<Finished>(f =>
        {
            _inFlight--;
            f.ReplyTo.Tell(f.Results);
            Pump();
        });
    }

    private void Pump()
    {
        while (_inFlight < _parallelism && _waiting.TryDequeue(out var item))
        {
            _inFlight++;
            var (work, replyTo) = item;
            var envelope = work.Envelope;
            Task.Run(() =>
            {
                List<RecipientResult> results;
                try
                {
                    results = _writer.Deliver(envelope, work.Recipients, () => _spool.OpenBody(envelope.Id));
                }
                catch (Exception e)
                {
                    results = work.Recipients.Select(i => new RecipientResult(i,
                        new DeliveryOutcome.TempFailure("4.3.0", "local delivery failed: " + e.Message, null))).ToList();
                }
                return new Finished(new QueueProtocol.RecipientResults(envelope.Id, results.ToImmutableArray()), replyTo);
            }).PipeTo(Self);
        }
    }

    private sealed record Finished(QueueProtocol.RecipientResults Results, IActorRef ReplyTo);
}
