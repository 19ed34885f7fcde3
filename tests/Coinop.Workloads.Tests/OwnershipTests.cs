using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Coinop.Core.Workloads;
using Coinop.Ecash.Tokens;
using Coinop.TestKit;
using Coinop.Workloads.Tests.Infrastructure;
using CsCheck;

namespace Coinop.Workloads.Tests;

/// <summary>
/// A workload belongs to its submitter (issue 9, item 10). A stranger — no owner key, or a key of its own — who knows a
/// workload's id can neither read its command, output, details or access receipt nor cancel or top it up, on a free
/// market as on a paid one, and sees only its own workloads in the list. The submitter, over HTTP or with the CLI from
/// its data directory, does everything as before.
/// </summary>
public sealed class OwnershipTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task On_a_free_market_a_stranger_can_neither_read_nor_cancel_nor_top_up_a_workload()
    {
        await using var cluster = await WorkloadCluster.StartAsync(providers: 1); // --free
        var secret = "s3cr3t-" + Guid.NewGuid().ToString("N");
        var workload = new TestWorkload($"echo {secret}; while :; do sleep 1; done");
        using var watch = workload.Watch();
        try
        {
            var submitted = await cluster.SubmitAsync(workload.Request(new { duration_seconds = 600 }));
            var id = (string)submitted["id"]!;
            Assert.Null(submitted["owner_key"]); // the consumer sent its own key: the market has nothing to hand back
            await cluster.WaitForStateAsync(id, "live");
            await LifecycleTests.WaitForOutputAsync(cluster, id, secret);
            var paidUntil = (string?)(await cluster.GetAsync(id))["paid_until"];

            using var nobody = new HttpClient { BaseAddress = new Uri(cluster.Url), Timeout = TimeSpan.FromSeconds(60) };
            using var stranger = new HttpClient { BaseAddress = new Uri(cluster.Url), Timeout = TimeSpan.FromSeconds(60) };
            stranger.DefaultRequestHeaders.Add(WorkloadOwnerKey.Header, WorkloadOwnerKey.New());

            foreach (var (client, status, code) in new[] { (nobody, HttpStatusCode.Unauthorized, "owner_key_required"), (stranger, HttpStatusCode.Forbidden, "not_the_owner") })
            {
                var attempts = new (string Name, Func<Task<HttpResponseMessage>> Send)[]
                {
                    ("status", () => client.GetAsync($"/api/workloads/{id}", Ct)),
                    ("logs", () => client.GetAsync($"/api/workloads/{id}/logs", Ct)),
                    ("logs -f", () => client.GetAsync($"/api/workloads/{id}/logs?follow=true", HttpCompletionOption.ResponseHeadersRead, Ct)),
                    ("access", () => client.GetAsync($"/api/workloads/{id}/access", Ct)),
                    ("refund", () => client.GetAsync($"/api/workloads/{id}/refund", Ct)),
                    ("cancel", () => client.DeleteAsync($"/api/workloads/{id}", Ct)),
                    ("topup", () => client.PostAsJsonAsync($"/api/workloads/{id}/topup", new { duration_seconds = 3600 }, Ct)),
                };
                foreach (var (name, send) in attempts)
                {
                    using var response = await send();
                    var body = await response.Content.ReadAsStringAsync(Ct);
                    Assert.True(response.StatusCode == status, $"{name} by a stranger: {(int)response.StatusCode} {body}");
                    Assert.Equal(code, (string?)JsonNode.Parse(body)!["error"]!["code"]);
                    Assert.DoesNotContain(secret, body, StringComparison.Ordinal);
                    Assert.DoesNotContain(workload.Marker, body, StringComparison.Ordinal); // the command line
                }

                // The list is the caller's own: the stranger's is empty, and nobody's is refused.
                using var list = await client.GetAsync("/api/workloads", Ct);
                var listed = await list.Content.ReadAsStringAsync(Ct);
                if (client == nobody)
                {
                    Assert.Equal(HttpStatusCode.Unauthorized, list.StatusCode);
                }
                else
                {
                    Assert.Equal(HttpStatusCode.OK, list.StatusCode);
                    Assert.Empty(JsonNode.Parse(listed)!.AsArray());
                }

                Assert.DoesNotContain(id, listed, StringComparison.Ordinal);
            }

            // Nothing the strangers did took effect: still live on its first copy, the lease as it was.
            var after = await cluster.GetAsync(id);
            Assert.Equal(("live", 1L, paidUntil), ((string?)after["state"], (long)after["epoch"]!, (string?)after["paid_until"]));
            Assert.Single(watch.Current);
            watch.AssertSingleWriter();

            // The owner lists, reads, and cancels it.
            Assert.Contains(JsonNode.Parse(await cluster.Http.GetStringAsync(cluster.Url + "/api/workloads", Ct))!.AsArray(), w => (string?)w!["id"] == id);
            using var cancel = await cluster.Http.DeleteAsync($"{cluster.Url}/api/workloads/{id}", Ct);
            Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
            await watch.WaitForNoneAsync();
        }
        catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException(ex.Message + "\n" + cluster.Diagnostics(), ex);
        }
    }

    [Fact]
    public async Task A_submit_without_an_owner_key_gets_one_made_and_returned_once_and_a_malformed_key_is_a_400()
    {
        await using var cluster = await WorkloadCluster.StartAsync(providers: 1);
        var workload = new TestWorkload("echo hi; sleep 60");
        using var watch = workload.Watch();
        try
        {
            using var anonymous = new HttpClient { BaseAddress = new Uri(cluster.Url), Timeout = TimeSpan.FromSeconds(60) };
            using (var bad = new HttpRequestMessage(HttpMethod.Post, "/api/workloads") { Content = JsonContent.Create(workload.Request()) })
            {
                bad.Headers.Add(WorkloadOwnerKey.Header, "short");
                using var refused = await anonymous.SendAsync(bad, Ct);
                Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
                Assert.Equal("invalid_owner_key", (string?)JsonNode.Parse(await refused.Content.ReadAsStringAsync(Ct))!["error"]!["code"]);
            }

            using var response = await anonymous.PostAsJsonAsync("/api/workloads", workload.Request(), Ct);
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
            var view = JsonNode.Parse(await response.Content.ReadAsStringAsync(Ct))!;
            var id = (string)view["id"]!;
            var key = (string?)view["owner_key"];
            Assert.True(WorkloadOwnerKey.IsWellFormed(key), $"no owner key in the submit answer: {view}");

            // Only the key made for it opens it; the answer to the owner does not repeat the key.
            using var owner = new HttpClient { BaseAddress = new Uri(cluster.Url), Timeout = TimeSpan.FromSeconds(60) };
            owner.DefaultRequestHeaders.Add(WorkloadOwnerKey.Header, key);
            var status = JsonNode.Parse(await owner.GetStringAsync($"/api/workloads/{id}", Ct))!;
            Assert.Equal(id, (string?)status["id"]);
            Assert.Null(status["owner_key"]);
            using var byCluster = await cluster.Http.GetAsync($"{cluster.Url}/api/workloads/{id}", Ct);
            Assert.Equal(HttpStatusCode.Forbidden, byCluster.StatusCode);
            using var cancel = await owner.DeleteAsync($"/api/workloads/{id}", Ct);
            Assert.Equal(HttpStatusCode.OK, cancel.StatusCode);
            await watch.WaitForNoneAsync();
        }
        catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException(ex.Message + "\n" + cluster.Diagnostics(), ex);
        }
    }

    [Fact]
    public async Task The_CLI_works_for_the_submitter_and_refuses_anyone_else_s_data_directory()
    {
        await using var cluster = await WorkloadCluster.StartAsync(providers: 1);
        var mine = Path.Combine(cluster.DataDir, "mine"); // a fresh consumer: the CLI makes its owner key
        var theirs = Path.Combine(cluster.DataDir, "theirs");
        string[] As(string data, params string[] args) => [.. args[..2], "--market", cluster.Url, "--data", data, .. args[2..]];
        var workload = new TestWorkload("echo from-the-cli; while :; do sleep 1; done");
        using var watch = workload.Watch();
        try
        {
            var id = (await CliTests.CoinopAsync(cluster, As(mine, ["workload", "submit", "--cpu", "0.2", "--memory", "64", "--duration", "10m", "--", .. workload.Argv])))
                .Trim().Split('\n')[^1].Trim();
            Assert.True(File.Exists(Path.Combine(mine, "owner.key")));
            await watch.WaitForEpochAsync(1);

            // Another data directory is another consumer: a clear one-line refusal and a non-zero exit, for every command.
            foreach (var command in new[] { "status", "logs", "cancel", "topup" })
            {
                var refused = await CliTests.CoinopAsync(cluster, As(theirs, "workload", command, id), expectedExit: 1);
                Assert.Contains("not the one it was submitted with", refused, StringComparison.Ordinal);
                Assert.DoesNotContain("from-the-cli", refused, StringComparison.Ordinal);
            }

            Assert.DoesNotContain(id, await CliTests.CoinopAsync(cluster, As(theirs, "workload", "list")), StringComparison.Ordinal);

            // The submitter's commands work as they always did.
            await Eventually.WaitAsync<string>(async () => await CliTests.CoinopAsync(cluster, As(mine, "workload", "status", id)),
                o => o!.Contains("state      live", StringComparison.Ordinal), "live, through the CLI", TimeSpan.FromSeconds(30), Ct);
            await Eventually.WaitAsync<string>(async () => await CliTests.CoinopAsync(cluster, As(mine, "workload", "logs", id)),
                o => o!.Contains("from-the-cli", StringComparison.Ordinal), "the output through the CLI", TimeSpan.FromSeconds(30), Ct);
            Assert.Contains(id, await CliTests.CoinopAsync(cluster, As(mine, "workload", "list")), StringComparison.Ordinal);
            Assert.Contains("paid until", await CliTests.CoinopAsync(cluster, As(mine, "workload", "topup", id, "--duration", "5m")), StringComparison.Ordinal);
            Assert.Contains("cancelled", await CliTests.CoinopAsync(cluster, As(mine, "workload", "cancel", id)), StringComparison.Ordinal);
            await watch.WaitForNoneAsync();
        }
        catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException(ex.Message + "\n" + cluster.Diagnostics(), ex);
        }
    }

    [Fact]
    public async Task On_a_paid_market_a_stranger_cannot_top_up_or_read_and_hostile_tokens_and_bodies_are_never_a_500()
    {
        await using var cluster = await WorkloadCluster.StartAsync(providers: 1, configure: PaidWorkloadTests.Paid, providerArgs: PaidWorkloadTests.OneSatPerSecond);
        var workload = TestWorkload.Forever();
        using var watch = workload.Watch();
        try
        {
            var wallet = await PaidWorkloadTests.WalletAsync(cluster, 100);
            var request = workload.Request(new { duration_seconds = 30 });
            using var submit = new HttpRequestMessage(HttpMethod.Post, cluster.Url + "/api/workloads") { Content = JsonContent.Create(request) };
            submit.Headers.Add("X-Cashu", await wallet.SendAsync(30, cluster.Url + "/mint", Ct));
            using var submitted = await cluster.Http.SendAsync(submit, Ct);
            Assert.Equal(HttpStatusCode.Created, submitted.StatusCode);
            var id = (string)JsonNode.Parse(await submitted.Content.ReadAsStringAsync(Ct))!["id"]!;
            await cluster.WaitForStateAsync(id, "live");

            // A stranger with its own key and its own money: no top-up, and its token is not taken.
            using var stranger = new HttpClient { BaseAddress = new Uri(cluster.Url), Timeout = TimeSpan.FromSeconds(60) };
            stranger.DefaultRequestHeaders.Add(WorkloadOwnerKey.Header, WorkloadOwnerKey.New());
            var strangerWallet = await PaidWorkloadTests.WalletAsync(cluster, 20, "stranger-wallet");
            var token = await strangerWallet.SendAsync(10, cluster.Url + "/mint", Ct);
            using (var topUp = new HttpRequestMessage(HttpMethod.Post, $"/api/workloads/{id}/topup") { Content = JsonContent.Create(new { duration_seconds = 10 }) })
            {
                topUp.Headers.Add("X-Cashu", token);
                using var refused = await stranger.SendAsync(topUp, Ct);
                Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
            }

            Assert.Equal(10UL, await strangerWallet.ReceiveAsync(token, Ct)); // still unspent: the stranger's own again
            using (var read = await stranger.GetAsync($"/api/workloads/{id}", Ct))
            {
                Assert.Equal(HttpStatusCode.Forbidden, read.StatusCode);
            }

            // Hostile tokens for the owner's top-up (X-Cashu) and hostile bodies for submit and top-up: a 4xx, never a 500.
            var v4 = await wallet.SendAsync(2, cluster.Url + "/mint", Ct);
            var v3 = TokenCodec.EncodeV3(TokenCodec.Decode(await wallet.SendAsync(2, cluster.Url + "/mint", Ct)));
            await HostileInput.Tokens(v3, v4).Where(t => t.All(c => c is >= ' ' and < (char)0x7f) && t.Trim().Length > 0).SampleAsync(async hostile =>
            {
                using var topUp = new HttpRequestMessage(HttpMethod.Post, $"{cluster.Url}/api/workloads/{id}/topup");
                topUp.Headers.Add("X-Cashu", hostile);
                await AssertNoServerErrorAsync(await cluster.Http.SendAsync(topUp, Ct), "topup X-Cashu", hostile);
            }, iter: 40, threads: 1);
            var validSubmit = request.ToJsonString();
            foreach (var (path, valid) in new[] { ("/api/workloads", validSubmit), ($"/api/workloads/{id}/topup", """{"duration_seconds":10}""") })
            {
                await HostileInput.JsonBodies(valid).SampleAsync(async body =>
                {
                    using var content = new StringContent(body, Encoding.UTF8, "application/json");
                    await AssertNoServerErrorAsync(await cluster.Http.PostAsync(cluster.Url + path, content, Ct), path, body);
                }, iter: 40, threads: 1);
            }

            Assert.Equal("live", (string?)(await cluster.GetAsync(id))["state"]);
            await cluster.AssertBalancedAsync();
        }
        catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException(ex.Message + "\n" + cluster.Diagnostics(), ex);
        }
    }

    /// <summary>Never a server error; a refusal has a JSON error body (a mutation that is still a valid request may be served).</summary>
    private static async Task AssertNoServerErrorAsync(HttpResponseMessage response, string name, string input)
    {
        using (response)
        {
            var text = await response.Content.ReadAsStringAsync(Ct);
            var status = (int)response.StatusCode;
            if (status >= 400)
            {
                using var json = JsonDocument.Parse(text);
                Assert.True(json.RootElement.TryGetProperty("error", out var error), $"{name}: {status} without an error body: {text}");

                // A mutation can still be a valid submit that asks for more than the one provider has free: the market's
                // answer to that is 503 no_capacity, a refusal of the request, not a server error.
                var noCapacity = status == 503 && error.TryGetProperty("code", out var code) && code.ValueKind == JsonValueKind.String && code.GetString() == "no_capacity";
                Assert.True(status < 500 || noCapacity, $"{name}: {status} {text} for {input}");
            }
        }
    }
}
