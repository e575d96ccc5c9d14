using RelayMta.IntegrationTests.Infrastructure;

namespace RelayMta.IntegrationTests;

/// <summary>
/// SMTP smuggling (CVE-2023-51764, CVE-2023-51765, CVE-2023-51766 and kin): a body that hides an
/// end-of-data marker made of bare CR/LF, followed by a second transaction. Only CRLF "." CRLF ends
/// DATA here, and a message holding a bare CR or LF is refused once the real end arrives
/// (550 5.6.0), so the smuggled commands are never executed and nothing is delivered.
/// </summary>
public sealed class SmugglingSpecs
{
    public static TheoryData<string, string> Variants => new()
    {
        { "LF.LF", "\n.\n" },
        { "LF.CRLF", "\n.\r\n" },
        { "CRLF.LF", "\r\n.\n" },
        { "CR.CR", "\r.\r" },
        { "CR.CRLF", "\r.\r\n" },
        { "CRLF.CR", "\r\n.\r" },
        { "CR.LF", "\r.\n" },
        { "LF.CR", "\n.\r" },
        { "CRLF.CRCRLF", "\r\n.\r\r\n" },
        { "CRLFLF.CRLF", "\r\n\n.\r\n" },
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public async Task Smuggled_end_of_data_never_ends_the_message_nor_starts_a_transaction(string name, string marker)
    {
        await using var relay = await TestRelay.StartAsync();
        await using var client = await RawSmtpClient.ConnectAsync(relay.Endpoint);
        Assert.Equal(220, (await client.ReadReplyAsync()).Code);
        Assert.Equal(250, (await client.CommandAsync("EHLO attacker.test")).Code);
        Assert.Equal(250, (await client.CommandAsync("MAIL FROM:<alice@sender.test>")).Code);
        Assert.Equal(250, (await client.CommandAsync("RCPT TO:<bob@example.test>")).Code);
        Assert.Equal(354, (await client.CommandAsync("DATA")).Code);

        await client.SendAsync("Subject: innocent\r\n\r\nhello" + marker +
                               "MAIL FROM:<admin@sender.test>\r\nRCPT TO:<victim@example.test>\r\nDATA\r\n" +
                               "Subject: smuggled\r\n\r\nevil\r\n.\r\n");

        var reply = await client.ReadReplyAsync();
        Assert.True(reply.Code == 550 && reply.LastText.StartsWith("5.6.0", StringComparison.Ordinal), $"{name}: got {reply}");
        // The very next reply answers the very next command: nothing smuggled was executed.
        var noop = await client.CommandAsync("NOOP");
        Assert.Equal("250 2.0.0 OK", noop.Lines[^1]);
        Assert.Equal(503, (await client.CommandAsync("DATA")).Code); // no transaction is open

        Assert.Empty(relay.Delivered("victim"));
        Assert.Empty(relay.Delivered("bob"));
        Assert.Equal(0, relay.Runtime.Spool.Count);
    }

    [Fact]
    public async Task A_NUL_before_the_dot_is_content_and_the_whole_thing_stays_one_message()
    {
        // "\r\n\0.\r\n" is not an end-of-data marker either: it is content, accepted as one message.
        await using var relay = await TestRelay.StartAsync();
        await using var client = await RawSmtpClient.ConnectAsync(relay.Endpoint);
        await client.ReadReplyAsync();
        await client.CommandAsync("EHLO attacker.test");
        await client.CommandAsync("MAIL FROM:<alice@sender.test>");
        await client.CommandAsync("RCPT TO:<bob@example.test>");
        await client.CommandAsync("DATA");
        await client.SendAsync("Subject: x\r\n\r\nhello\r\n\0.\r\nMAIL FROM:<admin@sender.test>\r\nRCPT TO:<victim@example.test>\r\n.\r\n");
        Assert.Equal(250, (await client.ReadReplyAsync()).Code);
        Assert.Equal("250 2.0.0 OK", (await client.CommandAsync("NOOP")).Lines[^1]);

        var stored = File.ReadAllText((await relay.WaitForDeliveryAsync("bob")).Single());
        Assert.Contains("RCPT TO:<victim@example.test>", stored);
        Assert.Empty(relay.Delivered("victim"));
    }
}
