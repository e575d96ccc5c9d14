using System.Buffers.Binary;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;
using RelayMta.IntegrationTests.Infrastructure;

namespace RelayMta.IntegrationTests.Fixtures;

/// <summary>The test CA and the fake server's STARTTLS / implicit TLS, driven by MailKit and by raw SslStream.</summary>
public sealed class TlsFixtureSpecs
{
    private const string MxName = "mx1.remote.test";
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    [Fact]
    public void Should_make_a_CA_and_issue_a_server_certificate_that_chains_to_it()
    {
        using var ca = TestCertificates.Create();
        using var leaf = ca.Issue(MxName, "*.wild.test", "127.0.0.1", "::1");

        var caBasics = Assert.Single(ca.Certificate.Extensions.OfType<X509BasicConstraintsExtension>());
        Assert.True(caBasics.CertificateAuthority);
        Assert.Equal(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, Assert.Single(ca.Certificate.Extensions.OfType<X509KeyUsageExtension>()).KeyUsages);
        Assert.Equal("CN=RelayMta Test CA, O=RelayMta tests", ca.Certificate.Subject);
        Assert.InRange(ca.Certificate.NotBefore.ToUniversalTime(), DateTime.UtcNow.AddDays(-1).AddMinutes(-1), DateTime.UtcNow.AddHours(-23));
        Assert.InRange(ca.Certificate.NotAfter.ToUniversalTime(), DateTime.UtcNow.AddHours(23), DateTime.UtcNow.AddDays(1).AddMinutes(1));

        Assert.True(leaf.HasPrivateKey);
        Assert.Equal(ca.Certificate.Subject, leaf.Issuer);
        Assert.Equal("CN=" + MxName, leaf.Subject);
        Assert.False(Assert.Single(leaf.Extensions.OfType<X509BasicConstraintsExtension>()).CertificateAuthority);
        var eku = Assert.Single(leaf.Extensions.OfType<X509EnhancedKeyUsageExtension>());
        Assert.Equal(["1.3.6.1.5.5.7.3.1"], eku.EnhancedKeyUsages.Cast<Oid>().Select(o => o.Value));
        var san = Assert.Single(leaf.Extensions.OfType<X509SubjectAlternativeNameExtension>());
        Assert.Equal([MxName, "*.wild.test"], san.EnumerateDnsNames());
        Assert.Equal([IPAddress.Loopback, IPAddress.IPv6Loopback], san.EnumerateIPAddresses());

        Assert.Null(ca.Verify(leaf, MxName));
        Assert.Null(ca.Verify(leaf, "anything.wild.test"));
        Assert.Null(ca.Verify(leaf, "127.0.0.1"));
        Assert.StartsWith("name:", ca.Verify(leaf, "other.test"));
        Assert.StartsWith("name:", ca.Verify(leaf, "127.0.0.2"));
        using var stranger = TestCertificates.Create("Some Other CA");
        Assert.StartsWith("chain:", stranger.Verify(leaf, MxName));
        using var strangersLeaf = stranger.Issue(MxName);
        Assert.StartsWith("chain:", ca.Verify(strangersLeaf, MxName));
        using var second = ca.Issue(MxName);
        Assert.NotEqual(leaf.SerialNumber, second.SerialNumber);
    }

