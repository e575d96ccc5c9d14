using System.Net;
using System.Text;
using RelayMta.Protocol.Mail;
using RelayMta.Protocol.Smtp;

namespace RelayMta.Protocol.Tests.Fuzz;

/// <summary>
/// The bugs the fuzzer found, as plain examples next to the raw inputs in Regressions/ (see
/// Regressions/README.md for how each was found).
/// </summary>
public sealed class FuzzFindingSpecs
{
    [Theory]
    [InlineData(" ")]
    [InlineData(" mx.example")]
    [InlineData("  ")]
    public void Should_not_take_an_empty_first_word_for_a_HELO_domain(string argument)
    {
        Assert.False(CommandParser.TryParseHelo(Encoding.ASCII.GetBytes(argument), out var domain));
        Assert.True(domain.IsEmpty);
    }

    [Theory]
    [InlineData("FROM:<a@b.example> AUTH=\u0080")]
    [InlineData("FROM:<a@b.example> AUTH=<\u00c3\u00a9@b.example>")]
    [InlineData("FROM:<a@b.example> SIZE=10 AUTH=\u00ff")]
    public void Should_refuse_8bit_parameter_values_without_SMTPUTF8(string argument)
    {
        Assert.Same(Replies.SyntaxError, CommandParser.ParseMailFrom(Encoding.Latin1.GetBytes(argument), out _, out _));
    }

    [Fact]
    public void Should_refuse_a_parameter_value_that_is_not_UTF8_even_with_SMTPUTF8()
    {
        Assert.Same(Replies.SyntaxError, CommandParser.ParseMailFrom(Encoding.Latin1.GetBytes("FROM:<a@b.example> SMTPUTF8 AUTH=\u00ff"), out _, out _));
    }

    [Theory]
    [InlineData("FROM:<a@b.example> SMTPUTF8 AUTH=<\u00e9@b.example>")]
    [InlineData("FROM:<a@b.example> AUTH=<\u00e9@b.example> SMTPUTF8")]
    public void Should_accept_UTF8_parameter_values_under_SMTPUTF8(string argument)
    {
        Assert.Null(CommandParser.ParseMailFrom(Encoding.UTF8.GetBytes(argument), out _, out var parameters));
        Assert.True(parameters.SmtpUtf8);
        Assert.True(parameters.HasAuth);
    }

    [Theory]
    [InlineData("FROM:<@â¬:0@0>")]
    [InlineData("FROM:<@a.example,@bÃ¼cher.example:u@c.example>")]
    public void Should_flag_8bit_bytes_in_a_source_route_of_MAIL(string argument)
    {
        // The route is ignored, but its bytes were in the command: without SMTPUTF8 the session
        // refuses a flagged path with 553 5.6.7 instead of accepting it.
        Assert.Null(CommandParser.ParseMailFrom(Encoding.Latin1.GetBytes(argument), out var path, out var parameters));
        Assert.False(parameters.SmtpUtf8);
        Assert.True(path.HasNonAscii);
    }

    [Theory]
    [InlineData("TO:<@bÃ¼cher.example:u@c.example>", false)]
    [InlineData("TO:<@bÃ¼cher.example:Postmaster>", true)]
    public void Should_flag_8bit_bytes_in_a_source_route_of_RCPT(string argument, bool postmaster)
    {
        Assert.Null(CommandParser.ParseRcptTo(Encoding.Latin1.GetBytes(argument), out var path));
        Assert.Equal(postmaster, path.IsPostmaster);
        Assert.True(path.HasNonAscii);
    }

    [Fact]
    public void Should_refuse_a_source_route_that_is_not_UTF8()
    {
        Assert.Same(Replies.BadRecipientSyntax, CommandParser.ParseRcptTo(Encoding.Latin1.GetBytes("TO:<@bücher.example:u@c.example>"), out _));
    }

    [Fact]
    public void Should_not_cut_a_client_word_inside_a_surrogate_pair()
    {
        var word = new string('0', 255) + "\U0001F600"; // the pair would be characters 256 and 257
        var field = ReceivedHeader.Build("mx", IPAddress.Loopback, "relay.example", "ESMTP", "Q1", null, DateTimeOffset.UnixEpoch, tlsComment: word);
        Assert.Contains("(" + new string('0', 255) + ")", field);
        Assert.DoesNotContain(field, char.IsSurrogate);
        Assert.Equal("Return-Path: <" + new string('0', 255) + ">\r\n", ReceivedHeader.ReturnPath(word));
    }

    [Theory]
    [InlineData("fe80::1", 2, "[IPv6:fe80::1]")]
    [InlineData("fe80::", 1, "[IPv6:fe80::]")]
    [InlineData("2001:db8::1", 0, "[IPv6:2001:db8::1]")]
    public void Should_leave_the_zone_out_of_an_IPv6_address_literal(string address, long scope, string expected)
    {
        var ip = IPAddress.Parse(address);
        if (scope != 0) ip.ScopeId = scope;
        Assert.Equal(expected, ReceivedHeader.AddressLiteral(ip));
        Assert.Contains("from mx (" + expected + ")", ReceivedHeader.Build("mx", ip, "relay.example", "ESMTP", "Q1", null, DateTimeOffset.UnixEpoch));
    }
}
