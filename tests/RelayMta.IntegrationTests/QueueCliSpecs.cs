using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using RelayMta.Admin;
using RelayMta.Cli;
using RelayMta.IntegrationTests.Infrastructure;

namespace RelayMta.IntegrationTests;

/// <summary>
/// The operator commands (<c>RelayMta queue|destination|spool …</c>): parsing and rendering checked
/// in process, then the built executable against a relay whose mail for dest.test and other.test is
/// deferred ("451 4.3.0 later") with the next attempt an hour away, so the queue stays put.
/// Exit codes are the contract: 0 ok, 1 not found, 2 usage, 3 server unreachable or refusing.
/// </summary>
public sealed class QueueCliSpecs
{
    private static readonly DateTimeOffset Now = new(2025, 11, 30, 12, 0, 0, TimeSpan.Zero);

    // ---------------------------------------------------------------- parsing

    [Fact]
    public void Should_parse_every_filter_of_queue_list_in_any_order()
    {
        var run = Assert.IsType<CliParse.Run>(CommandLine.Parse(
        [
            "queue", "--json", "list", "--destination", "dest.test", "--sender=alice", "--recipient", "bob", "--state", "held", "--min-age", "60",
            "--max-age=3600", "--page", "2", "--page-size", "10", "--url", "http://127.0.0.1:9/", "--token-file", "tok",
        ]));

        var c = run.Command;
        Assert.Equal(CliAction.QueueList, c.Action);
        Assert.True(c.Json);
        Assert.Equal(new ListOptions("dest.test", "alice", "bob", "held", 60, 3600, 2, 10), c.List);
        Assert.Equal(new Uri("http://127.0.0.1:9/"), c.Admin.Url);
        Assert.Equal("tok", c.Admin.TokenFile);
        Assert.Null(c.Admin.ConfigPath);
    }

    [Fact]
    public void Should_parse_the_three_kinds_of_retry_and_the_other_actions()
    {
        CliCommand Parse(params string[] args) => Assert.IsType<CliParse.Run>(CommandLine.Parse(args)).Command;

        Assert.Equal(("00CPBZ2JF0000", null, false), Retry(Parse("queue", "retry", "00CPBZ2JF0000")));
        Assert.Equal(((string?)null, "dest.test", false), Retry(Parse("queue", "retry", "--destination", "dest.test")));
        Assert.Equal(((string?)null, (string?)null, true), Retry(Parse("queue", "retry", "--all")));
        var delete = Parse("queue", "delete", "--bounce", "00CPBZ2JF0000", "--config", "relay.hocon");
        Assert.Equal((CliAction.QueueDelete, "00CPBZ2JF0000", true, "relay.hocon"), (delete.Action, delete.Id, delete.Bounce, delete.Admin.ConfigPath));
        Assert.False(Parse("queue", "delete", "00CPBZ2JF0000").Bounce);
        Assert.Equal((CliAction.QueueHold, "X"), (Parse("queue", "hold", "X").Action, Parse("queue", "hold", "X").Id));
        Assert.Equal(CliAction.QueueRelease, Parse("queue", "release", "X").Action);
        Assert.Equal((CliAction.DestinationSuspend, "dest.test"), (Parse("destination", "suspend", "dest.test").Action, Parse("destination", "suspend", "dest.test").Destination));
        Assert.Equal(CliAction.DestinationResume, Parse("destination", "resume", "dest.test").Action);
        var inspect = Parse("spool", "inspect", "/var/spool/relaymta", "--json");
        Assert.Equal((CliAction.SpoolInspect, "/var/spool/relaymta", true), (inspect.Action, inspect.Directory, inspect.Json));
        Assert.Equal("-odd-name", Parse("queue", "show", "--", "-odd-name").Id);

        static (string?, string?, bool) Retry(CliCommand c) => (c.Id, c.Destination, c.All);
    }

    public static TheoryData<string[]> UsageErrors => new()
    {
        new[] { "queue" },
        new[] { "queue", "frob" },
        new[] { "queue", "show" },
        new[] { "queue", "show", "A", "B" },
        new[] { "queue", "summary", "extra" },
        new[] { "queue", "retry" },
        new[] { "queue", "retry", "A", "--all" },
        new[] { "queue", "retry", "--destination", "d", "--all" },
        new[] { "queue", "list", "--state", "stuck" },
        new[] { "queue", "list", "--min-age", "-5" },
        new[] { "queue", "list", "--min-age", "ten" },
        new[] { "queue", "list", "--max-age", "1.5" },
        new[] { "queue", "list", "--page", "0" },
        new[] { "queue", "list", "--page-size", "1001" },
        new[] { "queue", "list", "--page-size" },
        new[] { "queue", "list", "--min-age", "100", "--max-age", "10" },
        new[] { "queue", "list", "--frobnicate" },
        new[] { "queue", "show", "A", "--bounce" },
        new[] { "queue", "summary", "--all" },
        new[] { "queue", "summary", "--url", "ftp://host/" },
        new[] { "queue", "summary", "--url", "127.0.0.1:8025" },
        new[] { "queue", "summary", "--json", "--json" },
        new[] { "queue", "list", "--sender", "a", "--sender", "b" },
        new[] { "queue", "list", "--sender=" },
        new[] { "destination" },
        new[] { "destination", "suspend" },
        new[] { "destination", "pause", "dest.test" },
        new[] { "spool" },
        new[] { "spool", "inspect" },
        new[] { "spool", "inspect", "DIR", "--url", "http://127.0.0.1:1/" },
        new[] { "spool", "list", "DIR" },
    };

