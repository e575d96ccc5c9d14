using System.Net;

namespace RelayMta.Engine.Outbound;

/// <summary>A host to try, with its addresses in the order to try them.</summary>
public sealed record RemoteHost(string Name, int Preference, IReadOnlyList<IPAddress> Addresses);

/// <summary>Where mail for a destination goes: hosts in order, or why nowhere.</summary>
public abstract record RouteResult
{
    /// <summary>Hosts in the order to try them (MX preference, shuffled among equals).</summary>
    public sealed record Hosts(IReadOnlyList<RemoteHost> List) : RouteResult;

    /// <summary>No route now or ever: <paramref name="Permanent"/> decides bounce or retry.</summary>
    public sealed record Failure(bool Permanent, string Status, string Diagnostic) : RouteResult;
}
