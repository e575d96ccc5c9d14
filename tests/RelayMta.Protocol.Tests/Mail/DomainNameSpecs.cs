using RelayMta.Protocol.Mail;

namespace RelayMta.Protocol.Tests.Mail;

public sealed class DomainNameSpecs
{
    [Theory]
    [InlineData("example.com", "example.com")]
    [InlineData("Example.COM", "example.com")]
    [InlineData("example.com.", "example.com")]
    [InlineData("EXAMPLE.COM.", "example.com")]
    [InlineData("bücher.example", "xn--bcher-kva.example")]
    [InlineData("Bücher.Example", "xn--bcher-kva.example")]
    [InlineData("BÜCHER.EXAMPLE", "xn--bcher-kva.example")]  // the U-label must be case-folded before Punycode
    [InlineData("bücher.example.", "xn--bcher-kva.example")]
    [InlineData("xn--bcher-kva.example", "xn--bcher-kva.example")]
    [InlineData("XN--BCHER-KVA.EXAMPLE", "xn--bcher-kva.example")]
    [InlineData("例子.广告", "xn--fsqu00a.xn--4rr70v")]
    [InlineData("[192.0.2.1]", "[192.0.2.1]")]
    [InlineData("[IPv6:2001:DB8::1]", "[ipv6:2001:db8::1]")]
    [InlineData("", "")]
    public void Should_normalise_a_domain_to_lower_case_ASCII(string domain, string expected)
    {
        Assert.Equal(expected, DomainName.Normalize(domain));
    }

    [Fact]
    public void Should_give_the_same_key_to_every_spelling_of_one_IDN_domain()
    {
        var spellings = new[] { "bücher.example", "BÜCHER.example", "Bücher.EXAMPLE.", "xn--bcher-kva.example", "XN--BCHER-KVA.example." };

        Assert.Single(spellings.Select(DomainName.Normalize).Distinct());
    }

    [Theory]
    [InlineData("a..ü")]
    [InlineData(".ü")]
    [InlineData("Ü..EXAMPLE")]
    public void Should_not_throw_for_a_domain_IDNA_refuses(string domain)
    {
        var normalized = DomainName.Normalize(domain);

        Assert.Equal(domain.ToLowerInvariant(), normalized);
    }

    [Theory]
    [InlineData("mx.example.com", true)]
    [InlineData("mx.example.com.", true)]
    [InlineData("localhost", true)]
    [InlineData("a-b.example", true)]
    [InlineData("_dmarc.example", true)]
    [InlineData("bücher.example", true)]
    [InlineData("", false)]
    [InlineData(".", false)]
    [InlineData("a..b", false)]
    [InlineData("-a.example", false)]
    [InlineData("a-.example", false)]
    [InlineData("a b.example", false)]
    [InlineData("a@b.example", false)]
    public void Should_tell_a_plausible_host_name(string name, bool valid)
    {
        Assert.Equal(valid, DomainName.IsValidHostName(name));
    }

    [Fact]
    public void Should_limit_host_names_to_253_characters_and_labels_to_63()
    {
        var label = new string('a', 63);
        var name253 = string.Join('.', label, label, label, new string('b', 61));

        Assert.True(DomainName.IsValidHostName(name253));
        Assert.False(DomainName.IsValidHostName(name253 + "b"));
        Assert.False(DomainName.IsValidHostName(new string('a', 64) + ".example"));
    }
}
