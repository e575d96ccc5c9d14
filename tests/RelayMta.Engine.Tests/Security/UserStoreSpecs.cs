using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using RelayMta.Engine.Security;

namespace RelayMta.Engine.Tests.Security;

/// <summary>
/// Hashes computed once for the whole class: each costs 310,000 PBKDF2 iterations (~0.1-0.3 s).
/// </summary>
public sealed class UserStoreHashes
{
    public const string AlicePassword = "correct horse battery staple";

    public string Alice { get; } = UserStore.HashPassword(AlicePassword);

    public string AliceAgain { get; } = UserStore.HashPassword(AlicePassword);
}

public sealed partial class UserStoreSpecs : IClassFixture<UserStoreHashes>, IDisposable
{
    /// <summary>Well-formed but matching no password: for tests of parsing and file handling.</summary>
    private static readonly string FakeHash =
        $"$pbkdf2-sha256$310000${Convert.ToBase64String(new byte[16])}${Convert.ToBase64String(new byte[32])}";

    private readonly UserStoreHashes _hashes;
    private readonly string _dir;

    public UserStoreSpecs(UserStoreHashes hashes)
    {
        _hashes = hashes;
        _dir = Path.Combine(Path.GetTempPath(), "relaymta-users-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(_dir);
    }

    private string UsersFile => Path.Combine(_dir, "users.db");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Should_hash_as_pbkdf2_sha256_with_310000_iterations_a_16_byte_salt_and_a_32_byte_hash()
    {
        var m = HashFormat().Match(_hashes.Alice);
        Assert.True(m.Success, _hashes.Alice);
        var salt = Convert.FromBase64String(m.Groups["salt"].Value);
        var hash = Convert.FromBase64String(m.Groups["hash"].Value);
        Assert.Equal(16, salt.Length);
        Assert.Equal(32, hash.Length);
        // Plain PBKDF2-HMAC-SHA256 of the UTF-8 password: another tool can check it.
        var expected = Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(UserStoreHashes.AlicePassword), salt, 310_000, HashAlgorithmName.SHA256, 32);
        Assert.Equal(expected, hash);
    }

    [Fact]
    public void Should_salt_each_hash_differently()
    {
        var first = HashFormat().Match(_hashes.Alice).Groups["salt"].Value;
        var second = HashFormat().Match(_hashes.AliceAgain).Groups["salt"].Value;
        Assert.NotEqual(first, second);
        Assert.NotEqual(_hashes.Alice, _hashes.AliceAgain);
    }

    [Fact]
    public void Should_verify_the_right_password_and_refuse_a_wrong_one()
    {
        var store = Write($"alice:{_hashes.Alice}\nbob:{FakeHash}\n");
        Assert.True(store.Verify("alice", UserStoreHashes.AlicePassword));
        Assert.False(store.Verify("alice", UserStoreHashes.AlicePassword + " "));
        Assert.False(store.Verify("Alice", UserStoreHashes.AlicePassword)); // names are case-sensitive
    }

    [Fact]
    public void Should_refuse_an_unknown_user_after_the_same_work_as_a_known_one()
    {
        var store = Write($"alice:{_hashes.Alice}\n");
        Assert.False(store.Verify("mallory", UserStoreHashes.AlicePassword));
        Assert.False(UserStore.Empty.Verify("alice", UserStoreHashes.AlicePassword));

        // The work, counted rather than timed: an unknown name runs as many PBKDF2 iterations as a
        // known one, for a store with users and for the empty one.
        Assert.Equal(Work(() => store.Verify("alice", "wrong")), Work(() => store.Verify("mallory", "wrong")));
        Assert.Equal(Work(() => store.Verify("alice", "wrong")), Work(() => UserStore.Empty.Verify("alice", "wrong")));
        Assert.Equal(310_000, Work(() => store.Verify("mallory", "wrong")));
    }

    private static long Work(Func<bool> verify)
    {
        var before = UserStore.IterationsDerivedOnThisThread;
        Assert.False(verify());
        return UserStore.IterationsDerivedOnThisThread - before;
    }

    [Fact]
    public void Should_read_the_iteration_count_from_each_hash()
    {
        var salt = RandomNumberGenerator.GetBytes(16);
        var hash = Rfc2898DeriveBytes.Pbkdf2("open sesame"u8.ToArray(), salt, 1000, HashAlgorithmName.SHA256, 32);
        var store = Write($"old:$pbkdf2-sha256$1000${Convert.ToBase64String(salt)}${Convert.ToBase64String(hash)}\n");
        Assert.True(store.Verify("old", "open sesame"));
    }

    [Fact]
    public void Should_list_names_in_file_order_skipping_comments_and_blank_lines()
    {
        var store = Write($"# users\n\nzoe:{FakeHash}\r\n  # indented comment\nalice@example.org:{FakeHash}\n\t\na.b-c_d+e:{FakeHash}");
        Assert.Equal(3, store.Count);
        Assert.Equal(["zoe", "alice@example.org", "a.b-c_d+e"], store.Names);
        Assert.Empty(UserStore.Empty.Names);
    }

