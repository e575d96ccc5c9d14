using Akka.Actor;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;
using RelayMta.Engine.Inbound;
using RelayMta.Engine.Security;
using RelayMta.IntegrationTests.Infrastructure;

namespace RelayMta.IntegrationTests;

/// <summary>STARTTLS, implicit TLS, AUTH, relay policy, submission and abuse limits on the real server.</summary>
public sealed class SecuritySpecs : IDisposable
{
    private readonly TempDirectory _dir = new();
    private readonly TestCa _ca = TestCa.Create();
    private readonly string _certPem;
    private readonly string _keyPem;
    private readonly string _usersFile;

    public SecuritySpecs()
    {
        _certPem = _dir.Combine("server.pem");
        _keyPem = _dir.Combine("server.key");
        _ca.Issue("mx.test", "127.0.0.1").WritePem(_certPem, _keyPem);
        _usersFile = _dir.Combine("users.db");
        UserStore.AddOrUpdate(_usersFile, "alice", "correct horse");
    }

    /// <summary>TLS and users configured; loopback is NOT in allowed-networks, so it is treated as the Internet.</summary>
    private string Secure(string extra = "") => $$"""
        relay-mta {
          tls { certificate = "{{TestRelay.Escape(_certPem)}}", key = "{{TestRelay.Escape(_keyPem)}}" }
          auth.users-file = "{{TestRelay.Escape(_usersFile)}}"
          relay.allowed-networks = ["192.0.2.0/24"]
          limits.greet-delay = 0s
        }
        {{extra}}
        """;

    private SmtpClient Client() => new() { ServerCertificateValidationCallback = _ca.ValidationCallback("mx.test") };

    private static MimeMessage Message(string from, string to, string subject = "secure")
    {
        var m = new MimeMessage();
        m.From.Add(MailboxAddress.Parse(from));
        m.To.Add(MailboxAddress.Parse(to));
        m.Subject = subject;
        m.Body = new TextPart("plain") { Text = "hello" };
        return m;
    }

    [Fact]
    public async Task STARTTLS_with_MailKit_delivers_and_records_ESMTPS_and_the_cipher()
    {
        await using var relay = await TestRelay.StartAsync(Secure());
        // "mx.test" does not resolve: connect the socket ourselves, and let MailKit check the name on the certificate.
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(relay.Endpoint);
        using var tls = Client();
        await tls.ConnectAsync(socket, "mx.test", relay.Endpoint.Port, SecureSocketOptions.StartTls);
        Assert.True(tls.IsSecure);
        await tls.SendAsync(Message("someone@remote.test", "bob@example.test"));
        await tls.DisconnectAsync(true);

        var stored = File.ReadAllText((await relay.WaitForDeliveryAsync("bob")).Single());
        Assert.Matches(@"with ESMTPS id \w+", stored);
        Assert.Matches(@"\(using TLSv1\.[23] with cipher \w+\)", stored);
    }