    [Theory]
    [MemberData(nameof(UsageErrors))]
    public async Task Should_refuse_bad_usage_with_exit_2_and_the_usage_on_standard_error(string[] args)
    {
        Assert.IsType<CliParse.Error>(CommandLine.Parse(args));

        var (code, stdout, stderr) = await InProcess(args, new StubHandler());

        Assert.Equal(2, code);
        Assert.Equal("", stdout);
        Assert.StartsWith("relaymta: ", stderr);
        Assert.Contains("RelayMta queue list [--destination D]", stderr);
    }

    [Fact]
    public async Task Should_print_the_usage_on_standard_output_for_help()
    {
        var (code, stdout, stderr) = await InProcess(["queue", "--help"], new StubHandler());

        Assert.Equal((0, ""), (code, stderr));
        foreach (var words in (string[])
                 [
                     "RelayMta queue summary", "RelayMta queue show ID", "RelayMta queue retry [ID|--destination D|--all]", "RelayMta queue hold ID",
                     "RelayMta queue release ID", "RelayMta queue delete ID [--bounce]", "RelayMta destination suspend D", "RelayMta destination resume D",
                     "RelayMta spool inspect DIR", "--min-age SECONDS", "--page-size N", "--token-file FILE", "--url http://HOST:PORT",
                 ])
            Assert.Contains(words, stdout);
    }

    // ---------------------------------------------------------------- rendering

    [Theory]
    [InlineData(0, "0s")]
    [InlineData(45, "45s")]
    [InlineData(192, "3m12s")]
    [InlineData(3600, "1h00m")]
    [InlineData(3900, "1h05m")]
    [InlineData(3 * 86400 + 4 * 3600 + 59, "3d04h")]
    [InlineData(-5, "0s")]
    public void Should_write_durations_with_their_two_largest_units(int seconds, string expected) =>
        Assert.Equal(expected, QueueRenderer.Duration(TimeSpan.FromSeconds(seconds)));

    [Fact]
    public void Should_render_the_summary_as_a_table_per_destination()
    {
        var summary = new QueueSummaryDto(3, 4, Now.AddSeconds(-192),
        [
            new DestinationSummaryDto("dest.test", 2, 3, Now.AddSeconds(-192), "451 4.3.0 later", Now.AddMinutes(59), 1, false, false),
            new DestinationSummaryDto("other.test", 1, 1, Now.AddSeconds(-5), null, Now.AddSeconds(-1), 0, true, true),
        ]);

        var text = Render(c => QueueRenderer.Summary(c, Spectre.Console.TableBorder.Ascii, summary, Now));

        Assert.StartsWith("3 messages, 4 recipients queued; oldest 3m12s\n", text);
        var rows = Rows(text);
        Assert.Equal(["Destination", "Messages", "Recipients", "Oldest", "Next attempt", "Conns", "Last error", "State"], rows[0]);
        Assert.Equal(["dest.test", "2", "3", "3m12s", "in 59m00s", "1", "451 4.3.0 later", ""], Row(rows, "dest.test"));
        Assert.Equal(["other.test", "1", "1", "5s", "due", "0", "", "suspended, circuit open"], Row(rows, "other.test"));
        Assert.DoesNotContain("\u001b", text); // no colours when not a terminal
    }

    [Fact]
    public void Should_say_when_the_queue_is_empty()
    {
        Assert.Equal("the queue is empty\n", Render(c => QueueRenderer.Summary(c, Spectre.Console.TableBorder.Ascii, new QueueSummaryDto(0, 0, null, []), Now)));
        Assert.Equal("no messages match\n", Render(c => QueueRenderer.List(c, Spectre.Console.TableBorder.Ascii, new MessageListDto(0, 1, 50, []), Now)));
    }

    [Fact]
    public void Should_render_the_list_with_recipients_and_pending_state_and_a_page_line()
    {
        var longError = "451 4.3.0 " + new string('x', 200);
        var list = new MessageListDto(5, 1, 2,
        [
            new MessageSummaryDto("00CPBZ2JF0000", "alice@example.test", 2, 1, Now.AddMinutes(-10), 179, "deferred", Now.AddHours(1), 2, ["dest.test"], longError),
            new MessageSummaryDto("00CPBZ2JF0001", "", 1, 1, Now.AddSeconds(-3), 10, "held", Now.AddHours(1), 0, ["dest.test"], "[red]not markup[/]"),
        ]);

        var text = Render(c => QueueRenderer.List(c, Spectre.Console.TableBorder.Ascii, list, Now));

        var rows = Rows(text);
        Assert.Equal(["ID", "Age", "Sender", "Rcpts/pending", "State", "Next attempt", "Last error"], rows[0]);
        var first = Row(rows, "00CPBZ2JF0000");
        Assert.Equal(["00CPBZ2JF0000", "10m00s", "alice@example.test", "2/1", "deferred", "in 1h00m"], first[..6]);
        Assert.Equal(QueueRenderer.ErrorWidth, first[6].Length);
        Assert.EndsWith("xxx...", first[6]);
        Assert.Equal(["00CPBZ2JF0001", "3s", "<>", "1/1", "held", "-", "[red]not markup[/]"], Row(rows, "00CPBZ2JF0001"));
        Assert.EndsWith("messages 1-2 of 5 (page 1 of 3)\n", text);
    }