    [Theory]
    [InlineData(TestKeyType.EcdsaP256, "ECDSA")]
    [InlineData(TestKeyType.Rsa2048, "RSA")]
    public async Task Should_serve_a_certificate_loaded_from_PEM_files_to_a_client_trusting_a_CA_loaded_from_PEM(TestKeyType keyType, string algorithm)
    {
        using var dir = new TempDirectory();
        using (var ca = TestCertificates.Create(keyType: keyType))
        using (var issued = ca.Issue(MxName))
        {
            issued.WritePem(dir.Combine("server.crt"), dir.Combine("server.key"));
            ca.WriteCaPem(dir.Combine("ca.pem"));
        }
        var certPem = await File.ReadAllTextAsync(dir.Combine("server.crt"));
        var keyPem = await File.ReadAllTextAsync(dir.Combine("server.key"));
        Assert.StartsWith("-----BEGIN CERTIFICATE-----\n", certPem);
        Assert.StartsWith("-----BEGIN PRIVATE KEY-----\n", keyPem); // PKCS#8, not "EC PRIVATE KEY" / "RSA PRIVATE KEY"
        Assert.StartsWith("-----BEGIN CERTIFICATE-----\n", await File.ReadAllTextAsync(dir.Combine("ca.pem")));

        // What the relay will do with relay-mta.tls.certificate / .key and outbound.tls-ca-file.
        using var leaf = X509Certificate2.CreateFromPemFile(dir.Combine("server.crt"), dir.Combine("server.key"));
        var roots = new X509Certificate2Collection();
        roots.ImportFromPemFile(dir.Combine("ca.pem"));
        Assert.True(leaf.HasPrivateKey);
        Assert.Equal(algorithm, leaf.PublicKey.Oid.Value switch { "1.2.840.10045.2.1" => "ECDSA", "1.2.840.113549.1.1.1" => "RSA", var other => other });

        // Used as is, no PKCS#12 round trip: fine for SslStream on Linux.
        await using var server = FakeSmtpServer.Start(IPAddress.Loopback, 0, new FakeSmtpBehavior { TlsCertificate = leaf });
        var refused = new List<string>();
        using (var client = await MailKitAsync(server, MxName, SecureSocketOptions.StartTls, Trusting(Assert.Single(roots), MxName, refused)))
        {
            Assert.True(client.IsEncrypted);
            await client.SendAsync(Message());
            await client.DisconnectAsync(true);
        }

        Assert.Empty(refused);
        Assert.NotNull(Assert.Single(server.Messages).Tls);
        Assert.Equal((1, 0), (server.TlsHandshakes, server.TlsFailures));
    }

    [Fact]
    public async Task Should_upgrade_with_STARTTLS_for_a_MailKit_client_trusting_the_test_CA_and_record_the_TLS()
    {
        using var ca = TestCertificates.Create();
        using var leaf = ca.Issue(MxName);
        await using var server = FakeSmtpServer.Start(IPAddress.Loopback, 0, new FakeSmtpBehavior { TlsCertificate = leaf });

        var refused = new List<string>();
        using (var client = await MailKitAsync(server, MxName, SecureSocketOptions.StartTls, Trusting(ca.Certificate, MxName, refused)))
        {
            Assert.True(client.IsSecure);
            Assert.True(client.SslProtocol is SslProtocols.Tls12 or SslProtocols.Tls13, client.SslProtocol.ToString());
            await client.SendAsync(Message());
            await client.DisconnectAsync(true);
        }

        Assert.Empty(refused);
        var message = Assert.Single(server.Messages);
        Assert.Matches(@"^Tls1[23] TLS_\w+$", message.Tls);
        Assert.Equal(MxName, message.TlsServerName); // SNI
        Assert.Equal(message.Tls, server.TlsOn(1));
        Assert.Equal(["EHLO relay.test", "STARTTLS", "EHLO relay.test", "MAIL", "RCPT", "DATA", "QUIT"],
            server.CommandsOn(1).Select(c => c.StartsWith("EHLO", StringComparison.Ordinal) ? c : c.Split(' ')[0]));
        Assert.Equal((1, 0), (server.TlsHandshakes, server.TlsFailures));
        Assert.Contains("Subject: fixture", message.Text);
        await Eventually.TrueAsync(() => server.CurrentConnections == 0, Wait);
        Assert.Empty(server.Errors);
    }

