using RelayMta.Engine.Hosting;
using RelayMta.IntegrationTests.Infrastructure;

namespace RelayMta.IntegrationTests;

/// <summary>A bad configuration stops start-up with one line naming the key and the file, and a non-zero exit.</summary>
public sealed class ConfigSpecs
{
    public static TheoryData<string, string, string> BadConfigs => new()
    {
        { "unknown key", "relay-mta { listen-on = [\"127.0.0.1:0\"] }", "relay-mta.listen-on: unknown key" },
        { "unknown nested key", "relay-mta { limits { max-size = 5 } }", "relay-mta.limits.max-size: unknown key" },
        { "wrong type", "relay-mta { limits { max-recipients = lots } }", "relay-mta.limits.max-recipients: must be a whole number" },
        { "list expected", "relay-mta { listen = \"127.0.0.1:25\" }", "relay-mta.listen: must be a list" },
        { "bad endpoint", "relay-mta { listen = [\"127.0.0.1\"] }", "relay-mta.listen[0]: '127.0.0.1' is not an \"ip:port\" endpoint" },
        { "bad address", "relay-mta { listen = [\"300.1.1.1:25\"] }", "relay-mta.listen[0]:" },
        { "bad CIDR", "relay-mta { relay { allowed-networks = [\"10.0.0.0/33\"] } }", "relay-mta.relay.allowed-networks[0]:" },
        { "bad duration", "relay-mta { outbound { retry-intervals = [1m, soon] } }", "relay-mta.outbound.retry-intervals[1]:" },
        { "bad enum", "relay-mta { local { recipients = some } }", "relay-mta.local.recipients: 'some' is not one of: any, existing" },
        { "bad smarthost", "relay-mta { relay { smarthost = \"host:99999\" } }", "relay-mta.relay.smarthost:" },
        { "syntax", "relay-mta { hostname = ", "" },
        { "stray root key", "relay { smarthost = \"x:25\" }", "relay: unknown key" },
    };

    [Theory]
    [MemberData(nameof(BadConfigs))]
    public void Loader_names_the_key_and_the_file(string name, string hocon, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.LoadText(hocon, "/etc/relay/bad.hocon"));
        Assert.StartsWith("/etc/relay/bad.hocon: ", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.False(string.IsNullOrWhiteSpace(name));
    }

    [Fact]
    public void Defaults_load_as_documented()
    {
        var s = ConfigLoader.Load(null).Settings;
        Assert.Equal("localhost", s.Hostname);
        Assert.Equal("127.0.0.1:2525", Assert.Single(s.Listen).ToString());
        Assert.Equal("data/spool", s.SpoolDir);
        Assert.Equal("data/mail", s.Local.MailboxRoot);
        Assert.Contains("localhost", s.Local.Domains);
        Assert.Equal(LocalRecipientPolicy.Any, s.Local.Recipients);
        Assert.Equal(26214400, s.Limits.MaxMessageSize);
        Assert.Equal(100, s.Limits.MaxRecipients);
        Assert.Equal(25, s.Outbound.Port);
        Assert.Equal(new[] { 1, 5, 15, 30, 60 }, s.Outbound.RetryIntervals.Select(t => (int)t.TotalMinutes));
        Assert.Equal(TimeSpan.FromDays(5), s.Outbound.MaxQueueLifetime);
        Assert.Null(s.Relay.Smarthost);
        Assert.Empty(s.Dns.Servers);
    }

    [Fact]
    public void A_user_file_is_layered_over_the_defaults()
    {
        var s = ConfigLoader.LoadText("""
            relay-mta {
              hostname = "mx.example.test"
              listen = ["127.0.0.1:2526", "[::1]:2526"]
              local { domains = ["example.test", "Bücher.example"] }
              relay { smarthost = "smarthost.example.test:587" }
            }
            """, "user.hocon").Settings;
        Assert.Equal("mx.example.test", s.Hostname);
        Assert.Equal(2, s.Listen.Count);
        Assert.Equal("[::1]:2526", s.Listen[1].ToString());
        Assert.Contains("xn--bcher-kva.example", s.Local.Domains);
        Assert.Equal("data/mail", s.Local.MailboxRoot); // not overridden: from the defaults
        Assert.Equal(new HostPort("smarthost.example.test", 587), s.Relay.Smarthost);
    }

    [Theory]
    [InlineData("relay-mta { limits { max-recipients = lots } }", "relay-mta.limits.max-recipients")]
    [InlineData("relay-mta { nonsense = 1 }", "relay-mta.nonsense: unknown key")]
    public async Task The_executable_exits_non_zero_with_one_clear_line(string hocon, string expected)
    {
        using var dir = new TempDirectory();
        var path = dir.Combine("bad.hocon");
        File.WriteAllText(path, hocon);
        using var relay = RelayProcess.Start("--config", path);
        var code = await relay.WaitForExitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(78, code);
        var line = Assert.Single(relay.Output, l => l.Length > 0);
        Assert.StartsWith("relaymta: configuration error: " + path + ": ", line);
        Assert.Contains(expected, line);
    }

    [Fact]
    public async Task A_missing_config_file_is_an_error()
    {
        using var relay = RelayProcess.Start("--config", "/nonexistent/relay.hocon");
        Assert.Equal(78, await relay.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains(relay.Output, l => l.Contains("/nonexistent/relay.hocon", StringComparison.Ordinal) && l.Contains("cannot read", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Unknown_arguments_are_a_usage_error()
    {
        using var relay = RelayProcess.Start("--bogus");
        Assert.Equal(2, await relay.WaitForExitAsync(TimeSpan.FromSeconds(30)));
    }
}
