using System.Net;
using System.Text;
using System.Text.Json;
using Coinop.Ecash.MintApi;
using Coinop.Storage.Ledger;
using Coinop.TestKit;

namespace Coinop.EndToEnd.Tests;

/// <summary>
/// Three market nodes on one PostgreSQL behind HAProxy, every part a real process: one market, whichever node a request
/// reaches; node deaths (kill -9) handled by the others.
/// </summary>
[Collection(nameof(ManyProcesses))]
public class MultiNodeTests
{
    private static StringContent Chat(string content, bool stream = false) =>
        new($$"""{"model":"sim-small","stream":{{(stream ? "true" : "false")}},"max_tokens":500,"messages":[{"role":"user","content":"{{content}}"}]}""",
            Encoding.UTF8, "application/json");

    [Fact]
    public async Task Three_nodes_behind_HAProxy_serve_a_stream_at_node_three_token_by_token_from_a_provider_linked_to_node_one()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var cluster = new Cluster();
        await using var nodes = await MarketNodes.StartAsync(cluster, 3);
        var (_, sim) = await cluster.StartSimulatorAsync("sim", "--tokens-per-second", "20");
        var (_, id) = await cluster.StartProviderAsync("provider", nodes.Url(0), "--backend", $"openai={sim}");
        await cluster.WaitOnlineAsync(nodes.Url(2), id);

