using System.Text;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;
using RelayMta.IntegrationTests.Infrastructure;

namespace RelayMta.IntegrationTests;

/// <summary>The happy path with a real client: MailKit's SmtpClient.</summary>
public sealed class MailKitSpecs
{
    private static async Task<SmtpClient> ConnectAsync(TestRelay relay)
    {
        var client = new SmtpClient();
        await client.ConnectAsync(relay.Endpoint.Address.ToString(), relay.Endpoint.Port, SecureSocketOptions.None);
        return client;
    }

    [Fact]
    public async Task Should_deliver_a_MailKit_message_byte_exact_into_the_maildir()
    {
        await using var relay = await TestRelay.StartAsync();
        // Raw bytes with a leading-dot line (dot-stuffing), 8-bit text and long folded headers.
        var raw = "From: Alice <alice@sender.test>\r\n" +
                  "To: Bob <bob@example.test>\r\n" +
                  "Subject: byte exact\r\n" +
                  "X-Folded: one\r\n\ttwo\r\n" +
                  "MIME-Version: 1.0\r\n" +
                  "Content-Type: text/plain; charset=utf-8\r\n" +
                  "Content-Transfer-Encoding: 8bit\r\n" +
                  "\r\n" +
                  "Grüße\r\n.leading dot\r\n..two dots\r\n.\tdot tab\r\nlast line\r\n";
        var bytes = Encoding.UTF8.GetBytes(raw);
        var message = MimeMessage.Load(new MemoryStream(bytes));

        using (var client = await ConnectAsync(relay))
        {
            await client.SendAsync(message);
            await client.DisconnectAsync(true);
        }

        var file = (await relay.WaitForDeliveryAsync("bob")).Single();
        var stored = await File.ReadAllBytesAsync(file);
        var text = Encoding.UTF8.GetString(stored);
        Assert.StartsWith("Return-Path: <alice@sender.test>\r\nDelivered-To: bob@example.test\r\nReceived: from ", text);
        // Everything after our Received field is exactly what the client sent.
        var received = text.IndexOf("Received: ", StringComparison.Ordinal);
        var endOfReceived = text.IndexOf("\r\nFrom: ", received, StringComparison.Ordinal) + 2;
        Assert.Equal(bytes, stored[Encoding.UTF8.GetByteCount(text[..endOfReceived])..]);
        Assert.Contains("by mx.test (RelayMta) with ESMTP id ", text[..endOfReceived]);
        Assert.Contains("for <bob@example.test>;", text[..endOfReceived]);
    }

    [Fact]
    public async Task Should_deliver_one_copy_per_local_recipient_and_omit_for_with_several()
    {
        await using var relay = await TestRelay.StartAsync();
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("alice@sender.test"));
        message.To.Add(MailboxAddress.Parse("bob@example.test"));
        message.Cc.Add(MailboxAddress.Parse("carol@example.test"));
        message.Subject = "two";
        message.Body = new TextPart("plain") { Text = "hello both" };

        using (var client = await ConnectAsync(relay))
        {
            await client.SendAsync(message);
            await client.DisconnectAsync(true);
        }

        var bob = File.ReadAllText((await relay.WaitForDeliveryAsync("bob")).Single());
        var carol = File.ReadAllText((await relay.WaitForDeliveryAsync("carol")).Single());
        Assert.Contains("Delivered-To: bob@example.test\r\n", bob);
        Assert.Contains("Delivered-To: carol@example.test\r\n", carol);
        Assert.DoesNotContain("\tfor <", bob); // RFC 5321 7.2: no recipient named when there are several
        Assert.Contains("hello both", carol);
    }

    [Fact]
    public async Task Should_advertise_exactly_the_extensions_it_implements()
    {
        await using var relay = await TestRelay.StartAsync();
        using var client = await ConnectAsync(relay);
        Assert.True(client.Capabilities.HasFlag(SmtpCapabilities.Pipelining));
        Assert.True(client.Capabilities.HasFlag(SmtpCapabilities.Size));
        Assert.True(client.Capabilities.HasFlag(SmtpCapabilities.EightBitMime));
        Assert.True(client.Capabilities.HasFlag(SmtpCapabilities.EnhancedStatusCodes));
        Assert.True(client.Capabilities.HasFlag(SmtpCapabilities.UTF8));
        Assert.False(client.Capabilities.HasFlag(SmtpCapabilities.StartTLS));
        Assert.False(client.Capabilities.HasFlag(SmtpCapabilities.Authentication));
        Assert.False(client.Capabilities.HasFlag(SmtpCapabilities.Chunking));
        Assert.False(client.Capabilities.HasFlag(SmtpCapabilities.Dsn));
        Assert.Equal(26214400u, client.MaxSize);
        await client.DisconnectAsync(true);
    }

    [Fact]
    public async Task Should_accept_an_SMTPUTF8_message_to_an_internationalised_local_address()
    {
        await using var relay = await TestRelay.StartAsync();
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("jörg@sender.test"));
        message.To.Add(MailboxAddress.Parse("müller@example.test"));
        message.Subject = "Grüße";
        message.Body = new TextPart("plain") { Text = "ünïcödé" };

        using (var client = await ConnectAsync(relay))
        {
            await client.SendAsync(message);
            await client.DisconnectAsync(true);
        }
        var stored = File.ReadAllText((await relay.WaitForDeliveryAsync("müller")).Single());
        Assert.Contains("Return-Path: <jörg@sender.test>", stored);
        Assert.Contains("with UTF8SMTP id", stored);
    }
}
