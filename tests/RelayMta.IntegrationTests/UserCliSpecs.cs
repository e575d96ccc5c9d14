using System.Diagnostics;
using System.Text;
using RelayMta.Engine.Security;
using RelayMta.IntegrationTests.Infrastructure;

namespace RelayMta.IntegrationTests;

/// <summary>
/// <c>RelayMta user add|remove|list</c> as operators' scripts run it: the built executable, the
/// password on standard input, the exit code (0 ok, 1 not found, 2 usage, 3 file) and one
/// <c>relaymta: </c> line on standard error.
/// </summary>
public sealed class UserCliSpecs : IDisposable
{
    private readonly TempDirectory _dir = new();

    private string UsersFile => _dir.Combine("users.db");

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Should_add_list_and_remove_users_with_the_password_from_standard_input()
    {
        var alice = await Run("s3cret alice\n", "user", "add", "alice", "--users-file", UsersFile);
        Assert.Equal((0, "", ""), alice);
        Assert.Equal(0, (await Run("pa:ss\r\nsecond line ignored\n", "user", "add", "bob@example.org", "--users-file", UsersFile)).Code);

        Assert.Equal((0, "alice\nbob@example.org\n", ""), await Run("", "user", "list", "--users-file", UsersFile));
        var store = UserStore.Load(UsersFile);
        Assert.True(store.Verify("alice", "s3cret alice"));
        Assert.True(store.Verify("bob@example.org", "pa:ss")); // CR LF removed, only the first line
        Assert.DoesNotContain("s3cret", File.ReadAllText(UsersFile));

        Assert.Equal((0, "", ""), await Run("", "user", "remove", "alice", "--users-file", UsersFile));
        Assert.Equal((0, "bob@example.org\n", ""), await Run("", "user", "list", "--users-file", UsersFile));

        var again = await Run("", "user", "remove", "alice", "--users-file", UsersFile);
        Assert.Equal(1, again.Code);
        Assert.Equal($"relaymta: no user 'alice' in {UsersFile}\n", again.Stderr);
    }

    [Fact]
    public async Task Should_change_the_password_of_an_existing_user()
    {
        await Run("first\n", "user", "add", "alice", "--users-file", UsersFile);
        // Options may come first; a password without a line end is the whole of standard input.
        Assert.Equal(0, (await Run("second", "user", "--users-file", UsersFile, "add", "alice")).Code);

        var store = UserStore.Load(UsersFile);
        Assert.Equal(["alice"], store.Names);
        Assert.True(store.Verify("alice", "second"));
        Assert.False(store.Verify("alice", "first"));
    }

    public static TheoryData<string, string[]> UsageErrors => new()
    {
        { "s3cret\n", ["user"] },
        { "s3cret\n", ["user", "add", "--users-file", "FILE"] },
        { "s3cret\n", ["user", "add", "alice"] },
        { "s3cret\n", ["user", "add", "alice", "--users-file"] },
        { "s3cret\n", ["user", "add", "alice", "bob", "--users-file", "FILE"] },
        { "s3cret\n", ["user", "add", "alice", "--users-file", "FILE", "--force"] },
        { "s3cret\n", ["user", "rename", "alice", "--users-file", "FILE"] },
        { "s3cret\n", ["user", "list", "alice", "--users-file", "FILE"] },
        { "s3cret\n", ["user", "add", "al:ice", "--users-file", "FILE"] },
        { "s3cret\n", ["user", "remove", "bob smith", "--users-file", "FILE"] },
        { "", ["user", "add", "alice", "--users-file", "FILE"] },
        { "\r\nnot the first line\n", ["user", "add", "alice", "--users-file", "FILE"] },
    };

    [Theory]
    [MemberData(nameof(UsageErrors))]
    public async Task Should_exit_2_with_one_line_on_a_usage_error(string stdin, string[] args)
    {
        var (code, stdout, stderr) = await Run(stdin, args.Select(a => a == "FILE" ? UsersFile : a).ToArray());

        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("relaymta: ", line);
        Assert.DoesNotContain("s3cret", stderr);
        Assert.False(File.Exists(UsersFile));
    }

    [Fact]
    public async Task Should_exit_3_when_the_file_is_malformed_or_missing()
    {
        var content = "# users\nalice:$md5$abc\n";
        File.WriteAllText(UsersFile, content);

        string[][] commands = [["list"], ["remove", "alice"], ["add", "bob"]];
        foreach (var args in commands)
        {
            var (code, stdout, stderr) = await Run("s3cret\n", ["user", .. args, "--users-file", UsersFile]);
            Assert.Equal(3, code);
            Assert.Equal("", stdout);
            Assert.Equal($"relaymta: {UsersFile}:2: unknown password scheme 'md5' (expected pbkdf2-sha256)\n", stderr);
        }
        Assert.Equal(content, File.ReadAllText(UsersFile)); // never rewritten

        var missing = _dir.Combine("missing.db");
        var list = await Run("", "user", "list", "--users-file", missing);
        Assert.Equal(3, list.Code);
        Assert.StartsWith($"relaymta: {missing}: ", list.Stderr);
        Assert.Equal(3, (await Run("", "user", "remove", "alice", "--users-file", missing)).Code);
        Assert.Equal(3, (await Run("s3cret\n", "user", "add", "alice", "--users-file", _dir.Combine("no-such-dir", "users.db"))).Code);
    }

    [Fact]
    public async Task Should_describe_the_user_commands_in_the_help()
    {
        var (code, stdout, _) = await Run("", "--help");
        Assert.Equal(0, code);
        Assert.Contains("RelayMta user add NAME --users-file FILE", stdout);
        Assert.Contains("RelayMta user remove NAME --users-file FILE", stdout);
        Assert.Contains("RelayMta user list --users-file FILE", stdout);
    }

    /// <summary>
    /// Runs <c>dotnet RelayMta.dll ARGS</c> with <paramref name="stdin"/> written to standard input
    /// and closed, and returns the exit code and everything written to standard output and error.
    /// </summary>
    private static async Task<(int Code, string Stdout, string Stderr)> Run(string stdin, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            StandardInputEncoding = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false),
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(RelayProcess.DllPath);
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["DOTNET_gcServer"] = "0";

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.StandardInput.WriteAsync(stdin);
            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // it exited without reading standard input (a usage error): nothing to deliver
        }
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            throw new TimeoutException($"RelayMta {string.Join(' ', args)} did not exit");
        }
        return (process.ExitCode, await stdout, await stderr);
    }
}