    [Fact]
    public async Task Should_fail_verification_of_a_certificate_issued_for_another_name()
    {
        using var ca = TestCertificates.Create();
        using var leaf = ca.Issue("other.remote.test");
        await using var server = FakeSmtpServer.Start(IPAddress.Loopback, 0, new FakeSmtpBehavior { TlsCertificate = leaf });

        var refused = new List<string>();
        using (var client = NewClient(Trusting(ca.Certificate, MxName, refused)))
        {
            await Assert.ThrowsAsync<SslHandshakeException>(() => ConnectAsync(client, server, MxName, SecureSocketOptions.StartTls));
            Assert.False(client.IsConnected);
        }

        Assert.StartsWith("name:", Assert.Single(refused));
        await Eventually.TrueAsync(() => server.TlsFailures == 1, Wait, () => $"failures {server.TlsFailures}");
        Assert.Equal(0, server.TlsHandshakes);
        Assert.Null(server.TlsOn(1));
        Assert.Empty(server.Messages);
        Assert.Equal(["EHLO relay.test", "STARTTLS"], server.CommandsOn(1));
        // On Linux the client checks the certificate after the handshake completed: the server sees it leave without a word.
        Assert.Contains("after the handshake without sending anything", Assert.Single(server.TlsFailureReasons));

        // The same server is fine for a client that expects that name.
        var refusedAgain = new List<string>();
        using (var client = await MailKitAsync(server, "other.remote.test", SecureSocketOptions.StartTls, Trusting(ca.Certificate, "other.remote.test", refusedAgain)))
        {
            await client.SendAsync(Message());
        }
        Assert.Empty(refusedAgain);
        Assert.Equal(1, server.TlsHandshakes);
        Assert.Equal(2, Assert.Single(server.Messages).ConnectionId);
        await Eventually.TrueAsync(() => server.CurrentConnections == 0, Wait);
        Assert.Empty(server.Errors);
    }

    [Fact]
    public async Task Should_fail_verification_of_a_certificate_from_an_untrusted_CA()
    {
        using var trusted = TestCertificates.Create();
        using var other = TestCertificates.Create("RelayMta Test CA"); // same name, different key
        using var leaf = other.Issue(MxName);
        await using var server = FakeSmtpServer.Start(IPAddress.Loopback, 0, new FakeSmtpBehavior { TlsCertificate = leaf });

        var refused = new List<string>();
        using var client = NewClient(trusted.ValidationCallback(MxName, refused.Add));
        await Assert.ThrowsAsync<SslHandshakeException>(() => ConnectAsync(client, server, MxName, SecureSocketOptions.StartTls));

        Assert.StartsWith("chain:", Assert.Single(refused));
        await Eventually.TrueAsync(() => server.TlsFailures == 1, Wait, () => $"failures {server.TlsFailures}");
        Assert.Equal(0, server.TlsHandshakes);
        Assert.Empty(server.Messages);
    }

    [Fact]
    public async Task Should_speak_implicit_TLS_from_the_first_byte_with_SslOnConnect()
    {
        using var ca = TestCertificates.Create();
        using var leaf = ca.Issue(MxName, "127.0.0.1");
        await using var server = FakeSmtpServer.Start(IPAddress.Loopback, 0, new FakeSmtpBehavior { TlsCertificate = leaf, ImplicitTls = true });

        // By IP address this time: no SNI, and the name checked is the iPAddress SAN entry.
        var refused = new List<string>();
        using (var client = await MailKitAsync(server, "127.0.0.1", SecureSocketOptions.SslOnConnect, ca.ValidationCallback("127.0.0.1", refused.Add)))
        {
            Assert.True(client.IsEncrypted);
            Assert.False(client.Capabilities.HasFlag(SmtpCapabilities.StartTLS));
            await client.SendAsync(Message());
            await client.DisconnectAsync(true);
        }
        Assert.Empty(refused);
        var message = Assert.Single(server.Messages);
        Assert.Matches(@"^Tls1[23] ", message.Tls);
        Assert.Null(message.TlsServerName);
        Assert.Equal("EHLO relay.test", server.CommandsOn(1)[0]);
        Assert.DoesNotContain("STARTTLS", server.CommandsOn(1));

        // A plain-text client gets no banner, just a closed connection, and a counted failure.
        using (var plain = new TcpClient())
        {
            await plain.ConnectAsync(server.Endpoint);
            var stream = plain.GetStream();
            await stream.WriteAsync("EHLO relay.test\r\n"u8.ToArray());
            var received = await ReadToEndAsync(stream, Wait);
            Assert.DoesNotContain("220", Encoding.ASCII.GetString(received));
        }
        await Eventually.TrueAsync(() => server.TlsFailures == 1, Wait, () => $"failures {server.TlsFailures}");
        Assert.Equal(1, server.TlsHandshakes);
        Assert.Empty(server.CommandsOn(2));
        Assert.Empty(server.Errors);
    }