    [Fact]
    public void Should_render_one_message_as_envelope_recipients_attempts_and_headers()
    {
        var detail = new MessageDetailDto(
            new MessageSummaryDto("00CPBZ2JF0000", "alice@example.test", 2, 1, Now.AddSeconds(-192), 2048, "deferred", Now.AddMinutes(30), 1,
                ["dest.test"], "451 4.3.0 later"),
            new EnvelopeDto(Now.AddSeconds(-192), "alice@example.test", ["bob@dest.test", "carol@example.test"], "127.0.0.1", "client.test", "ESMTP", "alice",
                JsonDocument.Parse("""["eightBitDeclared"]""").RootElement, 2048),
            [
                new RecipientDetailDto("bob@dest.test", "pending", "dest.test", "4.3.0", "451 4.3.0 later", "mx2.dest.test[127.0.0.2]", Now.AddSeconds(-100)),
                new RecipientDetailDto("carol@example.test", "delivered", "local", "2.0.0", "delivered to maildir", null, Now.AddSeconds(-190)),
            ],
            [new AttemptDto(Now.AddSeconds(-100), "bob@dest.test", "mx2.dest.test[127.0.0.2]:25", null, "4.3.0", "deferred", "451 4.3.0 later")],
            "Received: from client.test\r\n\tby mx.test\r\nSubject: [b]hello[/b]\r\n\r\n");

        var text = Render(c => QueueRenderer.Detail(c, Spectre.Console.TableBorder.Ascii, detail, Now));

        Assert.Matches(@"(?m)^ID\s+00CPBZ2JF0000$", text);
        Assert.Matches(@"(?m)^State\s+deferred$", text);
        Assert.Matches(@"(?m)^Received\s+2025-11-30 11:56:48Z \(3m12s ago\)$", text);
        Assert.Matches(@"(?m)^Sender\s+alice@example.test$", text);
        Assert.Matches(@"(?m)^Size\s+2 KiB$", text);
        Assert.Matches(@"(?m)^Recipients\s+2 \(1 pending\)$", text);
        Assert.Matches(@"(?m)^Next attempt\s+in 30m00s \(2025-11-30 12:30:00Z\)$", text);
        Assert.Matches(@"(?m)^Client\s+client.test \[127.0.0.1\]$", text);
        Assert.Matches(@"(?m)^Flags\s+eightBitDeclared$", text);
        var rows = Rows(text);
        Assert.Equal(["bob@dest.test", "pending", "dest.test", "4.3.0", "451 4.3.0 later", "mx2.dest.test[127.0.0.2]", "2025-11-30 11:58:20Z"],
            Row(rows, "bob@dest.test"));
        Assert.Equal("delivered", Row(rows, "carol@example.test")[1]);
        Assert.Equal(["2025-11-30 11:58:20Z", "bob@dest.test", "mx2.dest.test[127.0.0.2]:25", "none", "4.3.0", "deferred", "451 4.3.0 later"],
            Row(rows, "2025-11-30 11:58:20Z"));
        Assert.EndsWith("Headers:\nReceived: from client.test\n\tby mx.test\nSubject: [b]hello[/b]\n", text);
    }

    // ---------------------------------------------------------------- HTTP mapping (a stub server)

    public static TheoryData<string[], string> Routes => new()
    {
        { ["queue", "summary"], "GET /api/queue" },
        { ["queue", "list"], "GET /api/messages" },
        {
            ["queue", "list", "--destination", "dest.test", "--sender", "a b", "--recipient", "r@x", "--state", "deferred", "--min-age", "5", "--max-age", "60",
                "--page", "2", "--page-size", "7"],
            "GET /api/messages?destination=dest.test&sender=a%20b&recipient=r%40x&state=deferred&minAge=5&maxAge=60&page=2&pageSize=7"
        },
        { ["queue", "show", "00CPBZ2JF0000"], "GET /api/messages/00CPBZ2JF0000" },
        { ["queue", "retry", "00CPBZ2JF0000"], "POST /api/messages/00CPBZ2JF0000/retry" },
        { ["queue", "retry", "--destination", "dest.test"], "POST /api/destinations/dest.test/retry" },
        { ["queue", "retry", "--all"], "POST /api/retry" },
        { ["queue", "hold", "00CPBZ2JF0000"], "POST /api/messages/00CPBZ2JF0000/hold" },
        { ["queue", "release", "00CPBZ2JF0000"], "POST /api/messages/00CPBZ2JF0000/release" },
        { ["queue", "delete", "00CPBZ2JF0000"], "DELETE /api/messages/00CPBZ2JF0000" },
        { ["queue", "delete", "00CPBZ2JF0000", "--bounce"], "DELETE /api/messages/00CPBZ2JF0000?bounce=true" },
        { ["destination", "suspend", "smarthost:[relay.test]:587"], "POST /api/destinations/smarthost%3A%5Brelay.test%5D%3A587/suspend" },
        { ["destination", "resume", "dest.test"], "POST /api/destinations/dest.test/resume" },
    };

    [Theory]
    [MemberData(nameof(Routes))]
    public async Task Should_call_the_admin_API_route_of_each_command(string[] args, string expected)
    {
        var stub = new StubHandler();

        await InProcess([.. args, "--url", "http://127.0.0.1:9/", "--json"], stub);

        var request = Assert.Single(stub.Requests);
        Assert.Equal(expected, $"{request.Method} {request.RequestUri!.PathAndQuery}");
        Assert.Null(request.Headers.Authorization);
    }

