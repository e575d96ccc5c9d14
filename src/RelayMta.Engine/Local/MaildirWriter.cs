using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using RelayMta.Engine.Queue;
using RelayMta.Engine.Spool;
using RelayMta.Protocol.Mail;

namespace RelayMta.Engine.Local;

/// <summary>
/// Writes messages into Maildirs (<c>tmp/</c>, fsync, rename into <c>new/</c>, fsync the directory),
/// one copy per recipient, each starting with <c>Return-Path:</c> and <c>Delivered-To:</c>.
/// Thread-safe; the caller runs it off the actor threads because it blocks on the disk.
/// </summary>
public sealed class MaildirWriter
{
    private static readonly string Pid = Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
    private readonly string _root;
    private readonly bool _createMailboxes;
    private readonly string _host;
    private long _sequence;

    /// <summary>Creates a writer for mailboxes under <paramref name="root"/>.</summary>
    public MaildirWriter(string root, string hostname, bool createMailboxes)
    {
        _root = Path.GetFullPath(root);
        _createMailboxes = createMailboxes;
        // Maildir names must not hold '/' or ':' (the latter separates flags).
        _host = hostname.Replace("/", "\\057", StringComparison.Ordinal).Replace(":", "\\072", StringComparison.Ordinal);
    }

    /// <summary>Delivers the message to each recipient index; one result per index.</summary>
    public List<RecipientResult> Deliver(MailEnvelope envelope, IReadOnlyList<int> recipients, Func<BodyReader> openBody)
    {
        var results = new List<RecipientResult>(recipients.Count);
        BodyReader? body = null;
        var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            foreach (var index in recipients)
            {
                var address = envelope.Recipients[index];
                var (local, domain) = MailboxPaths.Split(address);
                var name = MailboxPaths.MailboxName(local);
                if (name is null || domain.Length == 0)
                {
                    results.Add(new RecipientResult(index, new DeliveryOutcome.PermFailure("5.1.3", "mailbox name not allowed", null)));
                    continue;
                }
                try
                {
                    body ??= openBody();
                    var mailbox = MailboxPaths.For(_root, DomainName.Normalize(domain), name);
                    var file = WriteOne(mailbox, envelope, address, body, buffer);
                    results.Add(new RecipientResult(index, new DeliveryOutcome.Delivered("2.0.0", "delivered to maildir as " + file, null)));
                }
                catch (DirectoryNotFoundException) when (!_createMailboxes)
                {
                    results.Add(new RecipientResult(index, new DeliveryOutcome.PermFailure("5.1.1", "mailbox does not exist", null)));
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // Disk full, permissions, ...: keep the message and try again later.
                    results.Add(new RecipientResult(index, new DeliveryOutcome.TempFailure("4.3.0", "maildir write failed: " + e.Message, null)));
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            body?.Dispose();
        }
        return results;
    }

    private string WriteOne(string mailbox, MailEnvelope envelope, string address, BodyReader body, byte[] buffer)
    {
        var tmpDir = Path.Combine(mailbox, "tmp");
        var newDir = Path.Combine(mailbox, "new");
        if (!Directory.Exists(newDir))
        {
            if (!_createMailboxes && !Directory.Exists(mailbox)) throw new DirectoryNotFoundException(mailbox);
            CreateMaildir(mailbox);
        }

        var name = UniqueName();
        var tmpPath = Path.Combine(tmpDir, name);
        var prefix = Encoding.UTF8.GetBytes(ReceivedHeader.ReturnPath(envelope.Sender) + "Delivered-To: " + address + "\r\n");
        using (var file = File.OpenHandle(tmpPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, FileOptions.None, body.Length + prefix.Length))
        {
            RandomAccess.Write(file, prefix, 0);
            long offset = prefix.Length;
            for (long read = 0; read < body.Length;)
            {
                var n = body.Read(buffer, read);
                if (n <= 0) throw new IOException("the stored body ended early");
                RandomAccess.Write(file, buffer.AsSpan(0, n), offset);
                offset += n;
                read += n;
            }
            Fsync.File(file);
        }
        File.Move(tmpPath, Path.Combine(newDir, name));
        Fsync.Directory(newDir);
        return name;
    }

    private void CreateMaildir(string mailbox)
    {
        // Create each missing level and flush its parent, so the new mailbox survives a crash.
        var missing = new Stack<string>();
        for (var dir = mailbox; !Directory.Exists(dir); dir = Path.GetDirectoryName(dir)!) missing.Push(dir);
        while (missing.Count > 0)
        {
            var dir = missing.Pop();
            Directory.CreateDirectory(dir);
            Fsync.Directory(Path.GetDirectoryName(dir)!);
        }
        foreach (var sub in new[] { "tmp", "new", "cur" })
            Directory.CreateDirectory(Path.Combine(mailbox, sub));
        Fsync.Directory(mailbox);
    }

    // Maildir naming (cr.yp.to/proto/maildir.html): time.MusecPpidQn.host
    private string UniqueName()
    {
        var now = DateTimeOffset.UtcNow;
        var micros = (Stopwatch.GetTimestamp() / (Stopwatch.Frequency / 1_000_000)) % 1_000_000;
        var n = Interlocked.Increment(ref _sequence);
        return string.Create(CultureInfo.InvariantCulture, $"{now.ToUnixTimeSeconds()}.M{micros}P{Pid}Q{n}.{_host}");
    }
}
