using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Akka.Actor;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using RelayMta.Admin;
using RelayMta.Engine.Hosting;
using RelayMta.Engine.Inbound;
using RelayMta.IntegrationTests.Infrastructure;

namespace RelayMta.IntegrationTests;

/// <summary>
/// The admin HTTP API over real HTTP on loopback (README "Admin HTTP API"). Mail is kept in the
/// queue by fake MX hosts that defer every RCPT, with a retry interval of an hour, so any new
/// attempt seen within seconds was caused by the API.
/// </summary>
public sealed class AdminApiSpecs
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task Should_show_the_queue_summary_filtered_lists_and_one_message_in_full()
    {
        await using var bed = await DeferringBed.StartAsync();
        var m1 = await bed.Outbound.SendAsync("alice@example.test", ["a1@remote.test"], "first", "secret body one\r\n");
        var m2 = await bed.Outbound.SendAsync("alice@example.test", ["a2@remote.test"], "second");
        var m3 = await bed.Outbound.SendAsync("dave@sender.test", ["c3@other.test"], "third");
        await bed.WaitUntilDeferredAsync(m1, m2, m3);

        var summary = await bed.Admin.JsonAsync("api/queue");
        Assert.Equal(3, summary.GetProperty("messages").GetInt32());
        Assert.Equal(3, summary.GetProperty("recipients").GetInt32());
        Assert.Equal(JsonValueKind.String, summary.GetProperty("oldest").ValueKind);
        var remote = Destination(summary, "remote.test");
        Assert.Equal(2, remote.GetProperty("messages").GetInt32());
        Assert.Equal(2, remote.GetProperty("recipients").GetInt32());
        Assert.Contains("try later", remote.GetProperty("lastError").GetString());
        Assert.False(remote.GetProperty("suspended").GetBoolean());
        Assert.Equal(1, Destination(summary, "other.test").GetProperty("messages").GetInt32());

        Assert.Equal([m1, m2, m3], await IdsAsync(bed.Admin, "api/messages")); // oldest first
        Assert.Equal([m1, m2], await IdsAsync(bed.Admin, "api/messages?destination=remote.test"));
        Assert.Equal([m3], await IdsAsync(bed.Admin, "api/messages?sender=dave@sender.test"));
        Assert.Equal([m3], await IdsAsync(bed.Admin, "api/messages?recipient=c3@other.test"));
        Assert.Equal([m1, m2, m3], await IdsAsync(bed.Admin, "api/messages?state=deferred"));
        Assert.Empty(await IdsAsync(bed.Admin, "api/messages?state=held"));
        Assert.Empty(await IdsAsync(bed.Admin, "api/messages?state=active"));
        Assert.Empty(await IdsAsync(bed.Admin, "api/messages?minAge=1h"));
        Assert.Equal([m1, m2, m3], await IdsAsync(bed.Admin, "api/messages?maxAge=1h"));

        var page1 = await bed.Admin.JsonAsync("api/messages?pageSize=2&page=1");
        Assert.Equal(3, page1.GetProperty("total").GetInt32());
        Assert.Equal(2, page1.GetProperty("pageSize").GetInt32());
        Assert.Equal([m1, m2], Ids(page1));
        var page2 = await bed.Admin.JsonAsync("api/messages?pageSize=2&page=2");
        Assert.Equal(2, page2.GetProperty("page").GetInt32());
        Assert.Equal([m3], Ids(page2));
        var item = page1.GetProperty("items")[0];
        Assert.Equal("alice@example.test", item.GetProperty("sender").GetString());
        Assert.Equal("deferred", item.GetProperty("state").GetString());
        Assert.Equal(["remote.test"], item.GetProperty("destinations").EnumerateArray().Select(d => d.GetString()));

        foreach (var bad in new[] { "state=bogus", "pageSize=0", "page=-1", "minAge=soon" })
        {
            var response = await bed.Admin.GetAsync("api/messages?" + bad);
            Assert.True(response.Status == HttpStatusCode.BadRequest, $"{bad}: {response}");
            Assert.NotEmpty(response.Json.GetProperty("error").GetString()!);
        }

        var detailResponse = await bed.Admin.GetAsync($"api/messages/{m1}");
        Assert.DoesNotContain("secret body one", detailResponse.Text);
        var detail = detailResponse.Json;
        Assert.Equal(m1, detail.GetProperty("summary").GetProperty("id").GetString());
        Assert.True(detail.GetProperty("summary").GetProperty("attempts").GetInt32() >= 1);
        var envelope = detail.GetProperty("envelope");
        Assert.Equal(m1, envelope.GetProperty("id").GetString());
        Assert.Equal("alice@example.test", envelope.GetProperty("sender").GetString());
        Assert.Equal(["a1@remote.test"], envelope.GetProperty("recipients").EnumerateArray().Select(r => r.GetString()));
        Assert.Contains("127.0.0.1", envelope.GetProperty("client").GetString());
        Assert.Equal("client.test", envelope.GetProperty("helo").GetString());
        Assert.Equal("ESMTP", envelope.GetProperty("protocol").GetString());
        Assert.Equal(JsonValueKind.Null, envelope.GetProperty("authUser").ValueKind);
        Assert.Equal(JsonValueKind.Array, envelope.GetProperty("flags").ValueKind);
        Assert.True(envelope.GetProperty("size").GetInt64() > 0);
        Assert.Equal(JsonValueKind.String, envelope.GetProperty("received").ValueKind);

        var rcpt = Assert.Single(detail.GetProperty("recipientStatus").EnumerateArray());
        Assert.Equal("a1@remote.test", rcpt.GetProperty("address").GetString());
        Assert.Equal("pending", rcpt.GetProperty("state").GetString());
        Assert.Equal("remote.test", rcpt.GetProperty("destination").GetString());
        Assert.Equal("4.3.0", rcpt.GetProperty("status").GetString());
        Assert.Contains("451 4.3.0 try later", rcpt.GetProperty("diagnostic").GetString());
        Assert.False(string.IsNullOrEmpty(rcpt.GetProperty("remoteMta").GetString()));

        var attempt = detail.GetProperty("attempts")[0];
        Assert.Equal("a1@remote.test", attempt.GetProperty("recipient").GetString());
        Assert.Equal("deferred", attempt.GetProperty("result").GetString());
        Assert.Contains("127.0.0.2", attempt.GetProperty("relay").GetString());
        Assert.Contains("try later", attempt.GetProperty("diagnostic").GetString());

        var headers = detail.GetProperty("headers").GetString()!;
        Assert.Contains("Subject: first", headers);
        Assert.Contains("Received:", headers);
        Assert.DoesNotContain("secret body one", headers);

        var missing = await bed.Admin.GetAsync("api/messages/0000000000000");
        Assert.True(missing.Status == HttpStatusCode.NotFound, missing.ToString());
        Assert.NotEmpty(missing.Json.GetProperty("error").GetString()!);
        var malformed = await bed.Admin.GetAsync("api/messages/not-an-id");
        Assert.True(malformed.Status == HttpStatusCode.BadRequest, malformed.ToString());
    }

    [Fact]
    public async Task Should_retry_one_message_a_destination_and_everything_at_once()
    {
        await using var bed = await DeferringBed.StartAsync();
        var m1 = await bed.Outbound.SendAsync("alice@example.test", ["a1@remote.test"], "one");
        var m2 = await bed.Outbound.SendAsync("alice@example.test", ["a2@remote.test"], "two");
        var m3 = await bed.Outbound.SendAsync("alice@example.test", ["c3@other.test"], "three");
        await bed.WaitUntilDeferredAsync(m1, m2, m3);

        var one = await bed.Admin.PostAsync($"api/messages/{m1}/retry");
        Assert.True(one.Status == HttpStatusCode.OK, one.ToString());
        Assert.Equal(1, one.Json.GetProperty("affected").GetInt32());
        await bed.WaitForAttemptsAsync((m1, 2));
        Assert.Equal(2, bed.Rcpts("a1@remote.test"));
        Assert.Equal(1, bed.Rcpts("a2@remote.test"));

        var destination = await bed.Admin.PostAsync("api/destinations/remote.test/retry");
        Assert.True(destination.Status == HttpStatusCode.OK, destination.ToString());
        Assert.Equal(2, destination.Json.GetProperty("affected").GetInt32());
        await bed.WaitForAttemptsAsync((m1, 3), (m2, 2));
        Assert.Equal(3, bed.Rcpts("a1@remote.test"));
        Assert.Equal(2, bed.Rcpts("a2@remote.test"));
        Assert.Equal(1, bed.Rcpts("c3@other.test"));

        var all = await bed.Admin.PostAsync("api/retry");
        Assert.True(all.Status == HttpStatusCode.OK, all.ToString());
        Assert.Equal(3, all.Json.GetProperty("affected").GetInt32());
        await bed.WaitForAttemptsAsync((m1, 4), (m2, 3), (m3, 2));
        Assert.Equal(2, bed.Rcpts("c3@other.test"));

        var missing = await bed.Admin.PostAsync("api/messages/0000000000000/retry");
        Assert.True(missing.Status == HttpStatusCode.NotFound, missing.ToString());
    }

    [Fact]
    public async Task Should_hold_a_message_out_of_retries_until_it_is_released()
    {
        await using var bed = await DeferringBed.StartAsync();
        var m1 = await bed.Outbound.SendAsync("alice@example.test", ["a1@remote.test"], "held");
        var m2 = await bed.Outbound.SendAsync("alice@example.test", ["a2@remote.test"], "not held");
        await bed.WaitUntilDeferredAsync(m1, m2);

        var hold = await bed.Admin.PostAsync($"api/messages/{m1}/hold");
        Assert.True(hold.Status == HttpStatusCode.OK, hold.ToString());
        Assert.Equal("held", (await bed.Admin.JsonAsync($"api/messages/{m1}")).GetProperty("summary").GetProperty("state").GetString());
        Assert.Equal([m1], await IdsAsync(bed.Admin, "api/messages?state=held"));

        // Retrying everything tries the other message, never the held one.
        var all = await bed.Admin.PostAsync("api/retry");
        Assert.Equal(1, all.Json.GetProperty("affected").GetInt32());
        await bed.WaitForAttemptsAsync((m2, 2));
        Assert.Equal(2, bed.Rcpts("a2@remote.test"));
        Assert.Equal(1, bed.Rcpts("a1@remote.test"));
        Assert.Equal(1, (await bed.Admin.JsonAsync($"api/messages/{m1}")).GetProperty("summary").GetProperty("attempts").GetInt32());

        var release = await bed.Admin.PostAsync($"api/messages/{m1}/release");
        Assert.True(release.Status == HttpStatusCode.OK, release.ToString());
        await bed.WaitForAttemptsAsync((m1, 2));
        Assert.Equal(2, bed.Rcpts("a1@remote.test"));
        Assert.Equal("deferred", (await bed.Admin.JsonAsync($"api/messages/{m1}")).GetProperty("summary").GetProperty("state").GetString());

        Assert.Equal(HttpStatusCode.NotFound, (await bed.Admin.PostAsync("api/messages/0000000000000/hold")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await bed.Admin.PostAsync("api/messages/0000000000000/release")).Status);
    }

    [Fact]
    public async Task Should_delete_silently_or_with_a_bounce_to_the_sender()
    {
        await using var bed = await DeferringBed.StartAsync();
        var quiet = await bed.Outbound.SendAsync("alice@example.test", ["a1@remote.test"], "delete quietly");
        var bounced = await bed.Outbound.SendAsync("alice@example.test", ["a2@remote.test"], "delete with bounce");
        await bed.WaitUntilDeferredAsync(quiet, bounced);

        var delete = await bed.Admin.DeleteAsync($"api/messages/{quiet}");
        Assert.True(delete.Status == HttpStatusCode.OK, delete.ToString());
        Assert.Equal(HttpStatusCode.NotFound, (await bed.Admin.GetAsync($"api/messages/{quiet}")).Status);
        Assert.Equal([bounced], await IdsAsync(bed.Admin, "api/messages"));

        Assert.Equal(HttpStatusCode.BadRequest, (await bed.Admin.DeleteAsync($"api/messages/{bounced}?bounce=perhaps")).Status);
        var withBounce = await bed.Admin.DeleteAsync($"api/messages/{bounced}?bounce=true");
        Assert.True(withBounce.Status == HttpStatusCode.OK, withBounce.ToString());

        var dsn = await bed.Outbound.WaitForBounceAsync("alice");
        var group = Assert.Single(OutboundBed.RecipientGroups(dsn));
        Assert.Contains("a2@remote.test", group["Final-Recipient"]);
        Assert.Equal("5.3.0", group["Status"]);
        await Until(async () => (await bed.Admin.JsonAsync("api/queue")).GetProperty("messages").GetInt32() == 0, "queue empties");
        // The quiet deletion made no notice: the one DSN is the bounce's.
        Assert.Single(bed.Outbound.Relay.Delivered("alice"));
        Assert.Equal(HttpStatusCode.NotFound, (await bed.Admin.DeleteAsync($"api/messages/{bounced}")).Status);
    }

    [Fact]
    public async Task Should_suspend_and_resume_a_destination()
    {
        await using var bed = await DeferringBed.StartAsync();
        var m1 = await bed.Outbound.SendAsync("alice@example.test", ["a1@remote.test"], "to the suspended one");
        var m3 = await bed.Outbound.SendAsync("alice@example.test", ["c3@other.test"], "to the other one");
        await bed.WaitUntilDeferredAsync(m1, m3);

        var suspend = await bed.Admin.PostAsync("api/destinations/remote.test/suspend");
        Assert.True(suspend.Status == HttpStatusCode.OK, suspend.ToString());
        Assert.True(Destination(await bed.Admin.JsonAsync("api/queue"), "remote.test").GetProperty("suspended").GetBoolean());
        Assert.False(Destination(await bed.Admin.JsonAsync("api/queue"), "other.test").GetProperty("suspended").GetBoolean());

        // Everything is retried, but nothing starts towards the suspended destination.
        await bed.Admin.PostAsync("api/retry");
        await bed.WaitForAttemptsAsync((m3, 2));
        Assert.Equal(2, bed.Rcpts("c3@other.test"));
        Assert.Equal(1, bed.Rcpts("a1@remote.test"));

        var resume = await bed.Admin.PostAsync("api/destinations/remote.test/resume");
        Assert.True(resume.Status == HttpStatusCode.OK, resume.ToString());
        Assert.False(Destination(await bed.Admin.JsonAsync("api/queue"), "remote.test").GetProperty("suspended").GetBoolean());
        // The retry asked for while suspended waited, and goes now.
        await bed.WaitForAttemptsAsync((m1, 2));
        Assert.Equal(2, bed.Rcpts("a1@remote.test"));
    }

    [Fact]
    public async Task Should_count_accepted_and_deferred_mail_in_stats_and_metrics()
    {
        await using var bed = await DeferringBed.StartAsync();
        var ids = new List<string>();
        for (var i = 0; i < 3; i++) ids.Add(await bed.Outbound.SendAsync("alice@example.test", [$"a{i}@remote.test"], $"m{i}"));
        await bed.Outbound.SendAsync("alice@example.test", ["bob@example.test"], "local");
        await bed.Outbound.Relay.WaitForDeliveryAsync("bob");
        await bed.WaitUntilDeferredAsync([.. ids]);

        JsonElement stats = default;
        await Until(async () =>
        {
            stats = await bed.Admin.JsonAsync("api/stats");
            return Sum(stats, "accepted") == 4 && Sum(stats, "deferred") == 3 && Sum(stats, "delivered") == 1;
        }, () => "stats: " + stats);
        Assert.Equal(10, stats.GetProperty("bucketSeconds").GetInt32());
        var recent = stats.GetProperty("recent").EnumerateArray().ToList();
        Assert.Equal(ids.Order(), recent.Where(r => r.GetProperty("result").GetString() == "deferred")
            .Select(r => r.GetProperty("queueId").GetString()!).Order());

        var metrics = await bed.Admin.GetAsync("metrics");
        Assert.True(metrics.Status == HttpStatusCode.OK, metrics.ToString());
        Assert.StartsWith("text/plain; version=0.0.4", metrics.ContentType);
        Assert.Equal(4, Metric(metrics.Text, "relaymta_messages_accepted_total"));
        Assert.Equal(3, Metric(metrics.Text, "relaymta_deliveries_total", "result=\"deferred\""));
    }

    [Fact]
    public async Task Should_require_the_bearer_token_when_one_is_set()
    {
        using var dir = new TempDirectory();
        const string token = "s3cret-admin-token";
        await File.WriteAllTextAsync(dir.Combine("token"), token + "\n");
        await using var relay = await TestRelay.StartAsync($$"""
            relay-mta.admin { listen = "127.0.0.1:0", token-file = "{{TestRelay.Escape(dir.Combine("token"))}}" }
            """);
        using var admin = AdminClient.For(relay);

        // (This relay's configuration is text, not a file, so a reload is refused: but not for want of a token.)
        foreach (var (method, path, status) in new[]
                 {
                     (HttpMethod.Get, "api/queue", HttpStatusCode.OK), (HttpMethod.Get, "metrics", HttpStatusCode.OK),
                     (HttpMethod.Get, "api/stats", HttpStatusCode.OK), (HttpMethod.Get, "api/messages", HttpStatusCode.OK),
                     (HttpMethod.Post, "api/retry", HttpStatusCode.OK), (HttpMethod.Post, "api/reload", HttpStatusCode.UnprocessableEntity),
                 })
        {
            var none = await admin.SendAsync(method, path);
            Assert.True(none.Status == HttpStatusCode.Unauthorized, $"{method} {path} without a token: {none}");
            Assert.Equal("Bearer", none.Message.Headers.WwwAuthenticate.Single().Scheme);
            Assert.NotEmpty(none.Json.GetProperty("error").GetString()!);
            var wrong = await admin.SendAsync(method, path, token + "x");
            Assert.True(wrong.Status == HttpStatusCode.Unauthorized, $"{method} {path} with a wrong token: {wrong}");
            var right = await admin.SendAsync(method, path, token);
            Assert.True(right.Status == status, $"{method} {path} with the token: {right}");
        }
        var basic = await admin.SendAsync(HttpMethod.Get, "api/queue", configure: r => r.Headers.Authorization = new("Basic", token));
        Assert.Equal(HttpStatusCode.Unauthorized, basic.Status);

        // Probes and the dashboard's files need none (the dashboard's script sends the token).
        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync("healthz")).Status);
        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync("readyz")).Status);
        Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync("")).Status);
    }

    [Fact]
    public async Task Should_answer_health_readiness_and_the_dashboard()
    {
        await using var relay = await TestRelay.StartAsync("relay-mta.admin.listen = \"127.0.0.1:0\"");
        using var admin = AdminClient.For(relay);

        Assert.Equal("ok", (await admin.JsonAsync("healthz")).GetProperty("status").GetString());
        var ready = await admin.JsonAsync("readyz");
        Assert.True(ready.GetProperty("ready").GetBoolean());
        Assert.True(ready.GetProperty("listening").GetBoolean());
        Assert.True(ready.GetProperty("spoolWritable").GetBoolean());

        var index = await admin.GetAsync("");
        Assert.Equal(HttpStatusCode.OK, index.Status);
        Assert.StartsWith("text/html", index.ContentType);
        Assert.Contains("<html", index.Text, StringComparison.OrdinalIgnoreCase);
        var csp = string.Join(";", index.Message.Headers.GetValues("Content-Security-Policy"));
        Assert.Contains("default-src 'self'", csp);
        Assert.Contains("frame-ancestors 'none'", csp);
        Assert.Equal("nosniff", Assert.Single(index.Message.Headers.GetValues("X-Content-Type-Options")));
        foreach (var (path, file) in DashboardFiles.All)
        {
            var served = await admin.GetAsync("dashboard/" + path);
            Assert.True(served.Status == HttpStatusCode.OK, $"{path}: {served}");
            Assert.Equal(file.ContentType, served.ContentType);
            Assert.Equal(file.Content, await served.Message.Content.ReadAsByteArrayAsync());
        }
        var types = DashboardFiles.All.ToDictionary(f => Path.GetExtension(f.Key), f => f.Value.ContentType);
        if (types.TryGetValue(".js", out var js)) Assert.StartsWith("text/javascript", js);
        if (types.TryGetValue(".css", out var css)) Assert.StartsWith("text/css", css);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync("dashboard/no-such-file.js")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync("dashboard/../AdminServer.cs")).Status);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.GetAsync("api/no-such-route")).Status);

        // A page on another site cannot make the browser act on the API.
        var crossSite = await admin.SendAsync(HttpMethod.Post, "api/retry",
            configure: r => r.Headers.Add("Origin", "http://evil.example"));
        Assert.Equal(HttpStatusCode.Forbidden, crossSite.Status);
        var rebound = await admin.SendAsync(HttpMethod.Get, "api/queue", configure: r => r.Headers.Host = "evil.example");
        Assert.Equal(HttpStatusCode.Forbidden, rebound.Status);

        // Not ready once the listener stops accepting (as at shutdown).
        await relay.Actor<ListenerKey>().Ask<Akka.Done>(InboundProtocol.Unbind.Instance, TimeSpan.FromSeconds(5));
        var unready = await admin.GetAsync("readyz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, unready.Status);
        Assert.False(unready.Json.GetProperty("ready").GetBoolean());
        Assert.False(unready.Json.GetProperty("listening").GetBoolean());
    }

    [Fact]
    public async Task Should_answer_503_when_the_queue_manager_does_not_answer_in_time()
    {
        await using var relay = await TestRelay.StartAsync("relay-mta.admin.listen = \"127.0.0.1:0\"");
        using var admin = AdminClient.For(relay);
        // The API finds the queue manager through the registry: put an actor there that never answers.
        var registry = relay.Host.Services.GetRequiredService<Akka.Hosting.ActorRegistry>();
        registry.Register<QueueManagerKey>(relay.ActorSystem.ActorOf(Props.Create(() => new Silent()), "silent"), overwrite: true);
        var saved = AdminApi.AskTimeout;
        AdminApi.AskTimeout = TimeSpan.FromMilliseconds(300);
        try
        {
            foreach (var (method, path) in new[] { (HttpMethod.Get, "api/queue"), (HttpMethod.Get, "api/messages"), (HttpMethod.Post, "api/retry") })
            {
                var response = await admin.SendAsync(method, path);
                Assert.True(response.Status == HttpStatusCode.ServiceUnavailable, $"{method} {path}: {response}");
                Assert.Contains("did not answer", response.Json.GetProperty("error").GetString());
            }
            Assert.Equal(HttpStatusCode.OK, (await admin.GetAsync("healthz")).Status); // liveness does not depend on the queue
        }
        finally
        {
            AdminApi.AskTimeout = saved;
        }
    }

    [Fact]
    public async Task Should_reload_a_new_local_domain_and_refuse_a_broken_file_keeping_the_old_settings()
    {
        using var dir = new TempDirectory();
        var file = dir.Combine("relay.conf");
        await File.WriteAllTextAsync(file, FileConfig(dir, "\"example.test\""));
        await using var relay = await FileRelay.StartAsync(file);
        using var admin = new AdminClient(relay.AdminEndpoint);
        Assert.Equal(554, await RcptAsync(relay.SmtpEndpoint, "user@new.test"));

        await File.WriteAllTextAsync(file, FileConfig(dir, "\"example.test\", \"new.test\""));
        var reload = await admin.PostAsync("api/reload");
        Assert.True(reload.Status == HttpStatusCode.OK, reload.ToString());
        Assert.True(reload.Json.GetProperty("ok").GetBoolean());
        Assert.Equal(250, await RcptAsync(relay.SmtpEndpoint, "user@new.test"));

        await File.WriteAllTextAsync(file, FileConfig(dir, "\"example.test\", \"not a domain!\""));
        var refused = await admin.PostAsync("api/reload");
        Assert.True(refused.Status == HttpStatusCode.UnprocessableEntity, refused.ToString());
        Assert.False(refused.Json.GetProperty("ok").GetBoolean());
        Assert.Contains("local.domains", refused.Json.GetProperty("error").GetString());
        Assert.Equal(250, await RcptAsync(relay.SmtpEndpoint, "user@new.test"));
        Assert.Equal(250, await RcptAsync(relay.SmtpEndpoint, "user@example.test"));
    }

    [Fact]
    public async Task Should_stay_off_without_a_listen_address_and_fail_start_when_the_port_is_taken()
    {
        await using (var off = await TestRelay.StartAsync())
        {
            Assert.Null(off.Host.Services.GetRequiredService<AdminServer>().Endpoint);
        }

        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;
        using var dir = new TempDirectory();
        var file = dir.Combine("relay.conf");
        await File.WriteAllTextAsync(file, FileConfig(dir, "\"example.test\"", $"127.0.0.1:{port}"));
        var error = await Assert.ThrowsAnyAsync<Exception>(async () => await (await FileRelay.StartAsync(file)).DisposeAsync());
        var startup = Assert.IsType<StartupException>(error);
        Assert.Contains($"admin.listen 127.0.0.1:{port}", startup.Message);
    }

    private sealed class Silent : UntypedActor
    {
        protected override void OnReceive(object message)
        {
        }
    }

    private static JsonElement Destination(JsonElement summary, string name) =>
        summary.GetProperty("destinations").EnumerateArray().Single(d => d.GetProperty("destination").GetString() == name);

    private static List<string> Ids(JsonElement list) =>
        list.GetProperty("items").EnumerateArray().Select(i => i.GetProperty("id").GetString()!).ToList();

    private static async Task<List<string>> IdsAsync(AdminClient admin, string path) => Ids(await admin.JsonAsync(path));

    private static int Sum(JsonElement stats, string field) =>
        stats.GetProperty("buckets").EnumerateArray().Sum(b => b.GetProperty(field).GetInt32());

    /// <summary>The sum of a metric's samples whose labels contain <paramref name="label"/>.</summary>
    private static double Metric(string exposition, string name, string label = "") =>
        exposition.Split('\n')
            .Where(l => (l.StartsWith(name + " ", StringComparison.Ordinal) || l.StartsWith(name + "{", StringComparison.Ordinal)) && l.Contains(label))
            .Sum(l => double.Parse(l[(l.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture));

    private static Task Until(Func<Task<bool>> condition, string what) => Until(condition, () => what);

    private static async Task Until(Func<Task<bool>> condition, Func<string> describe)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            if (clock.Elapsed > Timeout) throw new TimeoutException("condition not met in time: " + describe());
            await Task.Delay(50);
        }
    }

    /// <summary>The reply code to RCPT TO:&lt;<paramref name="recipient"/>&gt; in a fresh session.</summary>
    private static async Task<int> RcptAsync(IPEndPoint smtp, string recipient)
    {
        await using var client = await RawSmtpClient.ConnectAsync(smtp);
        Assert.Equal(220, (await client.ReadReplyAsync()).Code);
        Assert.Equal(250, (await client.CommandAsync("EHLO client.test")).Code);
        Assert.Equal(250, (await client.CommandAsync("MAIL FROM:<someone@elsewhere.test>")).Code);
        var code = (await client.CommandAsync($"RCPT TO:<{recipient}>")).Code;
        await client.CommandAsync("QUIT");
        return code;
    }

    /// <summary>A whole configuration file: relaying refused (so only local domains are accepted), admin on.</summary>
    private static string FileConfig(TempDirectory dir, string domains, string adminListen = "127.0.0.1:0") => $$"""
        relay-mta {
          hostname = "mx.test"
          listen = ["127.0.0.1:0"]
          spool-dir = "{{TestRelay.Escape(dir.Combine("spool"))}}"
          local {
            domains = [{{domains}}]
            mailbox-root = "{{TestRelay.Escape(dir.Combine("mail"))}}"
          }
          relay.allowed-networks = []
          limits.greet-delay = 0s
          shutdown.drain-timeout = 5s
          admin.listen = "{{adminListen}}"
        }
        """;

    /// <summary>
    /// An <see cref="OutboundBed"/> with the admin API on and two destinations whose MX hosts defer
    /// every recipient: remote.test (127.0.0.2) and other.test (127.0.0.3). Retries wait an hour.
    /// </summary>
    private sealed class DeferringBed : IAsyncDisposable
    {
        private DeferringBed(OutboundBed outbound, FakeSmtpServer remote, FakeSmtpServer other)
        {
            Outbound = outbound;
            Remote = remote;
            Other = other;
            Admin = AdminClient.For(outbound.Relay);
        }

        public OutboundBed Outbound { get; }

        public FakeSmtpServer Remote { get; }

        public FakeSmtpServer Other { get; }

        public AdminClient Admin { get; }

        public static async Task<DeferringBed> StartAsync()
        {
            var outbound = await OutboundBed.StartAsync("""
                relay-mta {
                  admin.listen = "127.0.0.1:0"
                  outbound.retry-intervals = [1h]
                }
                """);
            outbound.Route("remote.test", (10, 2));
            outbound.Route("other.test", (10, 3));
            var remote = outbound.Mx(2, new FakeSmtpBehavior { OnRcpt = _ => "451 4.3.0 try later" });
            var other = outbound.Mx(3, new FakeSmtpBehavior { OnRcpt = _ => "451 4.3.0 try later" });
            return new DeferringBed(outbound, remote, other);
        }

        /// <summary>RCPT commands either MX host has seen for <paramref name="recipient"/>: one per attempt.</summary>
        public int Rcpts(string recipient) =>
            Remote.Commands.Concat(Other.Commands).Count(c => c.Contains($"RCPT TO:<{recipient}>", StringComparison.OrdinalIgnoreCase));

        public Task WaitUntilDeferredAsync(params string[] ids) => WaitForAttemptsAsync([.. ids.Select(id => (id, 1))]);

        /// <summary>Waits until each message has been tried (and deferred) at least so many times.</summary>
        public async Task WaitForAttemptsAsync(params (string Id, int Attempts)[] wanted)
        {
            var seen = "";
            await Until(async () =>
            {
                var list = await Admin.JsonAsync("api/messages?pageSize=1000");
                var attempts = list.GetProperty("items").EnumerateArray().ToDictionary(i => i.GetProperty("id").GetString()!,
                    i => (Attempts: i.GetProperty("attempts").GetInt32(), State: i.GetProperty("state").GetString()));
                seen = string.Join(", ", attempts.Select(a => $"{a.Key}: {a.Value.Attempts} {a.Value.State}"));
                return wanted.All(w => attempts.TryGetValue(w.Id, out var a) && a.Attempts >= w.Attempts && a.State != "active");
            }, () => $"attempts wanted {string.Join(", ", wanted)}; queue: {seen}");
        }

        public async ValueTask DisposeAsync()
        {
            Admin.Dispose();
            await Outbound.DisposeAsync();
        }
    }

    /// <summary>A relay started from a configuration file (as with --config), so /api/reload has a file to read again.</summary>
    private sealed class FileRelay : IAsyncDisposable
    {
        private readonly IHost _host;
        private readonly RelayMtaRuntime _runtime;

        private FileRelay(IHost host, RelayMtaRuntime runtime)
        {
            _host = host;
            _runtime = runtime;
        }

        public IPEndPoint SmtpEndpoint => _runtime.BoundEndpoints[0];

        public IPEndPoint AdminEndpoint => _host.Services.GetRequiredService<AdminServer>().Endpoint!;

        public static async Task<FileRelay> StartAsync(string file)
        {
            var (host, runtime) = RelayMtaHost.Create(ConfigLoader.Load(file), logging => logging.SetMinimumLevel(LogLevel.Warning),
                services: s => s.AddRelayMtaAdmin());
            var relay = new FileRelay(host, runtime);
            try
            {
                await host.StartAsync();
            }
            catch
            {
                await relay.DisposeAsync();
                throw;
            }
            return relay;
        }

        public async ValueTask DisposeAsync()
        {
            await _host.StopAsync();
            _host.Dispose();
            _runtime.Dispose();
        }
    }
}