    [Fact]
    public async Task Should_send_the_token_and_find_the_API_from_the_configuration()
    {
        using var dir = new TempDirectory();
        var tokenFile = dir.Combine("admin.token");
        File.WriteAllText(tokenFile, "  s3cret-token \nignored\n");
        var config = dir.Combine("relay.hocon");
        File.WriteAllText(config, $$"""relay-mta.admin { listen = "0.0.0.0:8125", token-file = "{{TestRelay.Escape(tokenFile)}}" }""");
        var stub = new StubHandler();

        Assert.Equal(0, (await InProcess(["queue", "summary", "--config", config], stub)).Code);
        Assert.Equal(0, (await InProcess(["queue", "summary", "--url", "http://[::1]:9/", "--token-file", tokenFile], stub)).Code);
        Assert.Equal(0, (await InProcess(["queue", "summary"], stub)).Code);

        Assert.Equal("http://127.0.0.1:8125/api/queue", stub.Requests[0].RequestUri!.ToString()); // the wildcard means this machine
        Assert.Equal("Bearer s3cret-token", stub.Requests[0].Headers.Authorization!.ToString());
        Assert.Equal("http://[::1]:9/api/queue", stub.Requests[1].RequestUri!.ToString());
        Assert.Equal("Bearer s3cret-token", stub.Requests[1].Headers.Authorization!.ToString());
        Assert.Equal("http://127.0.0.1:8025/api/queue", stub.Requests[2].RequestUri!.ToString()); // the defaults
        Assert.Null(stub.Requests[2].Headers.Authorization);
    }

    [Fact]
    public async Task Should_say_what_is_wrong_with_the_configuration_or_token_file()
    {
        using var dir = new TempDirectory();
        var off = dir.Combine("off.hocon");
        File.WriteAllText(off, """relay-mta.admin.listen = "" """);
        var broken = dir.Combine("broken.hocon");
        File.WriteAllText(broken, "relay-mta { admin { listen = ");
        var stub = new StubHandler();

        var adminOff = await InProcess(["queue", "summary", "--config", off], stub);
        Assert.Equal((3, $"relaymta: the admin API is off in {off} (relay-mta.admin.listen is empty); give --url\n"), (adminOff.Code, adminOff.Stderr));
        var bad = await InProcess(["queue", "summary", "--config", broken], stub);
        Assert.Equal(78, bad.Code);
        Assert.StartsWith($"relaymta: configuration error: {broken}: ", bad.Stderr);
        var missing = await InProcess(["queue", "summary", "--url", "http://127.0.0.1:9/", "--token-file", dir.Combine("none")], stub);
        Assert.Equal(2, missing.Code);
        Assert.StartsWith($"relaymta: --token-file: cannot read {dir.Combine("none")}: ", missing.Stderr);
        Assert.Empty(stub.Requests);
    }

    public static TheoryData<string[], HttpStatusCode, string, int, string> Failures => new()
    {
        { ["queue", "summary"], HttpStatusCode.Unauthorized, """{"error":"a valid bearer token is required"}""", 3, "relaymta: unauthorized: check --token-file" },
        { ["queue", "summary"], HttpStatusCode.Forbidden, """{"error":"cross-origin requests are refused"}""", 3, "relaymta: forbidden: cross-origin requests are refused" },
        { ["queue", "summary"], HttpStatusCode.InternalServerError, """{"error":"boom"}""", 3, "relaymta: the admin API failed: 500 Internal Server Error: boom" },
        {
            ["queue", "list"], HttpStatusCode.ServiceUnavailable, """{"error":"the queue manager did not answer within 5 s"}""", 3,
            "relaymta: the admin API failed: 503 Service Unavailable: the queue manager did not answer within 5 s"
        },
        { ["queue", "summary"], HttpStatusCode.NotFound, "", 3, "relaymta: http://127.0.0.1:9/api/queue is not there (404): is http://127.0.0.1:9/ RelayMta's admin API?" },
        { ["queue", "show", "00CPBZ2JF0000"], HttpStatusCode.NotFound, """{"error":"message 00CPBZ2JF0000"}""", 1, "relaymta: no message '00CPBZ2JF0000' in the queue" },
        { ["queue", "hold", "00CPBZ2JF0000"], HttpStatusCode.NotFound, """{"error":"gone"}""", 1, "relaymta: no message '00CPBZ2JF0000' in the queue" },
        { ["queue", "show", "nonsense"], HttpStatusCode.BadRequest, """{"error":"'nonsense' is not a queue id"}""", 2, "relaymta: 'nonsense' is not a queue id" },
        { ["queue", "delete", "00CPBZ2JF0000"], HttpStatusCode.OK, """{"found":false,"affected":0,"message":"x"}""", 1, "relaymta: no message '00CPBZ2JF0000' in the queue" },
        { ["queue", "summary"], HttpStatusCode.OK, "<html>not json</html>", 3, "relaymta: the admin API sent what this command cannot read (QueueSummary): " },
    };

    [Theory]
    [MemberData(nameof(Failures))]
    public async Task Should_map_the_servers_answers_to_exit_codes(string[] args, HttpStatusCode status, string body, int exit, string message)
    {
        var (code, stdout, stderr) = await InProcess([.. args, "--url", "http://127.0.0.1:9/"], new StubHandler(status, body));

        Assert.Equal(exit, code);
        Assert.Equal("", stdout);
        Assert.StartsWith(message, stderr);
        Assert.Single(stderr.TrimEnd('\n').Split('\n'));
    }

    [Fact]
    public async Task Should_print_the_servers_JSON_indented_with_json()
    {
        var (code, stdout, _) = await InProcess(["queue", "retry", "--all", "--json", "--url", "http://127.0.0.1:9/"],
            new StubHandler(HttpStatusCode.OK, """{"found":true,"affected":3,"message":"queued 3 messages for retry"}"""));

        Assert.Equal(0, code);
        Assert.Equal("{\n  \"found\": true,\n  \"affected\": 3,\n  \"message\": \"queued 3 messages for retry\"\n}\n", stdout.ReplaceLineEndings("\n"));
    }

    // ---------------------------------------------------------------- the executable against a relay

