using System.Net;
using System.Net.Sockets;

namespace RelayMta.IntegrationTests.Infrastructure;

/// <summary>
/// Ports that are free on several loopback addresses at once, so fake MX hosts can listen on the SAME
/// port at 127.0.0.2, 127.0.0.3, ... (the relay connects to one configured outbound port).
/// Candidates come from below the kernel's ephemeral range (so port-0 binds and outgoing connections
/// elsewhere in the test run do not grab them), are bind-probed on every address, and are never handed
/// out twice in this process. There is still a window between the probe and the real bind: callers
/// that bind should be ready to retry with a new port on <see cref="SocketError.AddressAlreadyInUse"/>.
/// </summary>
public static class LoopbackPorts
{
    private const int Attempts = 200;
    private static readonly object Gate = new();
    private static readonly HashSet<int> HandedOut = [];
    private static readonly (int Low, int High) Range = CandidateRange();

    /// <summary>127.0.0.<paramref name="lastOctet"/> (all of 127/8 is loopback on Linux).</summary>
    public static IPAddress Address(int lastOctet) =>
        lastOctet is >= 1 and <= 254 ? new IPAddress([127, 0, 0, (byte)lastOctet]) : throw new ArgumentOutOfRangeException(nameof(lastOctet));

    /// <summary>A TCP port on which every one of <paramref name="addresses"/> can listen.</summary>
    public static int FindPortFreeOn(params IPAddress[] addresses) => Find(addresses, udpToo: false);

    /// <summary>A port free for both a TCP listener and a UDP socket on every one of <paramref name="addresses"/> (e.g. DNS).</summary>
    public static int FindTcpAndUdpPortFreeOn(params IPAddress[] addresses) => Find(addresses, udpToo: true);

    private static int Find(IPAddress[] addresses, bool udpToo)
    {
        if (addresses.Length == 0) throw new ArgumentException("give at least one address", nameof(addresses));
        foreach (var a in addresses)
            if (!IPAddress.IsLoopback(a)) throw new ArgumentException($"{a} is not a loopback address", nameof(addresses));

        for (var attempt = 0; attempt < Attempts; attempt++)
        {
            var port = Random.Shared.Next(Range.Low, Range.High);
            lock (Gate)
            {
                if (HandedOut.Contains(port)) continue;
                if (!Probe(addresses, port, udpToo)) continue;
                HandedOut.Add(port);
                return port;
            }
        }
        throw new InvalidOperationException($"no port in {Range.Low}-{Range.High} free on {string.Join(", ", addresses.Select(a => a.ToString()))} after {Attempts} attempts");
    }

    /// <summary>Binds (and listens on) the port on every address at once, then releases it all.</summary>
    private static bool Probe(IPAddress[] addresses, int port, bool udpToo)
    {
        var held = new List<Socket>();
        try
        {
            foreach (var address in addresses)
            {
                var tcp = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                held.Add(tcp);
                tcp.Bind(new IPEndPoint(address, port));
                tcp.Listen(1);
                if (!udpToo) continue;
                var udp = new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
                held.Add(udp);
                udp.Bind(new IPEndPoint(address, port));
            }
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
        finally
        {
            foreach (var s in held) s.Dispose();
        }
    }

    /// <summary>Ports below the ephemeral range (Linux: /proc/sys/net/ipv4/ip_local_port_range, usually 32768-60999).</summary>
    private static (int Low, int High) CandidateRange()
    {
        var ephemeralLow = 32768;
        try
        {
            var parts = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length >= 1 && int.TryParse(parts[0], out var low) && low > 12_000) ephemeralLow = low;
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
        return (10_000, ephemeralLow);
    }
}
