using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Coinop.Core.Protocol;
using Coinop.Core.Work;
using Coinop.Market.Cluster;
using Coinop.Market.Payments;
using Coinop.Market.Tests.Payments;
using Coinop.Market.Tests.TestProviders;
using Coinop.Storage.Ledger;
using Coinop.Storage.Work;
using Coinop.Ecash.MintClient;
using Eventually = Coinop.Market.Tests.Gateway.Eventually;

namespace Coinop.Market.Tests.Cluster;

/// <summary>The guarantees that hold across nodes: fenced links, authenticated forwarding, one holder per duty, money once.</summary>
public class NodeSafetyTests
{
    [Fact]
    public async Task A_result_that_arrives_over_a_link_another_node_has_taken_over_credits_nothing()
    {
        var ct = TestContext.Current.CancellationToken;
        // Node 1 reads the others only at start: its old session of the provider stays open after the provider linked again
        // elsewhere, so the old link's result reaches its pipeline and only the store's epoch can refuse it.
        await using var nodes = await TestNodes.StartAsync(2, paid: true, cluster: o => o.ViewRefreshInterval = TimeSpan.FromHours(1));
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var old = await nodes[0].ProviderAsync("llama3", ct, script: async (job, run) =>
        {
            await run.SendAsync("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"first\"}}]}\n\n");
            await release.Task.WaitAsync(run.Cancelled);
            await run.SendAsync("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" last\"}}]}\n\ndata: [DONE]\n\n");
            await run.DoneAsync(5, 7);
        });
        await using var _ = old;
        var mint = new CashuMintClient(nodes[0].Http, nodes.PublicUrl + "/mint");
        var token = await PaidMarket.TokenAsync(mint, 50);

        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent(PaidMarket.ChatBody(stream: true), Encoding.UTF8, "application/json"),
        };
        request.Headers.Add(PaidInferenceBilling.HeaderName, token);
        using var response = await nodes[0].Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct));
        Assert.StartsWith("data: {", await reader.ReadLineAsync(ct), StringComparison.Ordinal); // output reached the consumer

        // The provider links again, to node 2: epoch 2. Node 1 still holds its socket of epoch 1.
        await using var again = await TestProvider.ConnectAsync(nodes[1].Url, "test", key: TestProvider.NewKeyFrom(old.Key), cancellationToken: ct);
        await again.OfferAsync("llama3", ct);
        Assert.False(old.Closed.IsCompleted);
        release.SetResult();

        var rest = await reader.ReadToEndAsync(ct);
        Assert.DoesNotContain("data: [DONE]", rest, StringComparison.Ordinal); // not a clean finish: the result did not count
        Assert.Contains("\"error\"", rest, StringComparison.Ordinal);

        var ledger = TestNodes.Get<ILedgerStore>(nodes[0]);
        Assert.Equal(0, (await ledger.EarningsAsync(old.ProviderId, ct)).EarnedMsat); // the provider is credited nothing
        var summary = await SummaryAsync(nodes[0], nodes.AdminToken);
        LedgerAssert.Balanced(summary);
        Assert.Equal(0, summary.HeldMsat);
        Assert.Equal(0, summary.SpentMsat);
        Assert.Equal(50_000, summary.BalancesMsat); // the payer keeps the whole value, in the token's balance
        Assert.Empty(await ledger.AuditAsync(ct));
    }

    [Fact]
    public async Task The_node_to_node_channel_refuses_consumer_credentials_forgeries_and_replays()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var nodes = await TestNodes.StartAsync(2);
        var job = new JobMessage(Guid.NewGuid(), 1, "llama3", WireFormat.OpenAi, "chat/completions", false,
            JsonDocument.Parse("""{"model":"llama3","messages":[]}""").RootElement, 0, 65536);
        var body = ProtocolJson.Serialize(job);
        async Task<HttpStatusCode> PostAsync(Action<HttpRequestMessage> decorate)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, ForwardClient.Path) { Content = new ByteArrayContent(body) };
            request.Headers.Add(ForwardClient.ProviderHeader, "p0000000000000000000");
            request.Headers.Add(ForwardClient.EpochHeader, "1");
            decorate(request);
            using var response = await nodes[1].Http.SendAsync(request, ct);
            return response.StatusCode;
        }

        // Consumer credentials mean nothing on the internal channel: the admin token, a balance key, nothing at all.
        Assert.Equal(HttpStatusCode.Unauthorized, await PostAsync(r => r.Headers.Authorization = new AuthenticationHeaderValue("Bearer", nodes.AdminToken)));
        Assert.Equal(HttpStatusCode.Unauthorized, await PostAsync(r => r.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "sk-whatever")));
        Assert.Equal(HttpStatusCode.Unauthorized, await PostAsync(_ => { }));

        // A genuine signature from node 1 passes (the provider is not there: 409), once.
        var signed = TestNodes.Get<NodeAuth>(nodes[0]).Sign("n-test", "POST", ForwardClient.Path, body).ToList();
        Assert.Equal(HttpStatusCode.Conflict, await PostAsync(r => signed.ForEach(h => r.Headers.Add(h.Key, h.Value))));
        Assert.Equal(HttpStatusCode.Unauthorized, await PostAsync(r => signed.ForEach(h => r.Headers.Add(h.Key, h.Value)))); // the replay

        // Altered: another node id under the same signature, or a signature over another body.
        var forged = TestNodes.Get<NodeAuth>(nodes[0]).Sign("n-test", "POST", ForwardClient.Path, body).ToList();
        Assert.Equal(HttpStatusCode.Unauthorized, await PostAsync(r => forged.ForEach(h => r.Headers.Add(h.Key, h.Key == NodeAuth.NodeHeader ? "n-other" : h.Value))));
        var otherBody = TestNodes.Get<NodeAuth>(nodes[0]).Sign("n-test", "POST", ForwardClient.Path, Encoding.UTF8.GetBytes("{}")).ToList();
        Assert.Equal(HttpStatusCode.Unauthorized, await PostAsync(r => otherBody.ForEach(h => r.Headers.Add(h.Key, h.Value))));
    }

    [Fact]
    public async Task The_operator_sees_every_node_with_its_providers_and_duties_and_health_says_ready()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var nodes = await TestNodes.StartAsync(2, paid: true);
        await using var provider = await nodes[1].ProviderAsync("llama3", ct);
        await nodes.WaitRoutableAsync(0, provider.ProviderId);

        for (var i = 0; i < 2; i++)
        {
            using var health = await nodes[i].Http.GetAsync("/healthz", ct);
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
            Assert.Contains("\"status\":\"ready\"", await health.Content.ReadAsStringAsync(ct), StringComparison.Ordinal);
        }

        using (var anonymous = await nodes[0].Http.GetAsync("/api/nodes", ct))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        }

        // One admin token for the whole market: the first node's works on the second.
        var view = await NodesAsync(nodes[1], nodes.AdminToken);
        var listed = view.GetProperty("nodes").EnumerateArray().ToList();
        Assert.Equal(2, listed.Count);
        Assert.All(listed, n => Assert.Equal("ready", n.GetProperty("state").GetString()));
        var holder = listed.Single(n => n.GetProperty("providers").EnumerateArray().Any(p => p.GetString() == provider.ProviderId));
        Assert.True(holder.GetProperty("this_node").GetBoolean());
        await Eventually.TrueAsync(async () =>
        {
            var duties = (await NodesAsync(nodes[0], nodes.AdminToken)).GetProperty("nodes").EnumerateArray()
                .SelectMany(n => n.GetProperty("duties").EnumerateArray().Select(d => d.GetString())).ToList();
            return duties.Count(d => d == "change_stock") == 1 && duties.Count(d => d == "node_takeover") == 1;
        }, ct);

        await nodes.StopAsync(1);
        var after = (await NodesAsync(nodes[0], nodes.AdminToken)).GetProperty("nodes").EnumerateArray().ToList();
        Assert.Equal("left", after.Single(n => !n.GetProperty("this_node").GetBoolean()).GetProperty("state").GetString());
    }

    [Fact]
    public async Task Each_duty_has_one_holder_and_a_node_that_stops_hands_its_duties_over_at_once()
    {
        var ct = TestContext.Current.CancellationToken;
        // Long leases: a duty that moves quickly can only have been handed over, not taken after its lease lapsed.
        await using var nodes = await TestNodes.StartAsync(2, paid: true, cluster: o =>
        {
            o.DutyTtl = TimeSpan.FromMinutes(10);
            o.DutyRenewInterval = TimeSpan.FromMilliseconds(100);
        });
        var work = TestNodes.Get<IWorkStore>(nodes[0]);
        async Task<Dictionary<string, string?>> HoldersAsync() =>
            (await work.ListOpenAsync(WorkKinds.NodeDuty, 100, ct)).ToDictionary(d => d.Item.Id, d => d.LeaseLapsed ? null : d.Holder?.OwnerId);
        string[] duties = [ChangeStock.Duty, NodeTakeover.Duty, Market.Abuse.StaleRowSweep.Duty, Market.Inference.Responses.ResponsePruner.Duty, "melt_recovery"];
        await Eventually.TrueAsync(async () =>
        {
            var held = await HoldersAsync();
            return held.Count == duties.Length && duties.All(d => held.GetValueOrDefault("duty:" + d) is not null);
        }, ct);

        var holders = await HoldersAsync();
        var stockHolder = holders["duty:" + ChangeStock.Duty]!;
        var index = TestNodes.Get<NodeRegistry>(nodes[0]).NodeId == stockHolder ? 0 : 1;
        work = TestNodes.Get<IWorkStore>(nodes[1 - index]); // the other node's store stays open
        await nodes.StopAsync(index);

        var survivor = TestNodes.Get<NodeRegistry>(nodes[1 - index]).NodeId;
        await Eventually.TrueAsync(async () => (await HoldersAsync()).Values.All(h => h == survivor), ct, TimeSpan.FromSeconds(30));
        var history = await work.HistoryAsync("duty:" + ChangeStock.Duty, ct);
        Assert.Contains(history, e => e.Kind == WorkEventKinds.Revoked); // handed back by the node that stopped
    }

    [Fact]
    public async Task The_holds_of_a_node_that_is_gone_are_released_into_their_payers_balances_by_another()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var nodes = await TestNodes.StartAsync(2, paid: true);
        var mint = new CashuMintClient(nodes[0].Http, nodes.PublicUrl + "/mint");
        var token = await PaidMarket.TokenAsync(mint, 9);
        // A request on node 2 took the token; then node 2 went away: nothing of node 2 will settle or release its hold.
        var cashier = TestNodes.Get<Cashier>(nodes[1]);
        var accepted = await cashier.AcceptAsync(cashier.CheckToken(token).Token!, new CreditHold(Guid.NewGuid(), 1_000), ct);
        Assert.Equal(AcceptOutcome.Held, accepted.Outcome);
        await nodes.StopAsync(1);

        await Eventually.TrueAsync(async () => (await SummaryAsync(nodes[0], nodes.AdminToken)).HeldMsat == 0, ct);
        var summary = await SummaryAsync(nodes[0], nodes.AdminToken);
        LedgerAssert.Balanced(summary);
        Assert.Equal(9_000, summary.BalancesMsat);
        Assert.Empty(await TestNodes.Get<ILedgerStore>(nodes[0]).AuditAsync(ct));
    }

    [Fact]
    public async Task A_token_sent_to_three_nodes_at_once_pays_for_exactly_one_request()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var nodes = await TestNodes.StartAsync(3, paid: true);
        await using var provider = await nodes[0].ProviderAsync("llama3", ct, inSats: 1, outSats: 1);
        await nodes.WaitRoutableAsync(1, provider.ProviderId);
        await nodes.WaitRoutableAsync(2, provider.ProviderId);
        var mint = new CashuMintClient(nodes[0].Http, nodes.PublicUrl + "/mint");

        for (var round = 0; round < 5; round++)
        {
            var token = await PaidMarket.TokenAsync(mint, 20);
            var responses = await Task.WhenAll(Enumerable.Range(0, 3).Select(async i =>
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
                {
                    Content = new StringContent(PaidMarket.ChatBody(), Encoding.UTF8, "application/json"),
                };
                request.Headers.Add(PaidInferenceBilling.HeaderName, token);
                using var response = await nodes[i].Http.SendAsync(request, ct);
                return response.StatusCode;
            }));
            Assert.Equal(1, responses.Count(s => s == HttpStatusCode.OK));
        }

        var summary = await SummaryAsync(nodes[1], nodes.AdminToken);
        LedgerAssert.Balanced(summary);
        Assert.Equal(5 * 20_000, summary.ReceivedMsat); // each token counted in once
        Assert.Equal(0, summary.HeldMsat);
    }

    [Fact]
    public async Task A_balance_key_spent_on_several_nodes_at_once_never_goes_below_zero_and_the_books_balance()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var nodes = await TestNodes.StartAsync(3, paid: true);
        // Room for every request at once: only the balance may say no.
        await using var provider = await TestProvider.ConnectAsync(nodes[0].Url, "roomy", cancellationToken: ct);
        await provider.OfferAsync(ct, 64, TestProvider.Offer("llama3", 100, 100));
        await nodes.WaitRoutableAsync(1, provider.ProviderId);
        await nodes.WaitRoutableAsync(2, provider.ProviderId);
        var mint = new CashuMintClient(nodes[0].Http, nodes.PublicUrl + "/mint");
        var created = await PostJsonAsync(nodes[1], "/v1/balance/create", new { token = await PaidMarket.TokenAsync(mint, 10) });
        var key = created.GetProperty("api_key").GetString()!;

        // Each request reserves about 0.8 sat (8000 tokens at 100 sat per million, within the offer's 8192-token context): the
        // 10 sat cover about twelve at once; 30 race.
        var statuses = await Task.WhenAll(Enumerable.Range(0, 30).Select(async i =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
            {
                Content = new StringContent(PaidMarket.ChatBody(maxTokens: 8_000), Encoding.UTF8, "application/json"),
            };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
            using var response = await nodes[i % 3].Http.SendAsync(request, ct);
            return response.StatusCode;
        }));
        Assert.Contains(HttpStatusCode.OK, statuses);
        Assert.All(statuses, s => Assert.True(s is HttpStatusCode.OK or HttpStatusCode.PaymentRequired, $"got {s}"));

        var summary = await SummaryAsync(nodes[2], nodes.AdminToken);
        LedgerAssert.Balanced(summary);
        Assert.Equal(0, summary.HeldMsat);
        var balance = (await GetJsonAsync(nodes[0], "/v1/balance/info", key)).GetProperty("balance_msat").GetInt64();
        Assert.InRange(balance, 0, 10_000);
        Assert.Equal(10_000, balance + summary.SpentMsat); // every msat is either still there or spent on a served request
        Assert.Empty(await TestNodes.Get<ILedgerStore>(nodes[0]).AuditAsync(ct));
    }

    private static async Task<JsonElement> NodesAsync(MarketUnderTest node, string adminToken) => await GetJsonAsync(node, "/api/nodes", adminToken);

    private static async Task<LedgerSummary> SummaryAsync(MarketUnderTest node, string adminToken)
    {
        var s = await GetJsonAsync(node, "/api/ledger/summary", adminToken);
        long Get(string name) => s.GetProperty(name).GetInt64();
        return new LedgerSummary(Get("received_msat"), Get("spent_msat"), Get("refunded_msat"), Get("balances_msat"), Get("held_msat"),
            Get("provider_earned_msat"), Get("owed_msat"), Get("fee_msat"), Get("paid_out_msat"));
    }

    private static async Task<JsonElement> GetJsonAsync(MarketUnderTest node, string path, string? bearer)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }

        using var response = await node.Http.SendAsync(request, TestContext.Current.CancellationToken);
        var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True(response.IsSuccessStatusCode, $"{path}: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private static async Task<JsonElement> PostJsonAsync(MarketUnderTest node, string path, object body)
    {
        using var response = await node.Http.PostAsync(path, new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json"),
            TestContext.Current.CancellationToken);
        var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True(response.IsSuccessStatusCode, $"{path}: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }
}