    [Fact]
    public async Task Should_show_the_queue_by_destination_list_with_filters_and_show_one_message()
    {
        await using var bed = await QueueBed.StartAsync();
        var m1 = await bed.SendDeferredAsync("alice@example.test", ["bob@dest.test"], "first");
        var m2 = await bed.SendDeferredAsync("carol@example.test", ["dave@other.test"], "second");
        var m3 = await bed.SendDeferredAsync("alice@example.test", ["x@dest.test", "y@other.test"], "third");

        var summary = await Cli("queue", "summary", "--url", bed.Url);
        Assert.Equal(0, summary.Code);
        Assert.StartsWith("3 messages, 4 recipients queued; oldest ", summary.Stdout);
        var rows = Rows(summary.Stdout);
        Assert.Equal(["dest.test", "2", "2"], Row(rows, "dest.test")[..3]);
        Assert.Equal(["other.test", "2", "2"], Row(rows, "other.test")[..3]);
        Assert.Matches(@"^in (59m|1h0)", Row(rows, "dest.test")[4]); // an hour, give or take the schedule's jitter
        Assert.Contains("451 4.3.0 later", Row(rows, "dest.test")[6]);

        Assert.Equal([m1, m2, m3], Ids(await Cli("queue", "list", "--url", bed.Url)));
        Assert.Equal([m2, m3], Ids(await Cli("queue", "list", "--url", bed.Url, "--destination", "other.test")));
        Assert.Equal([m2], Ids(await Cli("queue", "list", "--url", bed.Url, "--sender", "carol@example.test")));
        Assert.Equal([m3], Ids(await Cli("queue", "list", "--url", bed.Url, "--recipient", "x@dest.test")));
        Assert.Equal([m1, m2, m3], Ids(await Cli("queue", "list", "--url", bed.Url, "--state", "deferred", "--max-age", "3600")));
        Assert.Empty(Ids(await Cli("queue", "list", "--url", bed.Url, "--state", "held")));
        Assert.Equal("no messages match\n", (await Cli("queue", "list", "--url", bed.Url, "--min-age", "3600")).Stdout);
        var page1 = await Cli("queue", "list", "--url", bed.Url, "--page-size", "2");
        Assert.Equal([m1, m2], Ids(page1));
        Assert.EndsWith("messages 1-2 of 3 (page 1 of 2)\n", page1.Stdout);
        Assert.Equal([m3], Ids(await Cli("queue", "list", "--url", bed.Url, "--page-size", "2", "--page", "2")));
        var listed = Row(Rows((await Cli("queue", "list", "--url", bed.Url)).Stdout), m3);
        Assert.Equal(["alice@example.test", "2/2", "deferred"], listed[2..5]);

        var show = await Cli("queue", "show", m3, "--url", bed.Url);
        Assert.Equal((0, ""), (show.Code, show.Stderr));
        Assert.Matches($@"(?m)^ID\s+{m3}$", show.Stdout);
        Assert.Matches(@"(?m)^Sender\s+alice@example.test$", show.Stdout);
        var shown = Rows(show.Stdout);
        Assert.Equal(["x@dest.test", "pending", "dest.test", "4.3.0"], Row(shown, "x@dest.test")[..4]);
        Assert.Equal(["y@other.test", "pending", "other.test", "4.3.0"], Row(shown, "y@other.test")[..4]);
        Assert.Contains(shown, r => r.Length == 7 && r[1] == "x@dest.test" && r[5] == "deferred"); // an attempt
        Assert.Contains("\nHeaders:\n", show.Stdout);
        Assert.Contains("\nSubject: third\n", show.Stdout);

        var unknown = await Cli("queue", "show", "0000000000000", "--url", bed.Url);
        Assert.Equal((1, "", "relaymta: no message '0000000000000' in the queue\n"), unknown);
    }

    [Fact]
    public async Task Should_print_parseable_JSON_with_json()
    {
        await using var bed = await QueueBed.StartAsync();
        var id = await bed.SendDeferredAsync("alice@example.test", ["bob@dest.test"], "json");

        using (var summary = JsonDocument.Parse((await Cli("queue", "summary", "--json", "--url", bed.Url)).Stdout))
        {
            Assert.Equal(1, summary.RootElement.GetProperty("messages").GetInt32());
            Assert.Equal("dest.test", summary.RootElement.GetProperty("destinations")[0].GetProperty("destination").GetString());
        }
        using (var list = JsonDocument.Parse((await Cli("queue", "list", "--json", "--url", bed.Url)).Stdout))
        {
            Assert.Equal(1, list.RootElement.GetProperty("total").GetInt32());
            Assert.Equal(id, list.RootElement.GetProperty("items")[0].GetProperty("id").GetString());
        }
        var show = await Cli("queue", "show", id, "--json", "--url", bed.Url);
        Assert.Contains("\n  \"summary\": {", show.Stdout); // indented
        using (var detail = JsonDocument.Parse(show.Stdout))
        {
            Assert.Equal("bob@dest.test", detail.RootElement.GetProperty("recipientStatus")[0].GetProperty("address").GetString());
        }
        var hold = await Cli("queue", "hold", id, "--json", "--url", bed.Url);
        Assert.Equal(0, hold.Code);
        using (var result = JsonDocument.Parse(hold.Stdout)) Assert.Equal(1, result.RootElement.GetProperty("affected").GetInt32());
    }

