using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace RelayMta.IntegrationTests.Infrastructure;

/// <summary>Key algorithm of a <see cref="TestCa"/> and of the certificates it issues.</summary>
public enum TestKeyType
{
    /// <summary>ECDSA on P-256: fast to generate (the default).</summary>
    EcdsaP256,

    /// <summary>RSA 2048 (slower to generate; for RSA cipher suites).</summary>
    Rsa2048,
}

/// <summary>
/// Certificates made inside the test process (no openssl, nothing on disk unless asked): a throwaway CA and
/// server certificates it issues. Nothing here is trusted by the machine; a client trusts the CA explicitly
/// (<see cref="TestCa.ValidationCallback"/>, or the relay's outbound tls-ca-file via <see cref="TestCa.WriteCaPem"/>).
/// </summary>
public static class TestCertificates
{
    /// <summary>A new self-signed CA, valid from a day ago for two days.</summary>
    public static TestCa Create(string name = "RelayMta Test CA", TestKeyType keyType = TestKeyType.EcdsaP256) => TestCa.Create(name, keyType);

    /// <summary>
    /// Writes a certificate with its private key as two PEM files, the way relay-mta.tls.certificate /
    /// relay-mta.tls.key expect them: "CERTIFICATE" and PKCS#8 "PRIVATE KEY" (unencrypted).
    /// Load back with <see cref="X509Certificate2.CreateFromPemFile(string, string?)"/>.
    /// </summary>
    public static void WritePem(this X509Certificate2 certificate, string certPath, string keyPath)
    {
        if (!certificate.HasPrivateKey) throw new ArgumentException("the certificate has no private key", nameof(certificate));
        File.WriteAllText(certPath, certificate.ExportCertificatePem() + "\n");
        File.WriteAllText(keyPath, ExportPrivateKeyPem(certificate) + "\n");
    }

    /// <summary>The private key as PKCS#8 "-----BEGIN PRIVATE KEY-----" PEM.</summary>
    public static string ExportPrivateKeyPem(X509Certificate2 certificate)
    {
        using AsymmetricAlgorithm key = (AsymmetricAlgorithm?)certificate.GetECDsaPrivateKey() ?? certificate.GetRSAPrivateKey()
            ?? throw new ArgumentException("the certificate has no ECDSA or RSA private key", nameof(certificate));
        return key.ExportPkcs8PrivateKeyPem();
    }

    /// <summary>True for the strings <see cref="TestCa.Issue"/> puts in iPAddress entries: dotted-quad IPv4 or IPv6.</summary>
    internal static bool TryParseIp(string name, out IPAddress address)
    {
        if (IPAddress.TryParse(name, out address!))
        {
            // IPAddress.TryParse also takes "1" or "0x7f.1"; only the usual spellings count.
            if (address.AddressFamily == AddressFamily.InterNetworkV6 ? name.Contains(':') : name.Count(c => c == '.') == 3 && name.All(c => c == '.' || char.IsAsciiDigit(c)))
                return true;
        }
        address = IPAddress.None;
        return false;
    }
}

/// <summary>
/// A self-signed test CA (BasicConstraints CA, KeyUsage KeyCertSign|CrlSign, valid now-1d .. now+1d) that
/// issues server certificates. Dispose it when done (the issued certificates are the caller's).
/// </summary>
public sealed class TestCa : IDisposable
{
    private readonly AsymmetricAlgorithm _key;

    private TestCa(X509Certificate2 certificate, AsymmetricAlgorithm key, TestKeyType keyType)
    {
        Certificate = certificate;
        _key = key;
        KeyType = keyType;
    }

    /// <summary>The CA certificate, with its private key.</summary>
    public X509Certificate2 Certificate { get; }

    public TestKeyType KeyType { get; }

    /// <summary>A new self-signed CA, valid from a day ago for two days.</summary>
    public static TestCa Create(string name = "RelayMta Test CA", TestKeyType keyType = TestKeyType.EcdsaP256)
    {
        var key = NewKey(keyType);
        var subject = new X500DistinguishedName($"CN={Escape(name)}, O=RelayMta tests");
        var request = NewRequest(subject, key);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: true, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        var now = DateTimeOffset.UtcNow;
        var certificate = request.CreateSelfSigned(Second(now.AddDays(-1)), Second(now.AddDays(1)));
        return new TestCa(certificate, key, keyType);
    }

