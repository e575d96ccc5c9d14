using System.Text;
using RelayMta.IntegrationTests.Infrastructure;

namespace RelayMta.IntegrationTests;

/// <summary>Checks made on the content once DATA ends: loops, header size, recipients that must exist.</summary>
public sealed class ContentChecksSpecs
{
    private static async Task<WireReply> SendAsync(TestRelay relay, string body, string rcpt = "bob@example.test")
    {
        await using var client = await RawSmtpClient.ConnectAsync(relay.Endpoint);
        await client.ReadReplyAsync();
        await client.CommandAsync("EHLO content.test");
        await client.CommandAsync("MAIL FROM:<a@sender.test>");
        var r = await client.CommandAsync($"RCPT TO:<{rcpt}>");
        if (r.Code != 250) return r;
        await client.CommandAsync("DATA");
        return await client.CommandAsync(body + "\r\n.");
    }

    private static string Received(int count)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < count; i++) sb.Append($"Received: from hop{i}.test by hop{i + 1}.test; Mon, 30 Nov 2026 00:00:00 +0000\r\n");
        return sb.ToString();
    }

    [Fact]
    public async Task More_than_100_Received_fields_is_a_mail_loop()
    {
        await using var relay = await TestRelay.StartAsync();
        var refused = await SendAsync(relay, Received(101) + "Subject: loop\r\n\r\nx");
        Assert.Equal(554, refused.Code);
        Assert.StartsWith("5.4.6", refused.LastText);

        var accepted = await SendAsync(relay, Received(100) + "Subject: long path\r\n\r\nx");
        Assert.Equal(250, accepted.Code);
    }

    [Fact]
    public async Task A_header_section_over_the_limit_is_refused_with_552()
    {
        await using var relay = await TestRelay.StartAsync("relay-mta.limits.max-header-size = 2048");
        var big = "X-Big: " + new string('a', 3000) + "\r\n";
        var refused = await SendAsync(relay, "Subject: big\r\n" + big + "\r\nbody");
        Assert.Equal(552, refused.Code);
        Assert.StartsWith("5.3.4", refused.LastText);
        Assert.Equal(250, (await SendAsync(relay, "Subject: small\r\n\r\n" + new string('b', 3000))).Code);
    }

    [Fact]
    public async Task With_existing_policy_a_mailbox_directory_makes_the_recipient_valid()
    {
        await using var relay = await TestRelay.StartAsync("relay-mta.local.recipients = existing");
        Assert.Equal(550, (await SendAsync(relay, "Subject: x\r\n\r\nx", "carol@example.test")).Code);
        Directory.CreateDirectory(Path.Combine(relay.MailRoot, "example.test", "carol"));
        Assert.Equal(250, (await SendAsync(relay, "Subject: x\r\n\r\nx", "Carol@Example.TEST")).Code);
        var file = (await relay.WaitForDeliveryAsync("carol")).Single();
        Assert.Contains("Delivered-To: Carol@example.test", File.ReadAllText(file));
    }

    [Fact]
    public async Task A_25_MiB_message_streams_through_and_arrives_intact()
    {
        await using var relay = await TestRelay.StartAsync();
        var line = new string('z', 998) + "\r\n";
        var body = new StringBuilder("Subject: large\r\n\r\n");
        while (body.Length < 25 * 1024 * 1024 - 2000) body.Append(line);
        var reply = await SendAsync(relay, body.ToString().TrimEnd('\r', '\n'));
        Assert.Equal(250, reply.Code);
        var stored = new FileInfo((await relay.WaitForDeliveryAsync("bob")).Single());
        Assert.True(stored.Length > 25 * 1024 * 1024 - 4000);
    }
}