    [Fact]
    public async Task Should_retry_one_message_a_destination_or_all_as_a_new_transaction()
    {
        await using var bed = await QueueBed.StartAsync();
        var m1 = await bed.SendDeferredAsync("alice@example.test", ["bob@dest.test"], "one");
        var m2 = await bed.SendDeferredAsync("alice@example.test", ["carol@other.test"], "two");
        Assert.Equal((1, 1), (bed.Dest.Transactions, bed.Other.Transactions));

        Assert.Equal((0, "queued 1 message for retry\n", ""), await Cli("queue", "retry", m1, "--url", bed.Url));
        await bed.WaitForAttemptsAsync(m1, 2);
        Assert.Equal((2, 1), (bed.Dest.Transactions, bed.Other.Transactions));

        Assert.Equal((0, "queued 1 message for retry\n", ""), await Cli("queue", "retry", "--destination", "other.test", "--url", bed.Url));
        await bed.WaitForAttemptsAsync(m2, 2);
        Assert.Equal((2, 2), (bed.Dest.Transactions, bed.Other.Transactions));

        Assert.Equal((0, "queued 2 messages for retry\n", ""), await Cli("queue", "retry", "--all", "--url", bed.Url));
        await bed.WaitForAttemptsAsync(m1, 3);
        await bed.WaitForAttemptsAsync(m2, 3);
        Assert.Equal((3, 3), (bed.Dest.Transactions, bed.Other.Transactions));

        Assert.Equal((1, "", "relaymta: no message '0000000000000' in the queue\n"), await Cli("queue", "retry", "0000000000000", "--url", bed.Url));
    }

    [Fact]
    public async Task Should_hold_a_message_out_of_retries_until_released()
    {
        await using var bed = await QueueBed.StartAsync();
        var id = await bed.SendDeferredAsync("alice@example.test", ["bob@dest.test"], "held");

        Assert.Equal((0, $"message {id} held\n", ""), await Cli("queue", "hold", id, "--url", bed.Url));
        var held = Row(Rows((await Cli("queue", "list", "--state", "held", "--url", bed.Url)).Stdout), id);
        Assert.Equal(["held", "-"], held[4..6]);
        Assert.Equal((0, "queued 0 messages for retry\n", ""), await Cli("queue", "retry", "--all", "--url", bed.Url)); // held ones are skipped

        Assert.Equal((0, $"message {id} released\n", ""), await Cli("queue", "release", id, "--url", bed.Url));
        await bed.WaitForAttemptsAsync(id, 2); // released means tried now
        Assert.Equal(2, bed.Dest.Transactions);
        Assert.Equal([id], Ids(await Cli("queue", "list", "--state", "deferred", "--url", bed.Url)));

        Assert.Equal(1, (await Cli("queue", "hold", "0000000000000", "--url", bed.Url)).Code);
        Assert.Equal(1, (await Cli("queue", "release", "0000000000000", "--url", bed.Url)).Code);
    }

    [Fact]
    public async Task Should_delete_a_message_and_with_bounce_tell_the_sender()
    {
        await using var bed = await QueueBed.StartAsync();
        var quiet = await bed.SendDeferredAsync("alice@example.test", ["bob@dest.test"], "deleted quietly");
        var bounced = await bed.SendDeferredAsync("alice@example.test", ["carol@dest.test"], "deleted with a bounce");

        Assert.Equal((0, $"message {quiet} deleted\n", ""), await Cli("queue", "delete", quiet, "--url", bed.Url));
        Assert.Equal(1, (await Cli("queue", "show", quiet, "--url", bed.Url)).Code);
        Assert.Equal([bounced], Ids(await Cli("queue", "list", "--url", bed.Url)));

        Assert.Equal((0, $"message {bounced} deleted with a bounce to the sender\n", ""), await Cli("queue", "delete", bounced, "--bounce", "--url", bed.Url));
        var dsn = await bed.Bed.WaitForBounceAsync("alice");
        var group = Assert.Single(OutboundBed.RecipientGroups(dsn));
        Assert.Contains("carol@dest.test", group["Final-Recipient"]);
        Assert.Single(bed.Bed.Relay.Delivered("alice")); // the quiet delete sent nothing
        Assert.Equal("no messages match\n", (await Cli("queue", "list", "--url", bed.Url)).Stdout);

        Assert.Equal((1, "", "relaymta: no message '0000000000000' in the queue\n"), await Cli("queue", "delete", "0000000000000", "--bounce", "--url", bed.Url));
    }

    [Fact]
    public async Task Should_suspend_and_resume_a_destination()
    {
        await using var bed = await QueueBed.StartAsync();
        await bed.SendDeferredAsync("alice@example.test", ["bob@dest.test"], "suspended");

        var suspend = await Cli("destination", "suspend", "dest.test", "--url", bed.Url);
        Assert.Equal((0, ""), (suspend.Code, suspend.Stderr));
        Assert.Contains("dest.test", suspend.Stdout);
        Assert.Single(suspend.Stdout.TrimEnd('\n').Split('\n'));
        Assert.Equal("suspended", Row(Rows((await Cli("queue", "summary", "--url", bed.Url)).Stdout), "dest.test")[7]);

        Assert.Equal(0, (await Cli("destination", "resume", "dest.test", "--url", bed.Url)).Code);
        Assert.Equal("", Row(Rows((await Cli("queue", "summary", "--url", bed.Url)).Stdout), "dest.test")[7]);
    }

