using System.Buffers;
using System.Collections.Immutable;
using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using RelayMta.Engine.Spool;

// Not "RelayMta.Engine.Tests.Spool": a namespace of that name would shadow RelayMta.Engine.Spool for
// every other file under RelayMta.Engine.Tests.* that writes Spool.Spool.
namespace RelayMta.Engine.Tests.Spooling;

/// <summary>
/// A fresh spool directory per test (removed on dispose), the spools opened on it (closed on
/// dispose), and helpers to build messages and read bodies back.
/// </summary>
public abstract class SpoolTestBase : IDisposable
{
    private readonly List<Spool.Spool> _open = [];
    private readonly List<string> _images = [];

    protected SpoolTestBase()
    {
        Root = Path.Combine(Path.GetTempPath(), "relaymta-spool-" + Guid.NewGuid().ToString("N")[..12]);
        System.IO.Directory.CreateDirectory(Root);
    }

    /// <summary>The spool directory of this test.</summary>
    protected string Root { get; }

    protected string JournalDir => Path.Combine(Root, "journal");

    protected string BodiesDir => Path.Combine(Root, "bodies");

    /// <summary>Opens the spool in <see cref="Root"/>; it is closed at the end of the test if still open.</summary>
    protected Spool.Spool Open(SpoolOptions? options = null)
    {
        var spool = Spool.Spool.Open(Root, options ?? new SpoolOptions(), NullLogger.Instance);
        _open.Add(spool);
        return spool;
    }

    /// <summary>Closes <paramref name="spool"/> and opens the directory again, as a restart would.</summary>
    protected Spool.Spool Reopen(Spool.Spool spool, SpoolOptions? options = null)
    {
        spool.Dispose();
        return Open(options);
    }

    /// <summary>
    /// What a crash would leave right now: a copy of the spool directory, taken while the spool is
    /// open (every acknowledged record is on disk, since acknowledgement follows the flush).
    /// </summary>
    protected string CrashImage()
    {
        var image = Root + "-crash-" + _images.Count;
        _images.Add(image);
        foreach (var dir in System.IO.Directory.GetDirectories(Root, "*", SearchOption.AllDirectories))
            System.IO.Directory.CreateDirectory(Path.Combine(image, Path.GetRelativePath(Root, dir)));
        foreach (var file in System.IO.Directory.GetFiles(Root, "*", SearchOption.AllDirectories))
        {
            if (Path.GetFileName(file) == "spool.lock") continue; // held by the running spool; a crash frees it
            var target = Path.Combine(image, Path.GetRelativePath(Root, file));
            using var from = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var to = File.Create(target);
            from.CopyTo(to);
        }
        return image;
    }

    /// <summary>Opens the spool in <paramref name="directory"/>; closed at the end of the test.</summary>
    protected Spool.Spool OpenAt(string directory, SpoolOptions? options = null)
    {
        var spool = Spool.Spool.Open(directory, options ?? new SpoolOptions(), NullLogger.Instance);
        _open.Add(spool);
        return spool;
    }

    /// <summary>Closes <paramref name="spool"/> and opens <paramref name="directory"/> again.</summary>
    protected Spool.Spool ReopenAt(Spool.Spool spool, string directory, SpoolOptions? options = null)
    {
        spool.Dispose();
        return OpenAt(directory, options);
    }

    /// <summary>Journal segment files, oldest first.</summary>
    protected string[] SegmentFiles() =>
        System.IO.Directory.GetFiles(JournalDir, "*.log").Order(StringComparer.Ordinal).ToArray();

    protected string BodyFile(QueueId id) => Path.Combine(BodiesDir, id.Value);

    /// <summary>Deterministic, position-dependent content so misplaced bytes show.</summary>
    protected static byte[] Content(int length, int seed = 1)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>An envelope using every field (millisecond time, as the journal stores it).</summary>
    protected static MailEnvelope Envelope(QueueId id, long bodyLength, int recipients = 2, string? authUser = "alice") =>
        new(id,
            DateTimeOffset.FromUnixTimeMilliseconds(1_760_000_000_123),
            "sender+tag@example.test",
            Enumerable.Range(0, recipients).Select(i => $"rcpt{i}@dést.example").ToImmutableArray(),
            "192.0.2.7",
            "client.example.test",
            "ESMTPSA",
            authUser,
            MessageFlags.EightBitDeclared | MessageFlags.NeedsSmtpUtf8,
            bodyLength);

    /// <summary>Commits <paramref name="body"/> as a new message with a fresh id.</summary>
    protected static async Task<SpoolEntry> CommitAsync(Spool.Spool spool, byte[] body, int recipients = 2)
    {
        var id = spool.Ids.Next();
        var incoming = spool.Begin(id);
        incoming.Write(body);
        return await spool.CommitAsync(incoming, Envelope(id, body.Length, recipients));
    }

    protected static byte[] ReadBody(Spool.Spool spool, QueueId id)
    {
        using var reader = spool.OpenBody(id);
        using var stream = reader.AsStream();
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        Assert.Equal(reader.Length, copy.Length);
        return copy.ToArray();
    }

    protected static void AssertSameEnvelope(MailEnvelope expected, MailEnvelope actual)
    {
        Assert.Equal(expected.Id, actual.Id);
        Assert.Equal(expected.ReceivedAt, actual.ReceivedAt);
        Assert.Equal(expected.Sender, actual.Sender);
        Assert.Equal(expected.Recipients.ToArray(), actual.Recipients.ToArray());
        Assert.Equal(expected.ClientAddress, actual.ClientAddress);
        Assert.Equal(expected.HeloName, actual.HeloName);
        Assert.Equal(expected.Protocol, actual.Protocol);
        Assert.Equal(expected.AuthUser, actual.AuthUser);
        Assert.Equal(expected.Flags, actual.Flags);
        Assert.Equal(expected.BodyLength, actual.BodyLength);
    }

    protected static void AssertSameState(MessageState expected, MessageState actual)
    {
        Assert.Equal(expected.Id, actual.Id);
        Assert.Equal(expected.Recipients.ToArray(), actual.Recipients.ToArray());
        Assert.Equal(expected.Attempts, actual.Attempts);
        Assert.Equal(expected.NextAttemptAt, actual.NextAttemptAt);
        Assert.Equal(expected.Held, actual.Held);
    }

    /// <summary>Polls <paramref name="condition"/> until it holds or <paramref name="timeout"/> passes.</summary>
    protected static async Task EventuallyAsync(Func<bool> condition, TimeSpan timeout, Func<string> describe)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > timeout) Assert.Fail("not met within " + timeout + ": " + describe());
            await Task.Delay(10);
        }
    }

    public void Dispose()
    {
        foreach (var spool in _open) spool.Dispose();
        foreach (var dir in _images.Append(Root))
        {
            try
            {
                System.IO.Directory.Delete(dir, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
        GC.SuppressFinalize(this);
    }
}
