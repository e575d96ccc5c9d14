using System.Text;
using RelayMta.Engine.Security;

namespace RelayMta.Cli;

/// <summary><c>RelayMta user add|remove|list</c>: the SMTP AUTH users file.</summary>
internal static class UserCommand
{
    // Exit codes: CliExit.NotFound (user remove of a user not in the file), CliExit.Usage, and:

    /// <summary>The users file cannot be read, written or parsed.</summary>
    internal const int ExitUsersFile = 3;

    /// <summary>Longest password <c>user add</c> accepts, in UTF-8 bytes.</summary>
    internal const int MaxPasswordBytes = 1024;

    /// <summary>
    /// <c>user add|remove NAME --users-file FILE</c>, <c>user list --users-file FILE</c>.
    /// Exit codes are a contract for scripts: 0 done, 1 no such user (remove), 2 usage (including
    /// a bad name or an empty password), 3 the users file cannot be read, written or parsed.
    /// </summary>
    public static int Run(string[] args)
    {
        string? usersFile = null;
        var words = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--users-file" when i + 1 >= args.Length:
                    return UsageError("--users-file needs a FILE");
                case "--users-file" when usersFile is not null:
                    return UsageError("--users-file is given twice");
                case "--users-file":
                    usersFile = args[++i];
                    break;
                case "--help" or "-h":
                    Console.Out.WriteLine(CliUsage.All);
                    return 0;
                case "--":
                    words.AddRange(args[(i + 1)..]);
                    i = args.Length;
                    break;
                case ['-', _, ..]:
                    return UsageError($"unknown option '{args[i]}'");
                default:
                    words.Add(args[i]);
                    break;
            }
        }

        if (words.Count == 0) return UsageError("missing command: user add, user remove or user list");
        var (command, operands) = (words[0], words[1..]);
        var takesName = command is "add" or "remove";
        if (!takesName && command != "list") return UsageError($"unknown command 'user {command}'");
        if (takesName && operands.Count == 0) return UsageError($"user {command}: missing NAME");
        if (operands.Count > (takesName ? 1 : 0)) return UsageError($"user {command}: unexpected '{operands[^1]}'");
        if (usersFile is null) return UsageError($"user {command}: missing --users-file FILE");
        var name = takesName ? operands[0] : "";
        if (takesName && !IsValidUserName(name))
            return UsageError($"invalid user name '{name}': use 1-256 characters of A-Z a-z 0-9 . _ @ + -");

        try
        {
            if (command == "add") return AddUser(usersFile, name);
            if (command == "remove")
            {
                if (UserStore.Remove(usersFile, name)) return 0;
                Console.Error.WriteLine($"relaymta: no user '{name}' in {usersFile}");
                return CliExit.NotFound;
            }
            foreach (var user in UserStore.Load(usersFile).Names) Console.Out.WriteLine(user);
            return 0;
        }
        catch (UserStoreException e)
        {
            Console.Error.WriteLine($"relaymta: {e.Message}");
            return ExitUsersFile;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"relaymta: {usersFile}: {e.Message.ReplaceLineEndings(" ")}");
            return ExitUsersFile;
        }

        static int UsageError(string problem)
        {
            Console.Error.WriteLine($"relaymta: {problem} (see RelayMta --help)");
            return CliExit.Usage;
        }

        static int AddUser(string usersFile, string name)
        {
            var password = ReadPasswordLine(out var problem);
            if (password is null) return UsageError(problem!);
            try
            {
                UserStore.AddOrUpdate(usersFile, name, password);
                return 0;
            }
            finally
            {
                Array.Clear(password);
            }
        }
    }

    // The rule of UserStore.IsValidName, which is internal to the engine; checked here too so a
    // bad name is reported before standard input is read.
    private static bool IsValidUserName(string name) =>
        name.Length is >= 1 and <= 256 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '@' or '+' or '-');

    /// <summary>
    /// The first line of standard input without its line end (LF, CRLF), as raw UTF-8 whatever
    /// the locale, so it hashes to what an AUTH client sends; null and a reason when it is empty,
    /// too long or not UTF-8. Never echoed or logged.
    /// </summary>
    private static char[]? ReadPasswordLine(out string? problem)
    {
        var bytes = new byte[MaxPasswordBytes + 1];
        var length = 0;
        using (var stdin = Console.OpenStandardInput())
        {
            for (int b; length < bytes.Length && (b = stdin.ReadByte()) is >= 0 and not '\n';) bytes[length++] = (byte)b;
        }
        while (length > 0 && bytes[length - 1] == '\r') length--;

        char[]? password = null;
        problem = null;
        if (length == 0) problem = "the password (first line of standard input) is empty";
        else if (length > MaxPasswordBytes) problem = $"the password is longer than {MaxPasswordBytes} bytes";
        else
        {
            try
            {
                password = new UTF8Encoding(false, throwOnInvalidBytes: true).GetChars(bytes, 0, length);
            }
            catch (DecoderFallbackException)
            {
                problem = "the password is not valid UTF-8";
            }
        }
        Array.Clear(bytes);
        return password;
    }
}
