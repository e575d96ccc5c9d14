namespace RelayMta.Cli;

/// <summary>The usage text of the executable: the server, the user tool and the operator commands.</summary>
internal static class CliUsage
{
    public const string Server = """
        usage: RelayMta [--config PATH]        run the relay (defaults: hocon/relay.hocon)
               RelayMta --check-config [--config PATH]
                                               check the configuration and exit
               RelayMta user add NAME --users-file FILE
                                               add an SMTP AUTH user, or change its password; the
                                               password is the first line of standard input
               RelayMta user remove NAME --users-file FILE
               RelayMta user list --users-file FILE
               RelayMta --help
        """;

    public const string Operator = """
        operator commands (a client of the running relay's admin API):
               RelayMta queue summary          the queue per destination
               RelayMta queue list [--destination D] [--sender S] [--recipient R]
                                   [--state active|deferred|held] [--min-age SECONDS]
                                   [--max-age SECONDS] [--page N] [--page-size N]
                                               queued messages, oldest first
               RelayMta queue show ID          envelope, recipients, attempts and headers
               RelayMta queue retry [ID|--destination D|--all]
                                               try now
               RelayMta queue hold ID          keep the message, do not try it until released
               RelayMta queue release ID       undo hold: try it now
               RelayMta queue delete ID [--bounce]
                                               remove it; --bounce sends the sender a DSN
               RelayMta destination suspend D  stop delivering to D (mail waits)
               RelayMta destination resume D
             these also take:
               --url http://HOST:PORT          the admin API (default: relay-mta.admin.listen of
                                               the configuration, http://127.0.0.1:8025)
               --config PATH                   read admin.listen and admin.token-file from PATH
               --token-file FILE               the bearer token (first line of FILE)
               --json                          the server's JSON instead of tables
               RelayMta spool inspect DIR [--json]
                                               the messages in a STOPPED relay's spool
             exit codes: 0 ok, 1 not found, 2 usage, 3 server unreachable, unauthorized or
             failing (or, for spool inspect, the spool is in use), 78 --config does not load
        """;

    /// <summary>Everything, for <c>RelayMta --help</c>.</summary>
    public static string All => Server + "\n\n" + Operator;
}