    [Fact]
    public async Task Should_report_ImplicitTls_without_a_certificate_as_a_fixture_error()
    {
        await using var server = FakeSmtpServer.Start(IPAddress.Loopback, 0, new FakeSmtpBehavior { ImplicitTls = true });
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(server.Endpoint);

        Assert.Empty(await ReadToEndAsync(tcp.GetStream(), Wait)); // closed at once, nothing said
        await Eventually.TrueAsync(() => server.Errors.Count == 1, Wait);
        Assert.IsType<InvalidOperationException>(server.Errors[0]);
        Assert.Equal((0, 0), (server.TlsHandshakes, server.TlsFailures));
    }

    [Fact]
    public async Task Should_advertise_STARTTLS_only_before_TLS_and_need_a_new_EHLO_after_it()
    {
        using var ca = TestCertificates.Create();
        using var leaf = ca.Issue(MxName);
        await using var server = FakeSmtpServer.Start(IPAddress.Loopback, 0, new FakeSmtpBehavior { TlsCertificate = leaf });
        await using var wire = await WireSession.ConnectAsync(server.Endpoint);

        Assert.Equal(220, (await wire.ReadReplyAsync()).Code);
        Assert.Equal(503, (await wire.CommandAsync("STARTTLS")).Code); // EHLO first
        var ehlo = await wire.CommandAsync("EHLO relay.test");
        Assert.Equal("250 STARTTLS", ehlo.Lines[^1]);
        Assert.Equal(250, (await wire.CommandAsync("MAIL FROM:<a@sender.test>")).Code);
        Assert.Equal(503, (await wire.CommandAsync("STARTTLS")).Code); // not inside a transaction
        Assert.Equal(250, (await wire.CommandAsync("RSET")).Code);
        Assert.Equal(501, (await wire.CommandAsync("STARTTLS now")).Code);
        var go = await wire.CommandAsync("STARTTLS");
        Assert.Equal("220 2.0.0 Ready to start TLS", go.Lines[0]);

        var ssl = await wire.StartTlsAsync(MxName, ca.ValidationCallback(MxName), SslProtocols.Tls13);
        Assert.Equal(SslProtocols.Tls13, ssl.SslProtocol);

        // A fresh session: the old EHLO is forgotten, STARTTLS is not offered again.
        Assert.Equal(503, (await wire.CommandAsync("MAIL FROM:<a@sender.test>")).Code);
        var again = await wire.CommandAsync("EHLO relay.test");
        Assert.Equal(250, again.Code);
        Assert.DoesNotContain(again.Lines, l => l.Contains("STARTTLS", StringComparison.Ordinal));
        Assert.Equal(ehlo.Lines.Count - 1, again.Lines.Count);
        Assert.Equal(503, (await wire.CommandAsync("STARTTLS")).Code); // already active
        Assert.Equal(250, (await wire.CommandAsync("MAIL FROM:<a@sender.test>")).Code);
        Assert.Equal(250, (await wire.CommandAsync("RCPT TO:<b@remote.test>")).Code);
        Assert.Equal(354, (await wire.CommandAsync("DATA")).Code);
        Assert.Equal(250, (await wire.CommandAsync("Subject: over tls\r\n\r\nhi\r\n.")).Code);
        Assert.Equal(221, (await wire.CommandAsync("QUIT")).Code);

        var message = Assert.Single(server.Messages);
        Assert.StartsWith("Tls13 TLS_", message.Tls);
        Assert.Equal("Subject: over tls\r\n\r\nhi\r\n", message.Text);
        Assert.Equal(MxName, message.TlsServerName);
    }

