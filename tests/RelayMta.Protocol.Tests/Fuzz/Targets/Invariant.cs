using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace RelayMta.Protocol.Fuzzing;

/// <summary>
/// An invariant of a fuzz target did not hold. The parsers under test document no exceptions, so
/// any other exception escaping a target is a finding too.
/// </summary>
public sealed class FuzzFindingException(string message) : Exception(message);

/// <summary>Checks for the fuzz targets: plain code, no test framework, so SharpFuzz and xunit share it.</summary>
internal static class Invariant
{
    public static void That([DoesNotReturnIf(false)] bool condition, string message)
    {
        if (!condition) throw new FuzzFindingException(message);
    }

    [DoesNotReturn]
    public static void Fail(string message) => throw new FuzzFindingException(message);

    public static void Same(string expected, string actual, string how)
    {
        if (!string.Equals(expected, actual, StringComparison.Ordinal))
            Fail($"{how}: results differ\n expected: {Clip(expected)}\n   actual: {Clip(actual)}");
    }

    /// <summary>
    /// Where <paramref name="part"/> lies in <paramref name="basis"/>, as "[start,end)"; "empty" for
    /// an empty span (which may point anywhere). A non-empty span outside the basis is a finding.
    /// </summary>
    public static string Where(ReadOnlySpan<byte> basis, ReadOnlySpan<byte> part, string what)
    {
        if (part.IsEmpty) return "empty";
        if (!basis.Overlaps(part, out var offset) || offset < 0 || offset + part.Length > basis.Length)
            Fail($"{what} points outside the input it was parsed from");
        return $"[{offset},{offset + part.Length})";
    }

    /// <summary>Bytes as readable text: printable ASCII as is, everything else escaped.</summary>
    public static string Show(ReadOnlySpan<byte> bytes)
    {
        var sb = new StringBuilder(bytes.Length + 8);
        foreach (var b in bytes)
        {
            switch (b)
            {
                case (byte)'\r': sb.Append("\\r"); break;
                case (byte)'\n': sb.Append("\\n"); break;
                case (byte)'\\': sb.Append("\\\\"); break;
                case < 0x20 or >= 0x7f: sb.Append("\\x").Append(b.ToString("x2")); break;
                default: sb.Append((char)b); break;
            }
        }
        return sb.ToString();
    }

    public static string Show(string text)
    {
        var sb = new StringBuilder(text.Length + 8);
        foreach (var c in text)
        {
            if (c is >= ' ' and < (char)0x7f && c != '\\') sb.Append(c);
            else sb.Append("\\u").Append(((int)c).ToString("x4"));
        }
        return sb.ToString();
    }

    private static string Clip(string s) => s.Length <= 2000 ? s : s[..2000] + "...";

    public static bool HasControl(ReadOnlySpan<byte> bytes)
    {
        foreach (var b in bytes)
            if (b < 0x20 || b == 0x7f) return true;
        return false;
    }

    public static bool HasEightBit(ReadOnlySpan<byte> bytes) => bytes.IndexOfAnyInRange((byte)0x80, (byte)0xff) >= 0;

    public static byte At(ReadOnlySpan<byte> data, int index) => index < data.Length ? data[index] : (byte)0;

    public static ReadOnlySpan<byte> After(ReadOnlySpan<byte> data, int header) => data.Length > header ? data[header..] : default;
}
