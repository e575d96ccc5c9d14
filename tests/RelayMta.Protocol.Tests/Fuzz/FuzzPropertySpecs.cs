using System.Reflection;
using System.Text;
using CsCheck;
using RelayMta.Protocol.Fuzzing;
using RelayMta.Protocol.Smtp;

namespace RelayMta.Protocol.Tests.Fuzz;

/// <summary>
/// The fuzz targets on CsCheck-generated inputs, bounded so that the whole class runs in a few
/// seconds of the normal suite; the long, coverage-guided run is tests/RelayMta.Fuzz/fuzz/run.sh.
/// Plus the input-hardening properties of the security issue, stated directly.
/// </summary>
public sealed class FuzzPropertySpecs
{
    /// <summary>Inputs the way the harness builds them: header bytes, then tokens, random bytes, seed pieces and runs.</summary>
    private static Gen<byte[]> Inputs(string name)
    {
        var target = FuzzTargets.Find(name)!;
        var headerLength = name switch { "command" => 0, "reply" => 1, "header" => 27, _ => 2 };
        var payloads = target.Seeds.Select(s => s.Length > headerLength ? s[headerLength..] : []).ToArray();
        var piece = Gen.Frequency(
            (6, Gen.OneOf(target.Tokens)),
            (2, Gen.Byte.Select(b => new[] { b })),
            (1, Gen.OneOf(payloads)),
            (1, Gen.Select(Gen.Char["aZ0.-_ "], Gen.Int[1, 80], (c, n) => Enumerable.Repeat((byte)c, n).ToArray())));
        return Gen.Select(Gen.Byte.Array[headerLength], piece.Array[0, 24], (h, ps) => h.Concat(ps.SelectMany(p => p)).ToArray());
    }

    private static string Print(byte[] input) => Invariant.Show(input);

    [Theory]
    [InlineData("command", 20_000)]
    [InlineData("line", 500)]
    [InlineData("data", 1500)]
    [InlineData("reply", 1000)]
    [InlineData("stuff", 1500)]
    [InlineData("header", 600)]
    public void Should_hold_the_fuzz_invariants_on_generated_inputs(string target, int iterations)
    {
        var run = FuzzTargets.Find(target)!.Run;
        Inputs(target).Sample(input => run(input), iter: iterations, print: Print);
    }

    // ------------------------------------------------------------ input hardening, stated directly

    private static readonly Gen<string> Atom = Gen.Char["abcxyzABC0189-_+"].Array[1, 10].Select(c => new string(c));
    private static readonly Gen<string> LocalPart = Atom.Array[1, 3].Select(a => string.Join(".", a));
    private static readonly Gen<string> Label = Gen.Select(Gen.Char["abcz09"], Gen.Char["abcz09-"].Array[0, 8], Gen.Char["abcz09"],
        (a, m, z) => a + new string(m) + z);
    private static readonly Gen<string> Domain = Label.Array[1, 4].Select(l => string.Join(".", l));
    private static readonly Gen<string> Mailbox = Gen.Select(LocalPart, Domain, (l, d) => l + "@" + d);

    /// <summary>Bytes a command must not carry: controls (NUL, CR, LF, TAB...) and DEL.</summary>
    private static readonly Gen<byte> Control = Gen.OneOf(Gen.Byte[0, 0x1f], Gen.Const((byte)0x7f));

    private static byte[] Insert(byte[] bytes, int at, params byte[] inserted) =>
        bytes[..(at % (bytes.Length + 1))].Concat(inserted).Concat(bytes[(at % (bytes.Length + 1))..]).ToArray();

    [Fact]
    public void Should_refuse_a_MAIL_or_RCPT_argument_holding_a_control_byte_with_a_5xx_and_an_enhanced_code()
    {
        Gen.Select(Mailbox, Control, Gen.Int[0, 1000], Gen.Bool).Sample((mailbox, control, at, sender) =>
        {
            var argument = Insert(Encoding.ASCII.GetBytes((sender ? "FROM:<" : "TO:<") + mailbox + ">" + (sender ? " SIZE=10" : "")), at, control);
            var reply = sender ? CommandParser.ParseMailFrom(argument, out _, out _) : CommandParser.ParseRcptTo(argument, out _);
            Assert.NotNull(reply);
            CommandTarget.CheckRefusal(reply, sender ? "MAIL" : "RCPT");
        }, iter: 3000);
    }