    [Fact]
    public async Task Commands_pipelined_after_STARTTLS_in_plain_text_are_never_executed()
    {
        await using var relay = await TestRelay.StartAsync(Secure());
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(relay.Endpoint);
        var stream = tcp.GetStream();
        var reader = new LineReaderHelper(stream);
        Assert.StartsWith("220", await reader.ReplyAsync());
        await stream.WriteAsync("EHLO attacker.test\r\n"u8.ToArray());
        var ehlo = await reader.ReplyAsync();
        Assert.Contains("STARTTLS", ehlo);
        Assert.DoesNotContain("AUTH", ehlo); // RFC 4954: no AUTH before TLS

        // CVE-2011-0411: the injected MAIL rides in the same packet as STARTTLS.
        await stream.WriteAsync("STARTTLS\r\nMAIL FROM:<injected@attacker.test>\r\n"u8.ToArray());
        Assert.StartsWith("220 2.0.0", await reader.ReplyAsync());
        using var ssl = new SslStream(stream, false, _ca.ValidationCallback("mx.test"));
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "mx.test", EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13 });
        var secure = new LineReaderHelper(ssl);
        // The first reply inside TLS answers our EHLO: nothing queued from the injection precedes it.
        await ssl.WriteAsync("EHLO attacker.test\r\n"u8.ToArray());
        var second = await secure.ReplyAsync();
        Assert.StartsWith("250-mx.test", second);
        Assert.Contains("AUTH PLAIN LOGIN", second);
        Assert.DoesNotContain("STARTTLS", second);
        // And no transaction is open: the injected MAIL did not run.
        await ssl.WriteAsync("RCPT TO:<bob@example.test>\r\n"u8.ToArray());
        Assert.StartsWith("503 5.5.1", await secure.ReplyAsync());
    }

    [Fact]
    public async Task AUTH_is_refused_with_538_before_TLS_and_works_after_with_PLAIN_and_LOGIN()
    {
        await using var relay = await TestRelay.StartAsync(Secure());
        await using (var raw = await RawSmtpClient.ConnectAsync(relay.Endpoint))
        {
            await raw.ReadReplyAsync();
            await raw.CommandAsync("EHLO plain.test");
            var refused = await raw.CommandAsync("AUTH PLAIN " + Convert.ToBase64String(Encoding.UTF8.GetBytes("\0alice\0correct horse")));
            Assert.Equal("538 5.7.11 Encryption required for requested authentication mechanism", refused.Lines[^1]);
        }

        foreach (var mechanism in new[] { "PLAIN", "LOGIN" })
        {
            using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(relay.Endpoint);
            using var client = Client();
            client.AuthenticationMechanisms.Clear();
            client.AuthenticationMechanisms.Add(mechanism);
            await client.ConnectAsync(socket, "mx.test", relay.Endpoint.Port, SecureSocketOptions.StartTls);
            Assert.Contains(mechanism, client.AuthenticationMechanisms);
            var bad = await Assert.ThrowsAsync<MailKit.Security.AuthenticationException>(() => client.AuthenticateAsync("alice", "wrong"));
            Assert.Contains("5.7.8", bad.Message);
            await client.AuthenticateAsync("alice", "correct horse");
            Assert.True(client.IsAuthenticated);
            await client.DisconnectAsync(true);
        }
    }

    [Fact]
    public async Task Relay_is_denied_to_an_unauthenticated_outside_client_and_allowed_after_AUTH()
    {
        await using var relay = await TestRelay.StartAsync(Secure());
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(relay.Endpoint);
        using var client = Client();
        await client.ConnectAsync(socket, "mx.test", relay.Endpoint.Port, SecureSocketOptions.StartTls);

        var denied = await Assert.ThrowsAsync<SmtpCommandException>(() => client.SendAsync(Message("alice@example.test", "friend@remote.test")));
        Assert.Equal(SmtpStatusCode.TransactionFailed, denied.StatusCode); // 554
        Assert.Contains("5.7.1", denied.Message);

        await client.AuthenticateAsync("alice", "correct horse");
        await client.SendAsync(Message("alice@example.test", "friend@remote.test"));
        await client.SendAsync(Message("alice@example.test", "bob@example.test", "to a local user"));
        await client.DisconnectAsync(true);

        var stored = File.ReadAllText((await relay.WaitForDeliveryAsync("bob")).Single());
        Assert.Contains("with ESMTPSA id", stored);
        Assert.Contains("(Authenticated sender: alice)", stored);
    }

    [Fact]
    public async Task The_submission_port_demands_AUTH_before_MAIL()
    {
        await using var relay = await TestRelay.StartAsync(Secure("relay-mta.submission-listen = [\"127.0.0.1:0\"]"));
        var submission = relay.Runtime.EndpointsOf(ListenerKind.Submission).Single();
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(submission);
        using var client = Client();
        await client.ConnectAsync(socket, "mx.test", submission.Port, SecureSocketOptions.StartTls);
        // MailKit turns the 530 into ServiceNotAuthenticatedException.
        var refused = await Assert.ThrowsAsync<MailKit.ServiceNotAuthenticatedException>(() => client.SendAsync(Message("alice@example.test", "bob@example.test")));
        Assert.Equal("5.7.0 Authentication required", refused.Message);

        await client.AuthenticateAsync("alice", "correct horse");
        await client.SendAsync(Message("alice@example.test", "bob@example.test"));
        await client.DisconnectAsync(true);
        await relay.WaitForDeliveryAsync("bob");
    }

    [Fact]
    public async Task An_implicit_TLS_listener_speaks_TLS_from_the_first_byte()
    {
        await using var relay = await TestRelay.StartAsync(Secure("relay-mta.tls-listen = [\"127.0.0.1:0\"]"));
        var endpoint = relay.Runtime.EndpointsOf(ListenerKind.ImplicitTls).Single();
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(endpoint);
        using var client = Client();
        await client.ConnectAsync(socket, "mx.test", endpoint.Port, SecureSocketOptions.SslOnConnect);
        Assert.True(client.IsSecure);
        Assert.True(client.Capabilities.HasFlag(SmtpCapabilities.Authentication));
        await client.AuthenticateAsync("alice", "correct horse");
        await client.SendAsync(Message("alice@example.test", "bob@example.test"));
        await client.DisconnectAsync(true);
        Assert.Contains("with ESMTPSA id", File.ReadAllText((await relay.WaitForDeliveryAsync("bob")).Single()));
    }

    [Fact]
    public async Task Too_many_sessions_from_one_address_get_421_4_7_0()
    {
        await using var relay = await TestRelay.StartAsync(Secure("relay-mta.limits.max-sessions-per-ip = 2"));
        await using var one = await RawSmtpClient.ConnectAsync(relay.Endpoint);
        await using var two = await RawSmtpClient.ConnectAsync(relay.Endpoint);
        Assert.Equal(220, (await one.ReadReplyAsync()).Code);
        Assert.Equal(220, (await two.ReadReplyAsync()).Code);
        await using (var three = await RawSmtpClient.ConnectAsync(relay.Endpoint))
        {
            var refused = await three.ReadReplyAsync();
            Assert.Equal(421, refused.Code);
            Assert.StartsWith("4.7.0", refused.LastText);
            Assert.True(await three.IsClosedAsync(TimeSpan.FromSeconds(10)));
        }
        await one.CommandAsync("QUIT");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (await OpenSessionsAsync(relay) > 1 && DateTime.UtcNow < deadline) await Task.Delay(20);
        await using var four = await RawSmtpClient.ConnectAsync(relay.Endpoint);
        Assert.Equal(220, (await four.ReadReplyAsync()).Code); // a freed slot is usable again
    }

    private static async Task<int> OpenSessionsAsync(TestRelay relay) =>
        (await relay.Actor<RelayMta.Engine.Hosting.ListenerKey>().Ask<InboundProtocol.ListenerStatus>(InboundProtocol.GetStatus.Instance,
            TimeSpan.FromSeconds(5))).OpenSessions;

    [Fact]
    public async Task A_slowloris_client_is_dropped_while_a_normal_client_gets_through()
    {
        await using var relay = await TestRelay.StartAsync(Secure("""
            relay-mta.limits { min-data-rate = 2000, data-rate-grace = 1s, command-timeout = 3s }
            """));
        await using var slow = await RawSmtpClient.ConnectAsync(relay.Endpoint);
        await slow.ReadReplyAsync();
        await slow.CommandAsync("EHLO slow.test");
        await slow.CommandAsync("MAIL FROM:<s@remote.test>");
        await slow.CommandAsync("RCPT TO:<bob@example.test>");
        Assert.Equal(354, (await slow.CommandAsync("DATA")).Code);
        var trickle = Task.Run(async () =>
        {
            try
            {
                for (var i = 0; i < 100; i++)
                {
                    await slow.SendAsync("x");
                    await Task.Delay(100);
                }
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
            {
                // dropped, as it should be
            }
        });

        // Meanwhile an honest client is served normally.
        using (var socket = new Socket(SocketType.Stream, ProtocolType.Tcp))
        {
            await socket.ConnectAsync(relay.Endpoint);
            using var client = Client();
            await client.ConnectAsync(socket, "mx.test", relay.Endpoint.Port, SecureSocketOptions.StartTls);
            await client.SendAsync(Message("h@remote.test", "carol@example.test"));
            await client.DisconnectAsync(true);
        }
        await relay.WaitForDeliveryAsync("carol");

        var verdict = await slow.ReadReplyAsync(TimeSpan.FromSeconds(20));
        Assert.Equal("421 4.4.2 Data arriving too slowly, closing transmission channel", verdict.Lines[^1]);
        await trickle;
        Assert.Empty(relay.Delivered("bob"));

        // A command line trickled a byte at a time does not push the command time-out back.
        await using var dribble = await RawSmtpClient.ConnectAsync(relay.Endpoint);
        await dribble.ReadReplyAsync();
        // The client would go on for 30 s; the session must be dropped long before it runs out.
        const int bytes = 150;
        var sent = 0;
        var dribbling = Task.Run(async () =>
        {
            try
            {
                for (; sent < bytes; sent++)
                {
                    await dribble.SendAsync("N");
                    await Task.Delay(200);
                }
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
            {
            }
        });
        Assert.Equal(421, (await dribble.ReadReplyAsync(TimeSpan.FromSeconds(40))).Code);
        Assert.True(Volatile.Read(ref sent) < bytes, "the session waited for the whole trickle");
        await dribble.DisposeAsync();
        await dribbling;
    }

    [Fact]
    public async Task A_client_that_talks_before_the_greeting_is_refused()
    {
        await using var relay = await TestRelay.StartAsync(Secure("relay-mta.limits.greet-delay = 700ms"));
        using (var early = new TcpClient())
        {
            await early.ConnectAsync(relay.Endpoint);
            await early.GetStream().WriteAsync("EHLO bot.test\r\n"u8.ToArray());
            var reply = await new LineReaderHelper(early.GetStream()).ReplyAsync();
            Assert.StartsWith("554 5.5.1", reply);
        }
        await using var patient = await RawSmtpClient.ConnectAsync(relay.Endpoint);
        Assert.Equal(220, (await patient.ReadReplyAsync()).Code);
        Assert.Equal(250, (await patient.CommandAsync("EHLO patient.test")).Code);
    }

    [Fact]
    public async Task Repeated_AUTH_failures_close_the_session_and_block_the_address_for_a_while()
    {
        await using var relay = await TestRelay.StartAsync(Secure("relay-mta.limits.auth-failures-per-ip = 2\nrelay-mta.auth.allow-insecure = true"));
        await using var client = await RawSmtpClient.ConnectAsync(relay.Endpoint);
        await client.ReadReplyAsync();
        Assert.Contains("250-AUTH PLAIN LOGIN", (await client.CommandAsync("EHLO guess.test")).Lines.Select(l => l.Replace("250 ", "250-", StringComparison.Ordinal)));
        var wrong = "AUTH PLAIN " + Convert.ToBase64String(Encoding.UTF8.GetBytes("\0alice\0nope"));
        Assert.Equal("535 5.7.8 Authentication credentials invalid", (await client.CommandAsync(wrong)).Lines[^1]);
        Assert.Equal(535, (await client.CommandAsync(wrong)).Code);
        Assert.Equal(421, (await client.ReadReplyAsync()).Code);
        Assert.True(await client.IsClosedAsync(TimeSpan.FromSeconds(10)));

        await using var again = await RawSmtpClient.ConnectAsync(relay.Endpoint);
        await again.ReadReplyAsync();
        await again.CommandAsync("EHLO guess.test");
        var right = "AUTH PLAIN " + Convert.ToBase64String(Encoding.UTF8.GetBytes("\0alice\0correct horse"));
        Assert.StartsWith("454 4.7.0", (await again.CommandAsync(right)).Lines[^1]);
    }

    public void Dispose()
    {
        _ca.Dispose();
        _dir.Dispose();
    }

    /// <summary>Reads whole SMTP replies from any stream (plain or TLS).</summary>
    private sealed class LineReaderHelper(Stream stream)
    {
        private readonly StringBuilder _pending = new();
        private readonly byte[] _buffer = new byte[8192];

        public async Task<string> ReplyAsync()
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            var lines = new StringBuilder();
            while (true)
            {
                var text = _pending.ToString();
                var crlf = text.IndexOf("\r\n", StringComparison.Ordinal);
                if (crlf < 0)
                {
                    var n = await stream.ReadAsync(_buffer, cts.Token);
                    if (n == 0) throw new IOException("closed; got " + lines);
                    _pending.Append(Encoding.UTF8.GetString(_buffer, 0, n));
                    continue;
                }
                var line = text[..crlf];
                _pending.Remove(0, crlf + 2);
                lines.Append(line).Append('\n');
                if (line.Length < 4 || line[3] == ' ') return lines.ToString().TrimEnd('\n');
            }
        }
    }
}