    [Fact]
    public async Task Should_drop_plain_text_commands_pipelined_after_STARTTLS()
    {
        using var ca = TestCertificates.Create();
        using var leaf = ca.Issue(MxName);
        await using var server = FakeSmtpServer.Start(IPAddress.Loopback, 0, new FakeSmtpBehavior { TlsCertificate = leaf });
        await using var wire = await WireSession.ConnectAsync(server.Endpoint);
        await wire.ReadReplyAsync();
        await wire.CommandAsync("EHLO relay.test");

        // CVE-2011-0411: what follows STARTTLS in the same packet must not run inside the TLS session.
        await wire.SendAsync("STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\n");
        Assert.Equal(220, (await wire.ReadReplyAsync()).Code);
        await wire.StartTlsAsync(MxName, ca.ValidationCallback(MxName));
        Assert.Equal(250, (await wire.CommandAsync("EHLO relay.test")).Code);
        Assert.Equal(250, (await wire.CommandAsync("MAIL FROM:<a@sender.test>")).Code); // would be 503 "nested MAIL" had the injected one run

        Assert.Equal(["EHLO relay.test", "STARTTLS", "EHLO relay.test", "MAIL FROM:<a@sender.test>"], server.CommandsOn(1));
        Assert.Equal(1, server.Transactions);
    }

    [Fact]
    public async Task Should_answer_StartTlsReply_instead_and_carry_on_in_plain_text()
    {
        using var ca = TestCertificates.Create();
        using var leaf = ca.Issue(MxName);
        var behavior = new FakeSmtpBehavior { TlsCertificate = leaf, StartTlsReply = "454 4.7.0 TLS not available due to temporary reason" };
        await using var server = FakeSmtpServer.Start(IPAddress.Loopback, 0, behavior);

        await using (var wire = await WireSession.ConnectAsync(server.Endpoint))
        {
            await wire.ReadReplyAsync();
            Assert.Contains("250 STARTTLS", (await wire.CommandAsync("EHLO relay.test")).Lines);
            Assert.Equal(454, (await wire.CommandAsync("STARTTLS")).Code);
            Assert.Equal(250, (await wire.CommandAsync("MAIL FROM:<a@sender.test>")).Code);
            Assert.Equal(250, (await wire.CommandAsync("RCPT TO:<b@remote.test>")).Code);
            Assert.Equal(354, (await wire.CommandAsync("DATA")).Code);
            Assert.Equal(250, (await wire.CommandAsync("Subject: plain\r\n\r\n.")).Code);
        }
        Assert.Null(Assert.Single(server.Messages).Tls);
        Assert.Equal((0, 0), (server.TlsHandshakes, server.TlsFailures));

        // Once it is cleared, the same server upgrades (MailKit insists on TLS with StartTls).
        behavior.StartTlsReply = null;
        using (var client = await MailKitAsync(server, MxName, SecureSocketOptions.StartTls, ca.ValidationCallback(MxName)))
        {
            await client.SendAsync(Message());
        }
        Assert.Equal(1, server.TlsHandshakes);
        Assert.NotNull(server.Messages[^1].Tls);
    }