    /// <summary>
    /// A server certificate with its private key: subject CN = the first name, a SAN with a dNSName entry per
    /// name (iPAddress for names that are IP addresses, e.g. "127.0.0.1"), EKU serverAuth, signed by this CA,
    /// valid as long as the CA.
    /// </summary>
    public X509Certificate2 Issue(params string[] dnsNames)
    {
        if (dnsNames.Length == 0) throw new ArgumentException("at least one name is needed", nameof(dnsNames));
        using var key = NewKey(KeyType);
        var request = NewRequest(new X500DistinguishedName($"CN={Escape(dnsNames[0])}"), key);
        var san = new SubjectAlternativeNameBuilder();
        foreach (var name in dnsNames)
        {
            if (TestCertificates.TryParseIp(name, out var ip)) san.AddIpAddress(ip);
            else san.AddDnsName(name);
        }
        request.CertificateExtensions.Add(san.Build(critical: false));
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, critical: true));
        var usage = KeyType == TestKeyType.Rsa2048 ? X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment : X509KeyUsageFlags.DigitalSignature;
        request.CertificateExtensions.Add(new X509KeyUsageExtension(usage, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1", "Server Authentication")], critical: false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Certificate, includeKeyIdentifier: true, includeIssuerAndSerial: false));

        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F; // positive
        serial[0] |= 0x01; // and no leading zero byte
        using var issued = request.Create(Certificate, Certificate.NotBefore.ToUniversalTime(), Certificate.NotAfter.ToUniversalTime(), serial);
        return key switch
        {
            ECDsa ec => issued.CopyWithPrivateKey(ec),
            RSA rsa => issued.CopyWithPrivateKey(rsa),
            _ => throw new InvalidOperationException(),
        };
    }

    /// <summary>Writes the CA certificate as PEM (what relay-mta.outbound.tls-ca-file takes).</summary>
    public void WriteCaPem(string path) => File.WriteAllText(path, Certificate.ExportCertificatePem() + "\n");

    /// <summary>
    /// Null when <paramref name="certificate"/> chains to this CA (and nothing else: the machine's roots do not count)
    /// and is valid for <paramref name="hostName"/> (a DNS name or IP address); otherwise why not.
    /// <paramref name="intermediates"/> are extra certificates the peer sent.
    /// </summary>
    public string? Verify(X509Certificate2 certificate, string hostName, X509Certificate2Collection? intermediates = null)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(Certificate);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ApplicationPolicy.Add(new Oid("1.3.6.1.5.5.7.3.1"));
        chain.ChainPolicy.DisableCertificateDownloads = true;
        if (intermediates is not null) chain.ChainPolicy.ExtraStore.AddRange(intermediates);
        if (!chain.Build(certificate))
            return "chain: " + string.Join("; ", chain.ChainStatus.Select(s => $"{s.Status} {s.StatusInformation.Trim()}"));
        if (!certificate.MatchesHostname(hostName, allowWildcards: true, allowCommonName: false))
            return $"name: the certificate is not valid for {hostName}";
        return null;
    }

    /// <summary>
    /// A <see cref="RemoteCertificateValidationCallback"/> (for SslStream, or MailKit's ServerCertificateValidationCallback)
    /// that accepts only certificates <see cref="Verify"/> accepts for <paramref name="hostName"/>; why a certificate
    /// was refused goes to <paramref name="refused"/>.
    /// </summary>
    public RemoteCertificateValidationCallback ValidationCallback(string hostName, Action<string>? refused = null) =>
        (_, certificate, chain, errors) =>
        {
            if (certificate is null || errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable))
            {
                refused?.Invoke("no certificate");
                return false;
            }
            // The platform's verdict (RemoteCertificateChainErrors: not a system root) is replaced by our own.
            var leaf = certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
            var extra = new X509Certificate2Collection();
            if (chain is not null)
                foreach (var element in chain.ChainElements.Skip(1))
                    extra.Add(element.Certificate);
            var error = Verify(leaf, hostName, extra);
            if (error is not null) refused?.Invoke(error);
            return error is null;
        };

    public void Dispose()
    {
        Certificate.Dispose();
        _key.Dispose();
    }

    private static AsymmetricAlgorithm NewKey(TestKeyType keyType) => keyType switch
    {
        TestKeyType.EcdsaP256 => ECDsa.Create(ECCurve.NamedCurves.nistP256),
        TestKeyType.Rsa2048 => RSA.Create(2048),
        _ => throw new ArgumentOutOfRangeException(nameof(keyType)),
    };

    private static CertificateRequest NewRequest(X500DistinguishedName subject, AsymmetricAlgorithm key) => key switch
    {
        ECDsa ec => new CertificateRequest(subject, ec, HashAlgorithmName.SHA256),
        RSA rsa => new CertificateRequest(subject, rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1),
        _ => throw new InvalidOperationException(),
    };

    /// <summary>Certificates carry whole seconds; truncate so NotBefore/NotAfter compare as written.</summary>
    private static DateTimeOffset Second(DateTimeOffset t) => new(t.Ticks - t.Ticks % TimeSpan.TicksPerSecond, TimeSpan.Zero);

    private static string Escape(string value) =>
        value.IndexOfAny([',', '+', '"', '\\', '<', '>', ';', '=']) >= 0 ? "\"" + value.Replace("\"", "\\\"", StringComparison.Ordinal) + "\"" : value;
}
