using System.Collections.Immutable;
using System.Net;
using RelayMta.Engine.Queue;

namespace RelayMta.Engine.Outbound;

/// <summary>Opens outbound SMTP sessions. The real one speaks SMTP over TCP; tests may swap in their own.</summary>
public interface IOutboundTransport
{
    /// <summary>
    /// Connects to <paramref name="address"/>:<paramref name="port"/> (a host of <paramref name="host"/>),
    /// reads the greeting, says EHLO (or HELO), does STARTTLS as <paramref name="tls"/> asks and, when
    /// <paramref name="credentials"/> are given, AUTH (only ever over TLS).
    /// Throws <see cref="OutboundConnectException"/> when this host cannot be used now.
    /// </summary>
    Task<IOutboundSession> OpenAsync(RemoteHost host, IPAddress address, int port, Hosting.TlsLevel tls, Credentials? credentials, CancellationToken ct);
}

/// <summary>One open SMTP client session, owned by one delivery agent.</summary>
public interface IOutboundSession : IAsyncDisposable
{
    /// <summary>"host[ip]:port", for logs and DSNs.</summary>
    string RemoteMta { get; }

    /// <summary>The remote host's name (for DSN Remote-MTA).</summary>
    string RemoteHostName { get; }

    /// <summary>A description of the TLS in use ("TLSv1.3 TLS_AES_256_GCM_SHA384"), or null for plain text.</summary>
    string? Tls { get; }

    /// <summary>False once the connection failed or the server closed it (421): do not reuse it.</summary>
    bool Usable { get; }

    /// <summary>One transaction: MAIL, RCPT per recipient, DATA. Never throws for remote or network trouble: it is in the results.</summary>
    Task<TransactionResult> SendAsync(DeliveryJob job, CancellationToken ct);

    /// <summary>
    /// Makes the session ready for the next transaction: an RSET unless the last transaction just
    /// ended cleanly (a reply to the end of data, within the last second). False when it did not work.
    /// </summary>
    Task<bool> ResetAsync(CancellationToken ct);

    /// <summary>QUIT, best effort.</summary>
    Task QuitAsync(CancellationToken ct);
}

/// <summary>AUTH credentials for a smarthost.</summary>
public sealed record Credentials(string User, string Password)
{
    /// <inheritdoc />
    public override string ToString() => $"Credentials({User}, ****)";
}

/// <summary>What one transaction did, per recipient.</summary>
public sealed record TransactionResult(ImmutableArray<RecipientResult> Results)
{
    /// <summary>
    /// The connection failed before the server replied to MAIL FROM: nothing was handed over, so
    /// the transaction may be tried again at once on a new connection (a reused one may have been
    /// closed by the server while it sat idle).
    /// </summary>
    public bool LostBeforeMailReply { get; init; }
}

/// <summary>A host could not be used for a session: connect failed, greeting or EHLO refused, or TLS failed.</summary>
public sealed class OutboundConnectException(string status, string diagnostic, bool tlsFailed = false, Exception? inner = null)
    : Exception(diagnostic, inner)
{
    /// <summary>The RFC 3463 code to record if every host fails this way.</summary>
    public string Status { get; } = status;

    /// <summary>What went wrong, for the log and the DSN.</summary>
    public string Diagnostic { get; } = diagnostic;

    /// <summary>The TLS handshake failed after STARTTLS: the host may be tried again in plain text.</summary>
    public bool TlsFailed { get; } = tlsFailed;

    /// <summary>True when the host answered with a 5xx greeting or EHLO/HELO (it will not take mail from us).</summary>
    public bool Refused { get; init; }
}
