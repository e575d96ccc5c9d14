using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace RelayMta.Engine.Spool;

/// <summary>
/// Flushes to stable storage. On Linux: <c>fdatasync(2)</c> for files and <c>fsync(2)</c> on an
/// O_DIRECTORY descriptor for directories, so a rename or a new file survives a power cut.
/// Elsewhere it falls back to what .NET offers (directories cannot be flushed there).
/// </summary>
internal static partial class Fsync
{
    private const int ORdOnly = 0;
    private const int ODirectory = 0x10000; // Linux x86-64 and arm64
    private static readonly bool IsLinux = OperatingSystem.IsLinux();

    /// <summary>Flushes a file's data (and the metadata needed to read it back).</summary>
    public static void File(SafeFileHandle handle)
    {
        if (IsLinux)
        {
            if (fdatasync((int)handle.DangerousGetHandle()) != 0)
                throw new IOException($"fdatasync failed: errno {Marshal.GetLastPInvokeError()}");
            return;
        }
        using var fs = new FileStream(handle, FileAccess.ReadWrite);
        fs.Flush(flushToDisk: true);
    }

    /// <summary>Flushes a directory, making entries created, renamed or removed in it durable.</summary>
    public static void Directory(string path)
    {
        if (!IsLinux) return;
        var fd = open(path, ORdOnly | ODirectory);
        if (fd < 0) throw new IOException($"cannot open directory {path} to fsync it: errno {Marshal.GetLastPInvokeError()}");
        try
        {
            if (fsync(fd) != 0) throw new IOException($"fsync of directory {path} failed: errno {Marshal.GetLastPInvokeError()}");
        }
        finally
        {
            close(fd);
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fdatasync(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fsync(int fd);

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);
}