    [Fact]
    public async Task Should_exit_3_when_the_server_cannot_be_reached_or_refuses_the_token()
    {
        var closed = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        closed.Start();
        var port = ((IPEndPoint)closed.LocalEndpoint).Port;
        closed.Stop(); // nothing listens there now

        var refused = await Cli("queue", "summary", "--url", $"http://127.0.0.1:{port}");
        Assert.Equal(3, refused.Code);
        Assert.Equal("", refused.Stdout);
        Assert.StartsWith($"relaymta: cannot reach the admin API at http://127.0.0.1:{port}/: connection refused", refused.Stderr);
        Assert.Equal(3, (await Cli("queue", "list", "--url", "http://no-such-host.invalid:8025")).Code);

        using var dir = new TempDirectory();
        var token = dir.Combine("admin.token");
        File.WriteAllText(token, "the-token\n");
        var wrong = dir.Combine("wrong.token");
        File.WriteAllText(wrong, "not-the-token\n");
        await using var relay = await TestRelay.StartAsync($$"""
            relay-mta.admin { listen = "127.0.0.1:0", token-file = "{{TestRelay.Escape(token)}}" }
            """);
        var url = QueueBed.UrlOf(relay);
        var config = dir.Combine("relay.hocon");
        File.WriteAllText(config, $$"""relay-mta.admin { listen = "{{url.Host}}:{{url.Port}}", token-file = "{{TestRelay.Escape(token)}}" }""");

        Assert.Equal((3, "", "relaymta: unauthorized: check --token-file\n"), await Cli("queue", "summary", "--url", url.ToString()));
        Assert.Equal(3, (await Cli("queue", "summary", "--url", url.ToString(), "--token-file", wrong)).Code);
        Assert.Equal((0, "the queue is empty\n", ""), await Cli("queue", "summary", "--url", url.ToString(), "--token-file", token));
        Assert.Equal((0, "the queue is empty\n", ""), await Cli("queue", "summary", "--config", config));
    }

    [Fact]
    public async Task Should_exit_2_for_bad_usage_of_the_executable()
    {
        string[][] usageErrors = [["queue"], ["queue", "list", "--page", "x"], ["queue", "retry"], ["destination", "suspend"], ["queue", "summary", "--frob"]];
        foreach (var args in usageErrors)
        {
            var (code, stdout, stderr) = await Cli(args);
            Assert.Equal(2, code);
            Assert.Equal("", stdout);
            Assert.StartsWith("relaymta: ", stderr);
            Assert.Contains("RelayMta queue summary", stderr);
        }
        var help = await Cli("--help");
        Assert.Equal(0, help.Code);
        Assert.Contains("RelayMta user add NAME --users-file FILE", help.Stdout); // the user tool is still described
        Assert.Contains("RelayMta queue retry [ID|--destination D|--all]", help.Stdout);
    }

    [Fact]
    public async Task Should_inspect_a_stopped_relays_spool_and_refuse_a_running_ones()
    {
        using var dir = new TempDirectory();
        await using var bed = await QueueBed.StartAsync(dir);
        var m1 = await bed.SendDeferredAsync("alice@example.test", ["bob@dest.test"], "one");
        var m2 = await bed.SendDeferredAsync("carol@example.test", ["dave@other.test", "erin@dest.test"], "two");
        var spool = bed.Bed.Relay.SpoolDir;

        var running = await Cli("spool", "inspect", spool);
        Assert.Equal(3, running.Code);
        Assert.Equal("", running.Stdout);
        Assert.Contains("use 'RelayMta queue list'", running.Stderr);

        await bed.Bed.Relay.StopAsync();
        var inspect = await Cli("spool", "inspect", spool);
        Assert.Equal((0, ""), (inspect.Code, inspect.Stderr));
        var rows = Rows(inspect.Stdout);
        var first = Row(rows, m1);
        Assert.Equal(["alice@example.test", "bob@dest.test pending 4.3.0"], first[2..4]);
        Assert.Equal(["1", "no"], [first[5], first[7]]);
        Assert.Matches(@"^in (5\dm|1h)", first[6]);
        Assert.Equal("carol@example.test", Row(rows, m2)[2]);
        Assert.Contains(rows, r => r.Length == 8 && r[3] == "erin@dest.test pending 4.3.0"); // the second recipient's line of m2
        Assert.EndsWith($"2 messages in {spool}\n", inspect.Stdout);

        var json = await Cli("spool", "inspect", spool, "--json");
        Assert.Equal(0, json.Code);
        using var document = JsonDocument.Parse(json.Stdout);
        Assert.Equal([m1, m2], document.RootElement.EnumerateArray().Select(e => e.GetProperty("id").GetString()!).ToArray());
        var recipients = document.RootElement[1].GetProperty("recipients");
        Assert.Equal("dave@other.test", recipients[0].GetProperty("address").GetString());
        Assert.Equal("pending", recipients[0].GetProperty("state").GetString());
        Assert.Contains("451 4.3.0 later", recipients[0].GetProperty("diagnostic").GetString());
        Assert.False(document.RootElement[0].GetProperty("held").GetBoolean());

        var missing = await Cli("spool", "inspect", dir.Combine("no-such-spool"));
        Assert.Equal((1, ""), (missing.Code, missing.Stdout));
        Assert.Equal($"relaymta: {dir.Combine("no-such-spool")}: no such directory\n", missing.Stderr);
        Assert.Equal(1, (await Cli("spool", "inspect", dir.Path)).Code); // a directory, but not a spool
    }

    // ---------------------------------------------------------------- helpers

    /// <summary>Runs the command in process over a stub HTTP handler; standard output is not a terminal.</summary>
    private static async Task<(int Code, string Stdout, string Stderr)> InProcess(string[] args, StubHandler handler)
    {
        var stdout = new StringWriter { NewLine = "\n" };
        var stderr = new StringWriter { NewLine = "\n" };
        var code = await OperatorCli.RunAsync(args, new CliConsole(stdout, stderr, terminal: false, () => Now, handler));
        return (code, stdout.ToString(), stderr.ToString());
    }

    private static string Render(Action<Spectre.Console.IAnsiConsole> render)
    {
        var writer = new StringWriter { NewLine = "\n" };
        render(CliConsole.Create(writer, terminal: false));
        return writer.ToString().ReplaceLineEndings("\n");
    }

