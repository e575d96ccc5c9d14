using System.Collections.Immutable;
using System.Text;
using Akka.Actor;
using Akka.TestKit.Xunit2;
using Microsoft.Extensions.Logging.Abstractions;
using RelayMta.Engine.Local;
using RelayMta.Engine.Queue;
using RelayMta.Engine.Spool;

namespace RelayMta.Engine.Tests.Local;

/// <summary>Local delivery writes real Maildirs and answers with per-recipient results.</summary>
public sealed class LocalDeliveryActorSpecs : TestKit, IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "relaymta-ld-" + Guid.NewGuid().ToString("N")[..10]);
    private readonly Spool.Spool _spool;

    public LocalDeliveryActorSpecs() =>
        _spool = Spool.Spool.Open(Path.Combine(_dir, "spool"), new SpoolOptions(), NullLogger.Instance);

    private string MailRoot => Path.Combine(_dir, "mail");

    private async Task<SpoolEntry> CommitAsync(string body, params string[] recipients)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        var envelope = new MailEnvelope(_spool.Ids.Next(), DateTimeOffset.UtcNow, "alice@sender.test", recipients.ToImmutableArray(),
            "127.0.0.1", "client.test", "ESMTP", null, MessageFlags.None, bytes.Length);
        return await _spool.CommitAsync(envelope, bytes);
    }

    [Fact]
    public async Task Should_write_one_maildir_file_per_recipient_with_return_path_and_delivered_to()
    {
        var writer = new MaildirWriter(MailRoot, "mx.test", createMailboxes: true);
        var actor = Sys.ActorOf(Props.Create(() => new LocalDeliveryActor(writer, _spool, 2)));
        var entry = await CommitAsync("Subject: hi\r\n\r\nbody\r\n", "bob@example.test", "carol@example.test");

        actor.Tell(new LocalProtocol.DeliverLocal(entry.Envelope, [0, 1]));
        var results = ExpectMsg<QueueProtocol.RecipientResults>();
        Assert.Equal(entry.Id, results.Id);
        Assert.All(results.Results, r => Assert.IsType<DeliveryOutcome.Delivered>(r.Outcome));

        foreach (var user in new[] { "bob", "carol" })
        {
            var file = Assert.Single(Directory.GetFiles(Path.Combine(MailRoot, "example.test", user, "new")));
            Assert.Equal($"Return-Path: <alice@sender.test>\r\nDelivered-To: {user}@example.test\r\nSubject: hi\r\n\r\nbody\r\n", File.ReadAllText(file));
            Assert.Empty(Directory.GetFiles(Path.Combine(MailRoot, "example.test", user, "tmp")));
            Assert.True(Directory.Exists(Path.Combine(MailRoot, "example.test", user, "cur")));
        }
    }

    [Fact]
    public async Task Should_report_a_missing_mailbox_as_permanent_when_mailboxes_are_not_created()
    {
        var writer = new MaildirWriter(MailRoot, "mx.test", createMailboxes: false);
        var actor = Sys.ActorOf(Props.Create(() => new LocalDeliveryActor(writer, _spool, 2)));
        var entry = await CommitAsync("x\r\n", "ghost@example.test");
        actor.Tell(new LocalProtocol.DeliverLocal(entry.Envelope, [0]));
        var failure = Assert.IsType<DeliveryOutcome.PermFailure>(ExpectMsg<QueueProtocol.RecipientResults>().Results.Single().Outcome);
        Assert.Equal("5.1.1", failure.Status);
    }

    [Fact]
    public async Task Should_report_a_disk_error_as_temporary()
    {
        File.WriteAllText(Path.Combine(_dir, "blocked"), "a file where a directory should be");
        var writer = new MaildirWriter(Path.Combine(_dir, "blocked"), "mx.test", createMailboxes: true);
        var actor = Sys.ActorOf(Props.Create(() => new LocalDeliveryActor(writer, _spool, 2)));
        var entry = await CommitAsync("x\r\n", "bob@example.test");
        actor.Tell(new LocalProtocol.DeliverLocal(entry.Envelope, [0]));
        var failure = Assert.IsType<DeliveryOutcome.TempFailure>(ExpectMsg<QueueProtocol.RecipientResults>().Results.Single().Outcome);
        Assert.StartsWith("4.", failure.Status);
    }

    public new void Dispose()
    {
        Shutdown();
        _spool.Dispose();
        Directory.Delete(_dir, recursive: true);
        base.Dispose();
    }
}