    [Theory]
    [InlineData(SslProtocols.Tls12)]
    [InlineData(SslProtocols.Tls13)]
    public async Task Should_negotiate_the_TLS_version_a_raw_SslStream_client_asks_for(SslProtocols protocol)
    {
        using var ca = TestCertificates.Create();
        using var leaf = ca.Issue(MxName);
        await using var server = FakeSmtpServer.Start(IPAddress.Loopback, 0, new FakeSmtpBehavior { TlsCertificate = leaf, ImplicitTls = true });
        await using var wire = await WireSession.ConnectAsync(server.Endpoint);

        var ssl = await wire.StartTlsAsync(MxName, ca.ValidationCallback(MxName), protocol);
        Assert.Equal(220, (await wire.ReadReplyAsync()).Code);

        Assert.Equal(protocol, ssl.SslProtocol);
        Assert.Null(server.TlsOn(1)); // established, as the server counts it, once the client says something over it
        Assert.Equal(250, (await wire.CommandAsync("NOOP")).Code);
        Assert.StartsWith(protocol + " TLS_", server.TlsOn(1));
        Assert.Equal((1, 0), (server.TlsHandshakes, server.TlsFailures));
    }

    [Fact]
    public async Task Should_count_a_failed_handshake_when_the_server_is_limited_to_a_version_the_client_lacks()
    {
        using var ca = TestCertificates.Create();
        using var leaf = ca.Issue(MxName);
        var behavior = new FakeSmtpBehavior { TlsCertificate = leaf, ImplicitTls = true, TlsProtocols = SslProtocols.Tls13 };
        await using var server = FakeSmtpServer.Start(IPAddress.Loopback, 0, behavior);
        await using var wire = await WireSession.ConnectAsync(server.Endpoint);

        await Assert.ThrowsAsync<System.Security.Authentication.AuthenticationException>(() => wire.StartTlsAsync(MxName, ca.ValidationCallback(MxName), SslProtocols.Tls12));

        await Eventually.TrueAsync(() => server.TlsFailures == 1, Wait, () => $"failures {server.TlsFailures}");
        Assert.Equal(0, server.TlsHandshakes);
        await Eventually.TrueAsync(() => server.CurrentConnections == 0, Wait);
        Assert.Empty(server.Errors);
    }

    /// <summary>
    /// TLS 1.0/1.1 refused. A .NET SslStream client cannot be used for this on OpenSSL 3 (it will not even send a
    /// TLS 1.0/1.1 ClientHello at the default security level; it aborts locally), so the ClientHello is built by hand:
    /// the same hello with version 1.2 gets a ServerHello, with 1.0 or 1.1 a protocol_version alert.
    /// </summary>
    [Theory]
    [InlineData(0x0301, false)]
    [InlineData(0x0302, false)]
    [InlineData(0x0303, true)]
    public async Task Should_refuse_TLS_1_0_and_1_1_ClientHellos_and_answer_TLS_1_2(int version, bool accepted)
    {
        using var ca = TestCertificates.Create();
        using var leaf = ca.Issue(MxName);
        await using var server = FakeSmtpServer.Start(IPAddress.Loopback, 0, new FakeSmtpBehavior { TlsCertificate = leaf, ImplicitTls = true });
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(server.Endpoint);
        var stream = tcp.GetStream();

        await stream.WriteAsync(ClientHello((ushort)version));
        var header = await ReadExactlyOrEofAsync(stream, 5, Wait);

        if (accepted)
        {
            Assert.Equal(5, header.Length);
            Assert.Equal(0x16, header[0]); // handshake record
            var body = await ReadExactlyOrEofAsync(stream, 6, Wait);
            Assert.Equal(2, body[0]); // ServerHello
            Assert.Equal(0x0303, BinaryPrimitives.ReadUInt16BigEndian(body.AsSpan(4)));
        }
        else
        {
            // A fatal alert (OpenSSL: protocol_version), or at least no ServerHello before the close.
            if (header.Length == 5)
            {
                Assert.Equal(0x15, header[0]);
                var alert = await ReadExactlyOrEofAsync(stream, 2, Wait);
                Assert.Equal(2, alert[0]); // fatal
                Assert.Equal(70, alert[1]); // protocol_version
            }
            await Eventually.TrueAsync(() => server.TlsFailures == 1, Wait, () => $"failures {server.TlsFailures}");
        }
        tcp.Close();
        await Eventually.TrueAsync(() => server.TlsFailures == 1, Wait, () => $"failures {server.TlsFailures}"); // a half handshake fails too
        Assert.Equal(0, server.TlsHandshakes);
        Assert.Empty(server.Errors);
    }