        try
        {
            // As soon as node 3 shows the provider online, it lists its models and routes to it: no waiting for more (a
            // refresh that paired the provider's offers with the "not accepting yet" of its link's first moment once
            // answered 404 here).
            Assert.Contains("\"sim-small\"", await cluster.Http.GetStringAsync(nodes.Url(2) + "/v1/models", ct), StringComparison.Ordinal);

            // Straight to node 3, which holds no provider: the job runs on node 1's link and streams back through node 3.
            using var post = new HttpRequestMessage(HttpMethod.Post, nodes.Url(2) + "/v1/chat/completions") { Content = Chat("[[sim:tokens=200]] a long story", stream: true) };
            using var response = await cluster.Http.SendAsync(post, HttpCompletionOption.ResponseHeadersRead, ct);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{response.StatusCode}: {(response.IsSuccessStatusCode ? "" : await response.Content.ReadAsStringAsync(ct))}");
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct));
            Assert.StartsWith("data: {", await reader.ReadLineAsync(ct), StringComparison.Ordinal);

            // The consumer has output while the provider is still generating: relayed as it comes, not gathered. Asked of
            // node 1, which holds the link and counts its jobs live (the others see figures published a moment later).
            var provider = await cluster.ProviderAsync(nodes.Url(0), id);
            Assert.True(provider!.Value.GetProperty("load").GetProperty("in_flight").GetInt32() > 0, "the job already finished at the provider");
            var rest = await reader.ReadToEndAsync(ct);
            Assert.EndsWith("data: [DONE]\n\n", rest, StringComparison.Ordinal);
            Assert.Equal(200, rest.Split('\n').Count(l => l.Contains("\"content\":\"", StringComparison.Ordinal) && !l.Contains("\"content\":\"\"", StringComparison.Ordinal)));

            // Through the balancer, round robin: every node answers, with the one provider.
            for (var i = 0; i < 6; i++)
            {
                using var whole = await cluster.Http.PostAsync(nodes.BalancerUrl + "/v1/chat/completions", Chat("[[sim:tokens=3]] hi"), ct);
                Assert.Equal(HttpStatusCode.OK, whole.StatusCode);
            }

            // The node-to-node channel is not for the outside.
            using var inside = await cluster.Http.PostAsync(nodes.BalancerUrl + "/internal/jobs", new StringContent("{}"), ct);
            Assert.Equal(HttpStatusCode.Forbidden, inside.StatusCode);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            throw new InvalidOperationException(ex.Message + "\n" + cluster.Diagnostics(), ex);
        }
    }

    [Fact]
    public async Task Killing_a_providers_node_moves_the_provider_and_ends_or_retries_the_jobs_that_went_through_it()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var cluster = new Cluster();
        await using var nodes = await MarketNodes.StartAsync(cluster, 3);
        var (_, slowSim) = await cluster.StartSimulatorAsync("slow-sim", "--tokens-per-second", "20");
        var (_, fastSim) = await cluster.StartSimulatorAsync("fast-sim");
        // The cheap provider links to node 1 (first in its list) and wins every routing comparison; the dear one is on node 2.
        var (_, cheap) = await cluster.StartProviderAsync("cheap", nodes.AllUrls, "--backend", $"openai={slowSim}", "--price", "sim-small=1:1");
        var (_, dear) = await cluster.StartProviderAsync("dear", nodes.Url(1), "--backend", $"openai={fastSim}", "--price", "sim-small=5000:9000");
        await cluster.WaitOnlineAsync(nodes.Url(2), cheap);
        await cluster.WaitOnlineAsync(nodes.Url(2), dear);

        try
        {
            // At node 3: a stream already flowing through node 1, and a whole answer not begun (its output is gathered until done).
            using var post = new HttpRequestMessage(HttpMethod.Post, nodes.Url(2) + "/v1/chat/completions") { Content = Chat("[[sim:tokens=400]] stream", stream: true) };
            using var streaming = await cluster.Http.SendAsync(post, HttpCompletionOption.ResponseHeadersRead, ct);
            using var reader = new StreamReader(await streaming.Content.ReadAsStreamAsync(ct));
            Assert.StartsWith("data: {", await reader.ReadLineAsync(ct), StringComparison.Ordinal);
            var whole = cluster.Http.PostAsync(nodes.Url(2) + "/v1/chat/completions", Chat("[[sim:tokens=400]] whole"), ct);
            await Eventually.WaitAsync(() => cluster.ProviderAsync(nodes.Url(2), cheap),
                p => p is { } e && e.GetProperty("load").GetProperty("in_flight").GetInt32() >= 2, "both jobs on the cheap provider", cancellationToken: ct);

            nodes.Process(0).KillHard();
            Assert.Equal(137, await nodes.Process(0).WaitForExitAsync());

            // The stream that went through the dead node ends with a clean error; the answer not begun is served elsewhere.
            var rest = await reader.ReadToEndAsync(ct);
            var events = rest.Split('\n').Where(l => l.StartsWith("data: {", StringComparison.Ordinal)).ToList();
            Assert.True(JsonDocument.Parse(events[^1]["data: ".Length..]).RootElement.TryGetProperty("error", out _), "the stream must end with an error event: " + events[^1]);
            Assert.DoesNotContain("data: [DONE]", rest, StringComparison.Ordinal);
            using (var retried = await whole)
            {
                Assert.Equal(HttpStatusCode.OK, retried.StatusCode);
            }

            // The provider moved to another node on its own, and serves again, whichever node a request reaches.
            await cluster.WaitOnlineAsync(nodes.Url(1), cheap);
            await Eventually.WaitAsync(() => NodeOfAsync(cluster, nodes, cheap), n => n is not null && n != nodes.Url(0), "the cheap provider on another node",
                cancellationToken: ct);
            for (var i = 0; i < 4; i++)
            {
                using var again = await cluster.Http.PostAsync(nodes.BalancerUrl + "/v1/chat/completions", Chat("[[sim:tokens=2]] again"), ct);
                Assert.Equal(HttpStatusCode.OK, again.StatusCode);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            throw new InvalidOperationException(ex.Message + "\n" + cluster.Diagnostics(), ex);
        }
    }

    [Fact]
    public async Task The_same_token_sent_to_three_nodes_at_once_pays_for_exactly_one_request()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var cluster = new Cluster();
        await using var nodes = await MarketNodes.StartAsync(cluster, 3, paid: true);
        var (_, sim) = await cluster.StartSimulatorAsync("sim");
        var (_, id) = await cluster.StartProviderAsync("provider", nodes.AllUrls, "--backend", $"openai={sim}", "--price", "sim-small=1:1");
        for (var i = 0; i < 3; i++)
        {
            await cluster.WaitOnlineAsync(nodes.Url(i), id);
        }

        var token = await nodes.TokenAsync(50);
        var statuses = await Task.WhenAll(Enumerable.Range(0, 3).Select(async i =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, nodes.Url(i) + "/v1/chat/completions") { Content = Chat("[[sim:tokens=3]] pay") };
            request.Headers.Add("X-Cashu", token);
            using var response = await cluster.Http.SendAsync(request, ct);
            return response.StatusCode;
        }));

        Assert.True(1 == statuses.Count(s => s == HttpStatusCode.OK), string.Join(", ", statuses));
        var summary = await nodes.SummaryAsync();
        Assert.Empty(summary.Imbalances());
        Assert.Equal(50_000, summary.ReceivedMsat);
    }

    [Fact]
    public async Task The_books_balance_after_paid_load_through_every_node_with_one_node_killed_midway()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var cluster = new Cluster();
        await using var nodes = await MarketNodes.StartAsync(cluster, 3, paid: true);
        var (_, sim) = await cluster.StartSimulatorAsync("sim", "--tokens-per-second", "200");
        var providers = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            // One provider first on each node; all know every node, so the ones on the killed node move.
            var order = string.Join(',', Enumerable.Range(0, 3).Select(j => nodes.Url((i + j) % 3)));
            providers.Add((await cluster.StartProviderAsync($"provider{i + 1}", order, "--backend", $"openai={sim}", "--price", "sim-small=2000:4000")).Id);
        }

        foreach (var id in providers)
        {
            await cluster.WaitOnlineAsync(nodes.BalancerUrl, id);
        }

        var tokens = new List<string>();
        for (var i = 0; i < 40; i++)
        {
            tokens.Add(await nodes.TokenAsync(100));
        }

        var served = 0;
        var sent = 0;
        async Task ClientAsync(int client)
        {
            for (var i = client; i < tokens.Count; i += 4)
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, nodes.BalancerUrl + "/v1/chat/completions") { Content = Chat("[[sim:tokens=30]] load", stream: i % 2 == 0) };
                request.Headers.Add("X-Cashu", tokens[i]);
                try
                {
                    using var response = await cluster.Http.SendAsync(request, ct);
                    await response.Content.ReadAsStringAsync(ct);
                    if (response.StatusCode == HttpStatusCode.OK)
                    {
                        Interlocked.Increment(ref served);
                    }
                }
                catch (HttpRequestException)
                {
                    // A connection cut by the kill: the request's money is recovered by the market, which is what this test checks.
                }

                if (Interlocked.Increment(ref sent) == tokens.Count / 2)
                {
                    nodes.Process(1).KillHard();
                }
            }
        }

        await Task.WhenAll(Enumerable.Range(0, 4).Select(ClientAsync));
        Assert.True(served > tokens.Count / 2, $"only {served} of {tokens.Count} requests were served");

        // Once the survivors took over the dead node's leftovers, nothing is held and the equations hold.
        var summary = await Eventually.WaitAsync<LedgerSummary>(async () => await nodes.SummaryAsync(), s => s is { HeldMsat: 0 }, "the dead node's holds released",
            TimeSpan.FromSeconds(90), ct);
        Assert.Empty(summary.Imbalances());
        Assert.True(summary.SpentMsat > 0);
        Assert.Empty(await nodes.AuditAsync());

        // Each token is either untouched (its request never reached a node: the consumer still holds it) or spent and
        // counted in exactly once; nothing in between.
        var spent = 0;
        foreach (var token in tokens)
        {
            var states = await nodes.TokenStatesAsync(token);
            var state = Assert.Single(states.Distinct());
            spent += state == ProofState.Spent ? 1 : 0;
        }

        Assert.Equal(spent * 100_000L, summary.ReceivedMsat);
    }

    /// <summary>The URL of the node a provider is linked to, from the operator's view of the nodes.</summary>
    private static async Task<string?> NodeOfAsync(Cluster cluster, MarketNodes nodes, string providerId)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, nodes.BalancerUrl + "/api/nodes");
        request.Headers.Authorization = new("Bearer", nodes.AdminToken);
        using var response = await cluster.Http.SendAsync(request, TestContext.Current.CancellationToken);
        var view = JsonDocument.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).RootElement;
        return view.GetProperty("nodes").EnumerateArray()
            .Where(n => n.GetProperty("state").GetString() == "ready" && n.GetProperty("providers").EnumerateArray().Any(p => p.GetString() == providerId))
            .Select(n => n.GetProperty("node_url").GetString())
            .FirstOrDefault();
    }
}
