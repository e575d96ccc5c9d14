using Spectre.Console;

namespace RelayMta.Cli;

/// <summary>Where a command writes, and what it knows about its surroundings.</summary>
internal sealed class CliConsole
{
    /// <summary>Width used when standard output is not a terminal: wide enough that rows never wrap, so scripts see one line per row.</summary>
    public const int PipeWidth = 1000;

    public CliConsole(TextWriter stdout, TextWriter stderr, bool terminal, Func<DateTimeOffset>? clock = null, HttpMessageHandler? handler = null)
    {
        Out = stdout;
        Error = stderr;
        Terminal = terminal;
        Clock = clock ?? (() => DateTimeOffset.UtcNow);
        Handler = handler;
        Tables = Create(stdout, terminal);
    }

    /// <summary>The process's own standard output and error; colours only when standard output is a terminal.</summary>
    public static CliConsole ForProcess() => new(Console.Out, Console.Error, !Console.IsOutputRedirected);

    public TextWriter Out { get; }

    public TextWriter Error { get; }

    /// <summary>Standard output is a terminal: colours, Unicode borders and the terminal's width.</summary>
    public bool Terminal { get; }

    public Func<DateTimeOffset> Clock { get; }

    /// <summary>The HTTP handler to use (tests); null for a real connection.</summary>
    public HttpMessageHandler? Handler { get; }

    /// <summary>Spectre.Console over <see cref="Out"/>.</summary>
    public IAnsiConsole Tables { get; }

    public TableBorder Border => Terminal ? TableBorder.Rounded : TableBorder.Ascii;

    public static IAnsiConsole Create(TextWriter writer, bool terminal)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(writer),
            Ansi = terminal ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = terminal ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
        });
        if (!terminal) console.Profile.Width = PipeWidth;
        return console;
    }
}