    // --- helpers ---

    /// <summary>
    /// The validation a relay with an extra trusted CA (outbound.tls-ca-file) does: chain to <paramref name="root"/> only
    /// (CustomRootTrust), then the name. Written out here rather than via <see cref="TestCa.Verify"/>, to check that too.
    /// </summary>
    private static RemoteCertificateValidationCallback Trusting(X509Certificate2 root, string host, List<string> refused) =>
        (_, certificate, _, _) =>
        {
            if (certificate is not X509Certificate2 leaf)
            {
                refused.Add("no certificate");
                return false;
            }
            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(root);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            if (!chain.Build(leaf))
            {
                refused.Add("chain: " + string.Join(", ", chain.ChainStatus.Select(s => s.Status)));
                return false;
            }
            if (!leaf.MatchesHostname(host))
            {
                refused.Add("name: not " + host);
                return false;
            }
            return true;
        };

    private static SmtpClient NewClient(RemoteCertificateValidationCallback validation) => new()
    {
        LocalDomain = "relay.test",
        Timeout = 10_000,
        CheckCertificateRevocation = false,
        ServerCertificateValidationCallback = validation,
    };

    /// <summary>Connects to the fake server's address but names <paramref name="host"/> (for SNI and the certificate check).</summary>
    private static async Task ConnectAsync(SmtpClient client, FakeSmtpServer server, string host, SecureSocketOptions options)
    {
        var socket = new Socket(server.Endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(server.Endpoint);
            await client.ConnectAsync(socket, host, server.Endpoint.Port, options);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static async Task<SmtpClient> MailKitAsync(FakeSmtpServer server, string host, SecureSocketOptions options, RemoteCertificateValidationCallback validation)
    {
        var client = NewClient(validation);
        try
        {
            await ConnectAsync(client, server, host, options);
            return client;
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    private static MimeMessage Message()
    {
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse("a@sender.test"));
        message.To.Add(MailboxAddress.Parse("b@remote.test"));
        message.Subject = "fixture";
        message.Body = new TextPart("plain") { Text = "hello" };
        return message;
    }

    private static async Task<byte[]> ReadToEndAsync(Stream stream, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var all = new MemoryStream();
        var buffer = new byte[4096];
        try
        {
            int n;
            while ((n = await stream.ReadAsync(buffer, cts.Token)) > 0) all.Write(buffer, 0, n);
        }
        catch (IOException)
        {
            // reset by the server: also the end
        }
        return all.ToArray();
    }

    /// <summary>Up to <paramref name="count"/> bytes: fewer only when the connection ends first.</summary>
    private static async Task<byte[]> ReadExactlyOrEofAsync(Stream stream, int count, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var buffer = new byte[count];
        var got = 0;
        try
        {
            while (got < count)
            {
                var n = await stream.ReadAsync(buffer.AsMemory(got), cts.Token);
                if (n == 0) break;
                got += n;
            }
        }
        catch (IOException)
        {
        }
        return buffer[..got];
    }

    /// <summary>A minimal TLS 1.0-1.2 style ClientHello (no supported_versions, so <paramref name="version"/> is the offer).</summary>
    private static byte[] ClientHello(ushort version)
    {
        var body = new List<byte>();
        void U16(int v) => body.AddRange([(byte)(v >> 8), (byte)v]);
        U16(version);
        body.AddRange(RandomNumberGenerator.GetBytes(32));
        body.Add(0); // no session id
        int[] suites = [0xC02B, 0xC02F, 0xC009, 0xC013, 0xC00A, 0xC014, 0x009C, 0x002F, 0x0035];
        U16(suites.Length * 2);
        foreach (var s in suites) U16(s);
        body.AddRange([1, 0]); // compression: null only

        var extensions = new List<byte>();
        void Extension(int type, params byte[] data)
        {
            extensions.AddRange([(byte)(type >> 8), (byte)type, (byte)(data.Length >> 8), (byte)data.Length]);
            extensions.AddRange(data);
        }
        Extension(0x000a, 0, 4, 0x00, 0x17, 0x00, 0x1d); // supported_groups: secp256r1, x25519
        Extension(0x000b, 1, 0); // ec_point_formats: uncompressed
        Extension(0x000d, 0, 8, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01, 0x02, 0x01); // signature_algorithms
        Extension(0xff01, 0); // renegotiation_info (empty)
        U16(extensions.Count);
        body.AddRange(extensions);

        var handshake = new List<byte> { 1, (byte)(body.Count >> 16), (byte)(body.Count >> 8), (byte)body.Count };
        handshake.AddRange(body);
        var record = new List<byte> { 0x16, 0x03, 0x01, (byte)(handshake.Count >> 8), (byte)handshake.Count };
        record.AddRange(handshake);
        return record.ToArray();
    }

    /// <summary>A line-level SMTP client that can switch to TLS mid-session (RawSmtpClient stays in plain text).</summary>
    private sealed class WireSession : IAsyncDisposable
    {
        private readonly TcpClient _tcp;
        private readonly byte[] _buffer = new byte[16 * 1024];
        private Stream _stream;
        private int _start;
        private int _end;

        private WireSession(TcpClient tcp)
        {
            _tcp = tcp;
            _stream = tcp.GetStream();
        }

        public static async Task<WireSession> ConnectAsync(IPEndPoint endpoint)
        {
            var tcp = new TcpClient(endpoint.AddressFamily);
            await tcp.ConnectAsync(endpoint);
            return new WireSession(tcp);
        }

        public async Task SendAsync(string text)
        {
            await _stream.WriteAsync(Encoding.UTF8.GetBytes(text));
            await _stream.FlushAsync();
        }

        public async Task<WireReply> CommandAsync(string line)
        {
            await SendAsync(line + "\r\n");
            return await ReadReplyAsync();
        }

        /// <summary>Client side of the handshake on this connection (after a 220 to STARTTLS, or at once for implicit TLS).</summary>
        public async Task<SslStream> StartTlsAsync(string host, RemoteCertificateValidationCallback validation, SslProtocols protocols = SslProtocols.None)
        {
            Assert.Equal(_start, _end); // nothing read past the 220
            var ssl = new SslStream(_stream, leaveInnerStreamOpen: true);
            using var cts = new CancellationTokenSource(Wait);
            await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = host,
                RemoteCertificateValidationCallback = validation,
                EnabledSslProtocols = protocols,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            }, cts.Token);
            _stream = ssl;
            return ssl;
        }

        public async Task<WireReply> ReadReplyAsync()
        {
            using var cts = new CancellationTokenSource(Wait);
            var lines = new List<string>();
            while (true)
            {
                var line = await ReadLineAsync(cts.Token) ?? throw new IOException("closed while reading a reply; got: " + string.Join(" | ", lines));
                lines.Add(line);
                if (line.Length < 4 || line[3] == ' ') return new WireReply(int.Parse(line.AsSpan(0, 3)), lines);
            }
        }

        private async Task<string?> ReadLineAsync(CancellationToken ct)
        {
            while (true)
            {
                var lf = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
                if (lf >= 0)
                {
                    var line = Encoding.UTF8.GetString(_buffer, _start, lf - _start).TrimEnd('\r');
                    _start = lf + 1;
                    return line;
                }
                if (_start > 0)
                {
                    Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                    _end -= _start;
                    _start = 0;
                }
                var n = await _stream.ReadAsync(_buffer.AsMemory(_end), ct);
                if (n == 0) return null;
                _end += n;
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stream.DisposeAsync();
            _tcp.Dispose();
        }
    }
}
