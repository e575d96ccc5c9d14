using System.Net;
using System.Net.Sockets;

namespace RelayMta.Engine.Inbound;

/// <summary>What a listener is for.</summary>
public enum ListenerKind
{
    /// <summary>Plain SMTP (port 25 style): STARTTLS offered when there is a certificate.</summary>
    Smtp,
    /// <summary>Submission (RFC 6409, port 587 style): AUTH required before MAIL.</summary>
    Submission,
    /// <summary>Implicit TLS (RFC 8314, port 465 style): TLS from the first byte.</summary>
    ImplicitTls,
}

/// <summary>A bound, listening socket and its kind.</summary>
public sealed record BoundListener(Socket Socket, ListenerKind Kind)
{
    /// <summary>Where it listens.</summary>
    public IPEndPoint Endpoint { get; } = (IPEndPoint)Socket.LocalEndPoint!;
}
