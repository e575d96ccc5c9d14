using System.Buffers;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using RelayMta.Engine.Spool;

namespace RelayMta.Engine.Security;

/// <summary>
/// The SMTP AUTH users: names and PBKDF2-SHA256 password hashes read from a users file, one
/// <c>name:hash</c> per line. A loaded store never changes, so sessions may call
/// <see cref="Verify"/> concurrently; a reload builds a new one. The static methods edit the file
/// (atomically, under a lock) for the <c>relaymta user</c> commands.
/// </summary>
public sealed class UserStore
{
    /// <summary>PBKDF2-HMAC-SHA256 iterations for new hashes (OWASP 2023 recommendation).</summary>
    internal const int DefaultIterations = 310_000;

    /// <summary>Refused above this when loading: one AUTH would take seconds of CPU.</summary>
    internal const int MaxIterations = 10_000_000;

    internal const int MaxNameLength = 256;

    private const string Scheme = "pbkdf2-sha256";
    private const int SaltBytes = 16;
    private const int MinSaltBytes = 16;
    private const int MaxSaltBytes = 64;
    private const int HashBytes = 32;
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private static readonly SearchValues<char> NameChars =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._@+-");

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private static readonly TimeSpan LockWait = TimeSpan.FromSeconds(10);

    [ThreadStatic]
    private static long t_iterationsDerived;

    /// <summary>PBKDF2 iterations run on the calling thread so far (lets tests see the work done without timing it).</summary>
    internal static long IterationsDerivedOnThisThread => t_iterationsDerived;

    private readonly Dictionary<string, Entry> _entries;
    private readonly Entry _dummy;

    private UserStore(IReadOnlyList<(string Name, Entry Entry)> users)
    {
        _entries = new Dictionary<string, Entry>(users.Count, StringComparer.Ordinal);
        foreach (var (name, entry) in users) _entries.Add(name, entry);
        Names = users.Select(u => u.Name).ToList().AsReadOnly();

        // Unknown users are checked against this, so they cost what a typical user costs: the
        // iteration count most users have (a raised count may be rolled out gradually).
        var iterations = users.Count == 0
            ? DefaultIterations
            : users.GroupBy(u => u.Entry.Iterations).MaxBy(g => g.Count())!.Key;
        _dummy = new Entry(iterations, RandomNumberGenerator.GetBytes(SaltBytes), RandomNumberGenerator.GetBytes(HashBytes));
    }

    /// <summary>A store with no users: every <see cref="Verify"/> fails (after the same work).</summary>
    public static UserStore Empty { get; } = new([]);

    /// <summary>Number of users.</summary>
    public int Count => _entries.Count;

    /// <summary>The user names, in file order.</summary>
    public IReadOnlyCollection<string> Names { get; }