    public static TheoryData<string, int, string> MalformedFiles => new()
    {
        { "alice\n", 1, "expected NAME:HASH" },
        { $"# ok\nalice:{FakeHash}\nbob smith:{FakeHash}\n", 3, "user name" },
        { $":{FakeHash}\n", 1, "user name" },
        { $"{new string('a', 257)}:{FakeHash}\n", 1, "user name" },
        { $"\nalice:{FakeHash}\nalice:{FakeHash}\n", 3, "'alice' is already on line 2" },
        { "alice:$bcrypt$12$abc\n", 1, "unknown password scheme 'bcrypt'" },
        { "alice:$2y$10$abcdefghijklmnopqrstuv\n", 1, "unknown password scheme '2y'" },
        { "alice:hunter2\n", 1, "expected a password hash" },
        { "alice:$pbkdf2-sha256$310000$c2FsdA==\n", 1, "malformed pbkdf2-sha256 hash" },
        { $"alice:$pbkdf2-sha256$lots${Convert.ToBase64String(new byte[16])}${Convert.ToBase64String(new byte[32])}\n", 1, "iteration count" },
        { $"alice:$pbkdf2-sha256$0${Convert.ToBase64String(new byte[16])}${Convert.ToBase64String(new byte[32])}\n", 1, "iteration count" },
        { $"alice:$pbkdf2-sha256$310000$!!!!${Convert.ToBase64String(new byte[32])}\n", 1, "salt" },
        { $"alice:$pbkdf2-sha256$310000${Convert.ToBase64String(new byte[8])}${Convert.ToBase64String(new byte[32])}\n", 1, "salt" },
        { $"alice:$pbkdf2-sha256$310000${Convert.ToBase64String(new byte[16])}${Convert.ToBase64String(new byte[20])}\n", 1, "the hash must be" },
        { $"alice:{FakeHash}$extra\n", 1, "malformed pbkdf2-sha256 hash" },
    };

    [Theory]
    [MemberData(nameof(MalformedFiles))]
    public void Should_name_the_file_and_the_line_of_a_malformed_entry(string content, int line, string problem)
    {
        File.WriteAllText(UsersFile, content);
        var e = Assert.Throws<UserStoreException>(() => UserStore.Load(UsersFile));
        Assert.StartsWith($"{UsersFile}:{line}: ", e.Message);
        Assert.Contains(problem, e.Message);
    }

    [Fact]
    public void Should_never_quote_the_hash_field_in_an_error()
    {
        File.WriteAllText(UsersFile, "alice:MyPlainPassword\n");
        var e = Assert.Throws<UserStoreException>(() => UserStore.Load(UsersFile));
        Assert.DoesNotContain("MyPlainPassword", e.Message);
    }

    [Fact]
    public void Should_refuse_a_file_that_is_not_utf8()
    {
        File.WriteAllBytes(UsersFile, [.. Encoding.UTF8.GetBytes("# fine\n# caf"), 0xE9, (byte)'\n']);
        var e = Assert.Throws<UserStoreException>(() => UserStore.Load(UsersFile));
        Assert.Equal($"{UsersFile}:2: not valid UTF-8", e.Message);
    }

    [Fact]
    public void Should_throw_an_io_exception_for_a_missing_file()
    {
        Assert.ThrowsAny<IOException>(() => UserStore.Load(Path.Combine(_dir, "missing.db")));
        Assert.ThrowsAny<IOException>(() => UserStore.Remove(Path.Combine(_dir, "missing.db"), "alice"));
        Assert.False(File.Exists(Path.Combine(_dir, "missing.db")));
    }

    [Fact]
    public void Should_keep_comments_blank_lines_and_other_users_when_rewriting()
    {
        File.WriteAllText(UsersFile, $"# SMTP AUTH users\n\nalice:{FakeHash}\n# bob is the backup MX\nbob:{FakeHash}\ncarol:{FakeHash}\n");

        UserStore.AddOrUpdate(UsersFile, "alice", "new password");
        Assert.True(UserStore.Remove(UsersFile, "bob"));

        var lines = File.ReadAllLines(UsersFile);
        Assert.Equal("# SMTP AUTH users", lines[0]);
        Assert.Equal("", lines[1]);
        Assert.StartsWith("alice:$pbkdf2-sha256$310000$", lines[2]); // replaced where it was
        Assert.Equal("# bob is the backup MX", lines[3]);
        Assert.Equal($"carol:{FakeHash}", lines[4]);
        Assert.Equal(5, lines.Length);
        Assert.True(UserStore.Load(UsersFile).Verify("alice", "new password"));
    }

    [Fact]
    public void Should_create_a_missing_file_and_append_new_users()
    {
        UserStore.AddOrUpdate(UsersFile, "alice", UserStoreHashes.AlicePassword);
        File.AppendAllText(UsersFile, "# added by hand\n");
        UserStore.AddOrUpdate(UsersFile, "bob", "another");

        var store = UserStore.Load(UsersFile);
        Assert.Equal(["alice", "bob"], store.Names);
        Assert.Equal("# added by hand", File.ReadAllLines(UsersFile)[1]);
    }