    /// <summary>The cells of every row of every ASCII table in <paramref name="text"/> ("| a | b |" lines), trimmed.</summary>
    private static List<string[]> Rows(string text) =>
        text.ReplaceLineEndings("\n").Split('\n')
            .Where(l => l.StartsWith("| ", StringComparison.Ordinal))
            .Select(l => l.Trim().Trim('|').Split('|').Select(c => c.Trim()).ToArray())
            .ToList();

    private static string[] Row(List<string[]> rows, string first) =>
        rows.FirstOrDefault(r => r[0] == first) ?? throw new Xunit.Sdk.XunitException($"no row '{first}' in:\n{string.Join("\n", rows.Select(r => string.Join(" | ", r)))}");

    /// <summary>The queue ids in the first column of a <c>queue list</c>; fails unless it exited 0.</summary>
    private static string[] Ids((int Code, string Stdout, string Stderr) run)
    {
        Assert.True(run.Code == 0, $"exit {run.Code}: {run.Stderr}");
        return Rows(run.Stdout).Skip(1).Select(r => r[0]).Where(c => c.Length == 13).ToArray();
    }

    /// <summary>Runs <c>dotnet RelayMta.dll ARGS</c> (the built executable) and returns its exit code and output.</summary>
    private static async Task<(int Code, string Stdout, string Stderr)> Cli(params string[] args)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        info.ArgumentList.Add(RelayProcess.DllPath);
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["DOTNET_gcServer"] = "0";

        using var process = Process.Start(info)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill();
            throw new TimeoutException($"RelayMta {string.Join(' ', args)} did not exit");
        }
        return (process.ExitCode, (await stdout).ReplaceLineEndings("\n"), (await stderr).ReplaceLineEndings("\n"));
    }

    /// <summary>Answers every request with one canned status and body, and keeps the requests.</summary>
    private sealed class StubHandler(HttpStatusCode status = HttpStatusCode.OK, string body = """{"found":true,"affected":1,"message":"ok"}""")
        : HttpMessageHandler
    {
        public List<HttpRequestMessage> Requests { get; } = [];

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Requests.Add(request);
            var text = request.RequestUri!.AbsolutePath == "/api/queue" && status == HttpStatusCode.OK && body.Contains("\"found\"", StringComparison.Ordinal)
                ? """{"messages":0,"recipients":0,"oldest":null,"destinations":[]}"""
                : body;
            return Task.FromResult(new HttpResponseMessage(status) { Content = new StringContent(text, Encoding.UTF8, "application/json") });
        }
    }

    /// <summary>
    /// A relay with its admin API on a free loopback port, and two remote destinations whose MX
    /// hosts defer every recipient: dest.test (127.0.0.2) and other.test (127.0.0.3). The next
    /// attempt is an hour away, so nothing moves unless a test moves it.
    /// </summary>
    private sealed class QueueBed : IAsyncDisposable
    {
        private readonly HttpClient _http = new();

        private QueueBed(OutboundBed bed)
        {
            Bed = bed;
            var deferring = () => new FakeSmtpBehavior { OnRcpt = _ => "451 4.3.0 later" };
            Dest = bed.Mx(2, deferring());
            Other = bed.Mx(3, deferring());
            bed.Route("dest.test", (10, 2));
            bed.Route("other.test", (10, 3));
            Url = UrlOf(bed.Relay).ToString();
        }

        public OutboundBed Bed { get; }

        public FakeSmtpServer Dest { get; }

        public FakeSmtpServer Other { get; }

        /// <summary>The admin API, as --url takes it.</summary>
        public string Url { get; }

        public static async Task<QueueBed> StartAsync(TempDirectory? dir = null) =>
            new(await OutboundBed.StartAsync("""
                relay-mta.admin.listen = "127.0.0.1:0"
                relay-mta.outbound.retry-intervals = [1h]
                """, dir));

        public static Uri UrlOf(TestRelay relay)
        {
            var endpoint = relay.Host.Services.GetRequiredService<AdminServer>().Endpoint ?? throw new InvalidOperationException("the admin server is off");
            return new Uri($"http://{endpoint}/");
        }

        /// <summary>Sends a message and waits until its first attempt has been deferred.</summary>
        public async Task<string> SendDeferredAsync(string from, string[] to, string subject)
        {
            var id = await Bed.SendAsync(from, to, subject);
            await WaitForAttemptsAsync(id, 1);
            return id;
        }

        /// <summary>Polls the admin API until the message has been tried <paramref name="attempts"/> times and is waiting again.</summary>
        public async Task WaitForAttemptsAsync(string id, int attempts)
        {
            var clock = Stopwatch.StartNew();
            var last = "";
            while (clock.Elapsed < TimeSpan.FromSeconds(30))
            {
                using var response = await _http.GetAsync(new Uri(new Uri(Url), $"api/messages/{id}"));
                last = await response.Content.ReadAsStringAsync();
                if (response.IsSuccessStatusCode)
                {
                    using var json = JsonDocument.Parse(last);
                    var summary = json.RootElement.GetProperty("summary");
                    if (summary.GetProperty("attempts").GetInt32() >= attempts && summary.GetProperty("state").GetString() == "deferred"
                        && summary.GetProperty("nextAttempt").GetDateTimeOffset() > DateTimeOffset.UtcNow.AddMinutes(30))
                        return;
                }
                await Task.Delay(50);
            }
            throw new TimeoutException($"message {id} was not tried {attempts} times; last answer: {last}");
        }

        public async ValueTask DisposeAsync()
        {
            _http.Dispose();
            await Bed.DisposeAsync();
        }
    }
}