    /// <summary>
    /// Reads a users file. Throws <see cref="UserStoreException"/> naming the file and the line
    /// when a line is malformed (bad name, duplicate, unknown scheme, bad hash), and
    /// <see cref="IOException"/> when the file cannot be read.
    /// </summary>
    public static UserStore Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var lines = Parse(path, ReadFile(path));
        return new UserStore(lines.Where(l => l.Name is not null).Select(l => (l.Name!, l.Entry)).ToList());
    }

    /// <summary>
    /// True when <paramref name="user"/> exists (case-sensitive) and <paramref name="password"/> is
    /// theirs. An unknown user costs the same PBKDF2 work as a known one, and hashes are compared
    /// in constant time, so the timing tells neither which names exist nor how close a guess was.
    /// </summary>
    public bool Verify(string user, ReadOnlySpan<char> password)
    {
        ArgumentNullException.ThrowIfNull(user);
        var known = _entries.TryGetValue(user, out var entry);
        if (!known) entry = _dummy;

        Span<byte> actual = stackalloc byte[HashBytes];
        Derive(password, entry.Salt, entry.Iterations, actual);
        var equal = CryptographicOperations.FixedTimeEquals(actual, entry.Hash);
        CryptographicOperations.ZeroMemory(actual);
        return known & equal;
    }

    /// <summary>
    /// A new hash of <paramref name="password"/>:
    /// <c>$pbkdf2-sha256$310000$&lt;base64 16-byte salt&gt;$&lt;base64 32-byte hash&gt;</c>,
    /// with a fresh random salt each time.
    /// </summary>
    public static string HashPassword(ReadOnlySpan<char> password)
    {
        Span<byte> salt = stackalloc byte[SaltBytes];
        RandomNumberGenerator.Fill(salt);
        Span<byte> hash = stackalloc byte[HashBytes];
        Derive(password, salt, DefaultIterations, hash);
        var text = string.Create(CultureInfo.InvariantCulture,
            $"${Scheme}${DefaultIterations}${Convert.ToBase64String(salt)}${Convert.ToBase64String(hash)}");
        CryptographicOperations.ZeroMemory(hash);
        return text;
    }

    /// <summary>
    /// Sets <paramref name="user"/>'s password in the file at <paramref name="path"/>: replaces
    /// their line in place, or appends one; creates the file (mode 0600) when it is missing.
    /// Comments, blank lines and other users are kept. Throws <see cref="ArgumentException"/> for
    /// an invalid name or an empty password, <see cref="UserStoreException"/> when the existing
    /// file is malformed (it is left as it is), <see cref="IOException"/> when it cannot be
    /// read or written.
    /// </summary>
    public static void AddOrUpdate(string path, string user, ReadOnlySpan<char> password)
    {
        ArgumentNullException.ThrowIfNull(path);
        CheckName(user);
        if (password.IsEmpty) throw new ArgumentException("the password is empty", nameof(password));

        var line = user + ":" + HashPassword(password); // the slow part, before taking the lock
        Edit(path, createIfMissing: true, lines =>
        {
            var at = lines.FindIndex(l => l.Name == user);
            var updated = new Line(line, user, default);
            if (at >= 0) lines[at] = updated;
            else lines.Add(updated);
            return true;
        });
    }

    /// <summary>
    /// Removes <paramref name="user"/>'s line from the file; false (and the file untouched) when
    /// there is no such user. Throws <see cref="ArgumentException"/> for an invalid name,
    /// <see cref="UserStoreException"/> when the file is malformed, <see cref="IOException"/>
    /// (<see cref="FileNotFoundException"/> included) when it cannot be read or written.
    /// </summary>
    public static bool Remove(string path, string user)
    {
        ArgumentNullException.ThrowIfNull(path);
        CheckName(user);
        return Edit(path, createIfMissing: false, lines => lines.RemoveAll(l => l.Name == user) > 0);
    }

    /// <summary>1-256 characters of A-Z a-z 0-9 . _ @ + - (so never a ':' or a space).</summary>
    internal static bool IsValidName(string? name) =>
        name is { Length: >= 1 and <= MaxNameLength } && !name.AsSpan().ContainsAnyExcept(NameChars);

    private static void CheckName(string user)
    {
        ArgumentNullException.ThrowIfNull(user);
        if (!IsValidName(user))
            throw new ArgumentException("a user name is 1-256 characters of A-Z a-z 0-9 . _ @ + -", nameof(user));
    }

    // Passwords are hashed as UTF-8 (what AUTH PLAIN carries). Encoding.UTF8 replaces a lone
    // surrogate rather than throwing as the char overload of Pbkdf2 does: Verify never throws on
    // what a client sends.
    private static void Derive(ReadOnlySpan<char> password, ReadOnlySpan<byte> salt, int iterations, Span<byte> hash)
    {
        var size = Encoding.UTF8.GetMaxByteCount(password.Length);
        var rented = size <= 1024 ? null : ArrayPool<byte>.Shared.Rent(size);
        Span<byte> buffer = rented is null ? stackalloc byte[1024] : rented;
        var length = Encoding.UTF8.GetBytes(password, buffer);
        try
        {
            Rfc2898DeriveBytes.Pbkdf2(buffer[..length], salt, hash, iterations, HashAlgorithmName.SHA256);
            t_iterationsDerived += iterations;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(buffer[..length]);
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private static byte[] ReadFile(string path)
    {
        try
        {
            return File.ReadAllBytes(path);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new IOException(e.Message, e); // "unreadable" is one kind of error for callers
        }
    }

    private static List<Line> Parse(string path, ReadOnlySpan<byte> bytes)
    {
        if (bytes.StartsWith(Encoding.UTF8.Preamble)) bytes = bytes[Encoding.UTF8.Preamble.Length..];
        var lines = new List<Line>();
        var firstSeen = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var number = 1; !bytes.IsEmpty; number++)
        {
            var end = bytes.IndexOf((byte)'\n');
            var raw = end < 0 ? bytes : bytes[..end];
            bytes = end < 0 ? default : bytes[(end + 1)..];

            string text;
            try
            {
                text = StrictUtf8.GetString(raw).TrimEnd('\r');
            }
            catch (DecoderFallbackException)
            {
                throw Malformed(path, number, "not valid UTF-8");
            }

            var line = ParseLine(path, number, text);
            if (line.Name is not null && !firstSeen.TryAdd(line.Name, number))
                throw Malformed(path, number, $"user '{line.Name}' is already on line {firstSeen[line.Name]}");
            lines.Add(line);
        }
        return lines;
    }

    // Messages never quote the hash field: a line may hold a pasted password by mistake.
    private static Line ParseLine(string path, int number, string text)
    {
        var content = text.AsSpan().Trim();
        if (content.IsEmpty || content[0] == '#') return new Line(text, null, default);

        var colon = content.IndexOf(':');
        if (colon < 0) throw Malformed(path, number, "expected NAME:HASH");
        var name = content[..colon].ToString();
        if (!IsValidName(name))
            throw Malformed(path, number, "a user name is 1-256 characters of A-Z a-z 0-9 . _ @ + -");
        return new Line(text, name, ParseHash(path, number, content[(colon + 1)..]));
    }

    private static Entry ParseHash(string path, int number, ReadOnlySpan<char> hash)
    {
        // $pbkdf2-sha256$<iterations>$<salt>$<hash>
        Span<Range> parts = stackalloc Range[6];
        var count = hash.Split(parts, '$');
        if (count < 3 || !hash[parts[0]].IsEmpty)
            throw Malformed(path, number, $"expected a password hash (${Scheme}$...)");
        var scheme = hash[parts[1]];
        if (!scheme.SequenceEqual(Scheme))
        {
            var shown = scheme.Length is > 0 and <= 32 && !scheme.ContainsAnyExcept(NameChars) ? $" '{scheme}'" : "";
            throw Malformed(path, number, $"unknown password scheme{shown} (expected {Scheme})");
        }
        if (count != 5) throw Malformed(path, number, $"malformed {Scheme} hash: expected ${Scheme}$ITERATIONS$SALT$HASH");

        if (!int.TryParse(hash[parts[2]], NumberStyles.None, CultureInfo.InvariantCulture, out var iterations)
            || iterations is < 1 or > MaxIterations)
            throw Malformed(path, number, $"malformed {Scheme} hash: the iteration count must be a number from 1 to {MaxIterations}");

        var salt = new byte[MaxSaltBytes];
        if (!Convert.TryFromBase64Chars(hash[parts[3]], salt, out var saltLength) || saltLength < MinSaltBytes)
            throw Malformed(path, number, $"malformed {Scheme} hash: the salt must be base64 of {MinSaltBytes} to {MaxSaltBytes} bytes");

        var digest = new byte[HashBytes];
        if (!Convert.TryFromBase64Chars(hash[parts[4]], digest, out var digestLength) || digestLength != HashBytes)
            throw Malformed(path, number, $"malformed {Scheme} hash: the hash must be base64 of {HashBytes} bytes");

        return new Entry(iterations, salt[..saltLength], digest);
    }

    private static UserStoreException Malformed(string path, int number, string problem) =>
        new($"{path}:{number}: {problem}");

    /// <summary>
    /// Read, change, write back. <c>path.lock</c> (kept, never deleted: deleting a lock file races)
    /// serialises concurrent edits so none is lost; the new content goes to <c>path.tmp</c>, is
    /// fsynced, renamed over the file, and the directory is fsynced, so a reader (or a crash) sees
    /// the old file or the new one, never a mix.
    /// </summary>
    private static bool Edit(string path, bool createIfMissing, Func<List<Line>, bool> change)
    {
        var full = Path.GetFullPath(path);
        if (!createIfMissing && !File.Exists(full)) throw new FileNotFoundException($"Could not find file '{full}'.", full);
        try
        {
            using var held = Lock(full + ".lock");
            byte[] bytes;
            try
            {
                bytes = File.ReadAllBytes(full);
            }
            catch (FileNotFoundException) when (createIfMissing)
            {
                bytes = [];
            }

            var lines = Parse(path, bytes);
            if (!change(lines)) return false;
            WriteAtomically(full, lines);
            return true;
        }
        catch (UnauthorizedAccessException e)
        {
            throw new IOException(e.Message, e);
        }
    }

    // FileShare.None takes flock(LOCK_EX | LOCK_NB) on Unix (per open file, so it also excludes
    // other threads of this process); it does not wait, hence the polling.
    private static FileStream Lock(string lockPath)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return new FileStream(lockPath, CreateOptions(FileMode.OpenOrCreate, FileAccess.ReadWrite));
            }
            catch (IOException e) when (e is not (FileNotFoundException or DirectoryNotFoundException or PathTooLongException)
                                        && waited.Elapsed < LockWait)
            {
                Thread.Sleep(25);
            }
        }
    }

    private static void WriteAtomically(string path, List<Line> lines)
    {
        var tmp = path + ".tmp";
        var text = new StringBuilder();
        foreach (var line in lines) text.Append(line.Text).Append('\n');
        var bytes = StrictUtf8.GetBytes(text.ToString());

        File.Delete(tmp); // left by a crash; CreateNew below then never follows a symbolic link
        try
        {
            using (var stream = new FileStream(tmp, CreateOptions(FileMode.CreateNew, FileAccess.Write)))
            {
                if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(stream.SafeFileHandle, OwnerOnly); // whatever the umask
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }
            File.Move(tmp, path, overwrite: true); // rename(2)
        }
        catch
        {
            try
            {
                File.Delete(tmp);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // the first error is the one to report
            }
            throw;
        }
        Fsync.Directory(Path.GetDirectoryName(path)!);
    }

    private static FileStreamOptions CreateOptions(FileMode mode, FileAccess access)
    {
        var options = new FileStreamOptions { Mode = mode, Access = access, Share = FileShare.None };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = OwnerOnly; // password hashes are secrets
        return options;
    }

    private readonly record struct Entry(int Iterations, byte[] Salt, byte[] Hash);

    /// <summary>A line of the file as written; <see cref="Name"/> is null for a comment or a blank line.</summary>
    private readonly record struct Line(string Text, string? Name, Entry Entry);
}

/// <summary>A users file that cannot be used; the message names the file and the line.</summary>
public sealed class UserStoreException(string message) : Exception(message);