    [Fact]
    public void Should_write_the_file_owner_only_and_leave_no_temporary_file()
    {
        if (OperatingSystem.IsWindows()) return;
        File.WriteAllText(UsersFile, $"bob:{FakeHash}\n");
        File.SetUnixFileMode(UsersFile, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        File.WriteAllText(UsersFile + ".tmp", "left by a crash"); // replaced, then renamed away

        UserStore.AddOrUpdate(UsersFile, "alice", "s3cret");

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(UsersFile));
        Assert.False(File.Exists(UsersFile + ".tmp"));
        Assert.True(UserStore.Remove(UsersFile, "bob"));
        Assert.False(File.Exists(UsersFile + ".tmp"));
        Assert.Equal(["users.db", "users.db.lock"], Directory.GetFiles(_dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(UsersFile));
    }

    [Fact]
    public void Should_create_a_new_file_owner_only()
    {
        if (OperatingSystem.IsWindows()) return;
        UserStore.AddOrUpdate(UsersFile, "alice", "s3cret");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(UsersFile));
    }

    [Theory]
    [InlineData("a:b")]
    [InlineData("")]
    [InlineData("bob smith")]
    [InlineData("café")]
    [InlineData("alice\n")]
    public void Should_refuse_an_invalid_name_and_leave_the_file_alone(string name)
    {
        Assert.Throws<ArgumentException>(() => UserStore.AddOrUpdate(UsersFile, name, "s3cret"));
        Assert.False(File.Exists(UsersFile));
        File.WriteAllText(UsersFile, $"alice:{FakeHash}\n");
        Assert.Throws<ArgumentException>(() => UserStore.Remove(UsersFile, name));
        Assert.Equal($"alice:{FakeHash}\n", File.ReadAllText(UsersFile));
    }

    [Fact]
    public void Should_accept_names_of_1_to_256_allowed_characters()
    {
        Assert.True(UserStore.IsValidName("a"));
        Assert.True(UserStore.IsValidName("Alice.Smith_1+relay@example-mail.org"));
        Assert.True(UserStore.IsValidName(new string('x', 256)));
        Assert.False(UserStore.IsValidName(new string('x', 257)));
    }

    [Fact]
    public void Should_refuse_an_empty_password()
    {
        Assert.Throws<ArgumentException>(() => UserStore.AddOrUpdate(UsersFile, "alice", ""));
        Assert.False(File.Exists(UsersFile));
    }

    [Fact]
    public void Should_leave_the_file_untouched_when_removing_an_unknown_user()
    {
        var content = $"# keep me\nalice:{FakeHash}\n";
        File.WriteAllText(UsersFile, content);
        var before = File.GetLastWriteTimeUtc(UsersFile);

        Assert.False(UserStore.Remove(UsersFile, "mallory"));
        Assert.False(UserStore.Remove(UsersFile, "Alice"));

        Assert.Equal(content, File.ReadAllText(UsersFile));
        Assert.Equal(before, File.GetLastWriteTimeUtc(UsersFile));
    }

    [Fact]
    public void Should_not_rewrite_a_malformed_file()
    {
        var content = $"alice:{FakeHash}\nbob:$md5$x\n";
        File.WriteAllText(UsersFile, content);

        var e = Assert.Throws<UserStoreException>(() => UserStore.AddOrUpdate(UsersFile, "carol", "s3cret"));
        Assert.StartsWith($"{UsersFile}:2: ", e.Message);
        Assert.Throws<UserStoreException>(() => UserStore.Remove(UsersFile, "alice"));
        Assert.Equal(content, File.ReadAllText(UsersFile));
    }

    [Fact]
    public async Task Should_lose_no_update_when_the_file_is_edited_concurrently()
    {
        // Removes are cheap (no hashing), so many of them overlap: without the lock some would
        // rewrite the file from a stale read and bring users back, or collide on users.db.tmp.
        var names = Enumerable.Range(1, 60).Select(i => $"u{i}").ToList();
        File.WriteAllText(UsersFile, string.Concat(names.Select(n => $"{n}:{FakeHash}\n")));

        var removed = await Task.WhenAll(names.Select(n => Task.Run(() => UserStore.Remove(UsersFile, n))));

        Assert.All(removed, Assert.True);
        Assert.Equal(0, UserStore.Load(UsersFile).Count);
        Assert.False(File.Exists(UsersFile + ".tmp"));
    }

    private UserStore Write(string content)
    {
        File.WriteAllText(UsersFile, content);
        return UserStore.Load(UsersFile);
    }

    [GeneratedRegex(@"^\$pbkdf2-sha256\$310000\$(?<salt>[A-Za-z0-9+/]{22}==)\$(?<hash>[A-Za-z0-9+/]{43}=)$")]
    private static partial Regex HashFormat();
}