    [Fact]
    public void Should_refuse_a_HELO_name_holding_a_control_byte()
    {
        Gen.Select(Domain, Control, Gen.Int[0, 1000]).Sample((domain, control, at) =>
        {
            var name = Encoding.ASCII.GetBytes(domain);
            Assert.False(CommandParser.TryParseHelo(Insert(name, 1 + at % name.Length, control), out _));
        }, iter: 2000);
    }

    [Fact]
    public void Should_let_8bit_bytes_through_MAIL_only_with_SMTPUTF8_or_where_the_session_refuses_them()
    {
        var eightBit = Gen.OneOf(Gen.Byte[0x80, 0xff].Select(b => new[] { b }), Gen.Const("é"u8.ToArray()), Gen.Const("€"u8.ToArray()));
        Gen.Select(Mailbox, eightBit, Gen.Int[0, 1000], Gen.OneOf(Gen.Const(""), Gen.Const(" AUTH=<>"), Gen.Const(" SIZE=5 BODY=8BITMIME")))
            .Sample((mailbox, inserted, at, parameters) =>
            {
                var argument = Insert(Encoding.ASCII.GetBytes("FROM:<" + mailbox + ">" + parameters), at, inserted);
                var reply = CommandParser.ParseMailFrom(argument, out var path, out var p);
                if (reply is not null)
                {
                    CommandTarget.CheckRefusal(reply, "MAIL");
                    return;
                }
                // Accepted without SMTPUTF8: only because the path is flagged, which the session refuses with 553 5.6.7.
                Assert.False(p.SmtpUtf8);
                Assert.True(path.HasNonAscii, $"8-bit MAIL argument accepted unflagged: {Invariant.Show(argument)}");
            }, iter: 3000);
    }

    [Fact]
    public void Should_refuse_over_long_paths_local_parts_and_domains_with_a_5xx()
    {
        Gen.Select(Gen.Int[65, 300], Gen.Int[0, 2]).Sample((length, which) =>
        {
            var path = which switch
            {
                0 => new string('a', length) + "@b.example",                                          // local part > 64
                1 => "a@" + string.Join(".", Enumerable.Repeat(new string('d', 60), 4 + length / 61)), // domain or path too long
                _ => "a@" + new string('d', length) + ".example",                                      // label > 63
            };
            foreach (var argument in new[] { "FROM:<" + path + ">", "TO:<" + path + ">" })
            {
                var bytes = Encoding.ASCII.GetBytes(argument);
                var reply = argument[0] == 'F' ? CommandParser.ParseMailFrom(bytes, out _, out _) : CommandParser.ParseRcptTo(bytes, out _);
                Assert.NotNull(reply);
                CommandTarget.CheckRefusal(reply, argument[..4]);
            }
        }, iter: 500);
    }

    [Fact]
    public void Should_still_accept_well_formed_MAIL_and_RCPT()
    {
        var parameters = Gen.OneOf(Gen.Const(""), Gen.Const(" SIZE=1000"), Gen.Const(" BODY=8BITMIME"), Gen.Const(" SMTPUTF8 AUTH=<>"),
            Gen.Const(" body=7bit size=0"));
        Gen.Select(Mailbox, parameters).Sample((mailbox, p) =>
        {
            Assert.Null(CommandParser.ParseMailFrom(Encoding.ASCII.GetBytes("FROM:<" + mailbox + ">" + p), out var from, out _));
            Assert.Equal(mailbox, Encoding.ASCII.GetString(from.LocalPart) + "@" + Encoding.ASCII.GetString(from.Domain));
            Assert.Null(CommandParser.ParseRcptTo(Encoding.ASCII.GetBytes("TO:<" + mailbox + ">"), out _));
        }, iter: 2000);
    }

    [Fact]
    public void Should_give_every_refusal_in_Replies_an_enhanced_code_of_its_class()
    {
        foreach (var field in typeof(Replies).GetFields(BindingFlags.Public | BindingFlags.Static))
        {
            var reply = (SmtpReply)field.GetValue(null)!;
            if (reply.Code < 400) continue;
            Assert.True(CommandTarget.IsEnhancedCode(reply.Enhanced) && reply.Enhanced[0] - '0' == reply.Code / 100,
                $"Replies.{field.Name} ({reply}) has no enhanced code of its class");
        }
    }
}
