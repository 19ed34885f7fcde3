using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Coinop.Core.Protocol;
using Coinop.Ecash.Tokens;
using Coinop.Market.Tests.Payments;
using Coinop.Market.Tests.TestProviders;
using Coinop.TestKit;
using CsCheck;

namespace Coinop.Market.Tests.Abuse;

/// <summary>
/// Every HTTP route the market serves, read from its endpoint data source at run time, gets hostile requests: bad bodies,
/// wrong content types, garbage route parameters and other tenants' ids, forged credentials, bad query strings, wrong
/// methods. None may answer a 5xx or an error that is not JSON; the market still answers afterwards, nobody else's
/// money or work moved, and the ledger balances. A route added later is swept without being listed here.
/// </summary>
public class RouteSweepTests
{
    /// <summary>The market serves at least this many routes (it served 60 when the sweep was written): a sweep that enumerates fewer is broken.</summary>
    private const int MinimumRoutes = 55;

    private const string VictimOwnerKey = "victim-owner-key-0123456789abcdef";
    private const string AttackerOwnerKey = "attacker-owner-key-0123456789abcd";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [MemberData(nameof(PaidMarket.Dialects), MemberType = typeof(PaidMarket))]
    public async Task No_route_answers_hostile_input_with_a_server_error_or_an_error_that_is_not_json(Coinop.Storage.SqlDialect dialect)
    {
        await using var market = await PaidMarket.StartAsync(dialect, configure: o => o.WorkloadStopAfter = TimeSpan.FromMinutes(10));
        await using var provider = await ServingProviderAsync(market.Market);
        await using var decoy = await TestProvider.ConnectAsync(market.Url, "decoy", cancellationToken: Ct);
        var victim = await VictimAsync(market);
        var attackerKey = (await market.PostJsonAsync("/v1/balance/create", new { token = await market.TokenAsync(2000) })).GetProperty("api_key").GetString()!;

        // Refunds last: they empty the attacker's balance, which pays for the requests to every other route.
        var routes = RouteSweep.Routes(market.Market.App).OrderBy(r => r.Pattern.EndsWith("/refund", StringComparison.Ordinal)).ToList();
        Assert.True(routes.Count >= MinimumRoutes, $"the sweep found only {routes.Count} routes:\n{string.Join('\n', routes)}");
        foreach (var known in new[] { "/v1/chat/completions", "/api/workloads/{id}", "/mint/v1/swap", "/api/admin/providers/{id}/revoke", "/provider/connect", "/static/{*path}" })
        {
            Assert.Contains(routes, r => r.Pattern == known);
        }

        var hostile = Requests(market, victim, decoy.ProviderId, attackerKey);
        // An answer is judged as it is: a redirect is not followed (to a page that would then be judged instead).
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            UseCookies = false,
            RequestHeaderEncodingSelector = (_, _) => System.Text.Encoding.UTF8, // an attacker's headers need not be ASCII
        };
        using var http = new HttpClient(handler) { BaseAddress = new Uri(market.Url) };
        var statuses = new SortedDictionary<string, int>(StringComparer.Ordinal);
        await RouteSweep.SweepAsync(http, hostile, routes, statuses, Ct);

        await AssertStillServingAsync(market, victim);
        TestContext.Current.TestOutputHelper?.WriteLine(string.Join('\n', statuses.Select(s => $"{s.Value,6} × {s.Key}")));
    }

    /// <summary>What the sweep found, each kept as a focused check (status before the fix in the comment).</summary>
    [Fact]
    public async Task The_requests_the_sweep_found_answered_badly_are_clean_refusals()
    {
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: Ct);
        using var http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false }) { BaseAddress = new Uri(market.Url) };

        // An amount that is not a number: was a 500 (JsonElement.TryGetInt64 throws on an array).
        using (var payout = await http.PostAsync("/api/provider/payout", new StringContent("""{"amount":[1]}""", System.Text.Encoding.UTF8, "application/json"), Ct))
        {
            await RouteSweep.AssertCleanRefusalAsync(payout, HttpStatusCode.BadRequest);
        }

        // An empty catch-all route value, refused by minimal-API binding: was a 400 with no body.
        using (var asset = await http.GetAsync("/static/", Ct))
        {
            await RouteSweep.AssertCleanRefusalAsync(asset, HttpStatusCode.BadRequest);
        }

        // A sign-in form cut off mid-part: was a 500 (ReadFormAsync's IOException).
        using var form = new ByteArrayContent("--b\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\nx"u8.ToArray());
        form.Headers.TryAddWithoutValidation("Content-Type", "multipart/form-data; boundary=b");
        using (var signIn = await http.PostAsync("/admin/login", form, Ct))
        {
            await RouteSweep.AssertCleanRefusalAsync(signIn, HttpStatusCode.BadRequest);
        }

        // A refused sign-in and the operator's page, to a client that does not ask for HTML: were the HTML sign-in page.
        using (var wrong = await http.PostAsync("/admin/login", new FormUrlEncodedContent([new("token", "adm_guess")]), Ct))
        {
            await RouteSweep.AssertCleanRefusalAsync(wrong, HttpStatusCode.Unauthorized);
        }

        using (var page = await http.GetAsync("/admin", Ct))
        {
            await RouteSweep.AssertCleanRefusalAsync(page, HttpStatusCode.Unauthorized);
        }
    }

    /// <summary>
    /// An unpaired surrogate escape in any string of an inference, count_tokens or balance body was a 500
    /// (GetString's InvalidOperationException); a NUL in a quote id a 500 on PostgreSQL (text refuses it).
    /// </summary>
    [Theory]
    [MemberData(nameof(PaidMarket.Dialects), MemberType = typeof(PaidMarket))]
    public async Task Strings_dotnet_or_the_store_cannot_take_are_clean_refusals(Coinop.Storage.SqlDialect dialect)
    {
        await using var market = await PaidMarket.StartAsync(dialect);
        (string Path, string Body)[] cases =
        [
            ("/v1/chat/completions", """{"model":"llama3\ud800","messages":[{"role":"user","content":"hi"}]}"""),
            ("/v1/chat/completions", """{"model":"llama3","messages":[{"role":"user","content":"hi \ud800"}]}"""),
            ("/v1/messages", """{"model":"llama3","max_tokens":5,"messages":[{"role":"user","content":"\uDBFF"}]}"""),
            ("/v1/responses", """{"model":"llama3","input":"\udc00 hi"}"""),
            ("/v1/messages/count_tokens", """{"model":"\ud800","messages":[{"role":"user","content":"hi"}]}"""),
            ("/v1/balance/create", """{"token":"\ud800cashuB"}"""),
            ("/mint/v1/mint/bolt11", """{"quote":"abc\u0000","outputs":[]}"""),
            ("/mint/v1/melt/bolt11", """{"quote":"abc\u0000","inputs":[]}"""),
        ];
        foreach (var (path, body) in cases)
        {
            using var response = await market.Http.PostAsync(path, new StringContent(body, System.Text.Encoding.UTF8, "application/json"), Ct);
            await RouteSweep.AssertCleanRefusalAsync(response, HttpStatusCode.BadRequest);
        }

        // A well-formed pair (an emoji a client escaped) is no problem.
        using var count = await market.Http.PostAsync("/v1/messages/count_tokens",
            new StringContent("""{"model":"llama3","messages":[{"role":"user","content":"hi \ud83d\ude00"}]}""", System.Text.Encoding.UTF8, "application/json"), Ct);
        Assert.Equal(HttpStatusCode.OK, count.StatusCode);
    }

    /// <summary>A provider that serves <c>llama3</c> (chat and embeddings) and runs workloads, so inference and workload routes are live.</summary>
    private static async Task<TestProvider> ServingProviderAsync(MarketUnderTest market)
    {
        var provider = await TestProvider.ConnectAsync(market.Url, "serving", cancellationToken: Ct);
        Assert.NotNull(provider.AuthOk);
        await provider.SendAsync(new CapabilitiesMessage([TestProvider.Offer("llama3", embeddings: true)], 8, "test/1",
            new WorkloadCapacity("bubblewrap", 4, 8192, 20, 5, Convert.ToBase64String(new byte[32]), Convert.ToBase64String(new byte[64]), "incarnation-serving")), Ct);
        await provider.HeartbeatAsync(Ct);
        return provider.KeepAlive(); // the sweep can outlast TTL + grace on a slow machine
    }

    /// <summary>Another tenant's things: a balance, a workload, a stored response, a mint quote and a token it already spent.</summary>
    private sealed record Victim(string BalanceKey, long BalanceMsat, string WorkloadId, string ResponseId, string QuoteId, string KeysetId, string SpentToken, string SpentTokenV3);

    private static async Task<Victim> VictimAsync(PaidMarket market)
    {
        var spent = await market.TokenAsync(200);
        var key = (await market.PostJsonAsync("/v1/balance/create", new { token = spent })).GetProperty("api_key").GetString()!;

        using var submit = new HttpRequestMessage(HttpMethod.Post, "/api/workloads")
        {
            Content = JsonContent.Create(new { command = "sleep", args = new[] { "600" }, cpu = 1, memory_mb = 256, duration_seconds = 60 }),
        };
        submit.Headers.Add("X-Coinop-Owner-Key", VictimOwnerKey);
        submit.Headers.Add("X-Cashu", await market.TokenAsync(100));
        using var submitted = await market.Http.SendAsync(submit, Ct);
        var workload = await submitted.Content.ReadAsStringAsync(Ct);
        Assert.True(submitted.StatusCode == HttpStatusCode.Created, workload);

        var response = await market.PostJsonAsync("/v1/responses", new { model = "llama3", input = "hi", max_output_tokens = 20, store = true }, key);
        var balance = (await market.GetJsonAsync("/v1/balance/info", key)).GetProperty("balance_msat").GetInt64();
        var quote = await market.Mint.CreateMintQuoteAsync(10, Ct);
        var keyset = await market.Mint.GetActiveKeysetAsync(Ct);
        return new Victim(key, balance, JsonDocument.Parse(workload).RootElement.GetProperty("id").GetString()!, response.GetProperty("id").GetString()!,
            quote.Quote, keyset.Id, spent, TokenCodec.EncodeV3(TokenCodec.Decode(spent)));
    }

    private static HostileRequests Requests(PaidMarket market, Victim victim, string decoyProvider, string attackerKey)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds().ToString(System.Globalization.CultureInfo.InvariantCulture);
        string B64(int bytes) => Convert.ToBase64String(new byte[bytes]);
        var forgedToken = "cashuB" + HostileInput.Base64Url("garbage that is not CBOR"u8.ToArray());
        (string, string)[][] credentials =
        [
            [],
            [("X-Cashu", forgedToken), ("Authorization", "Bearer sk-" + new string('0', 64)), ("X-Coinop-Owner-Key", AttackerOwnerKey),
             ("X-Coinop-Forwarded-By", "node-x"), ("X-Coinop-Node", "node-x"), ("X-Coinop-Node-Time", now), ("X-Coinop-Node-Signature", B64(32))],
            [("Authorization", "Bearer " + attackerKey), ("X-Coinop-Owner-Key", AttackerOwnerKey)],
            [("Authorization", "Bearer " + market.AdminToken)],
            [("X-Cashu", victim.SpentToken), ("Authorization", "Bearer " + victim.SpentTokenV3)],
            [("Authorization", "Basic Zm9vOmJhcg=="), ("X-Cashu", ""), ("X-Coinop-Owner-Key", "short"), ("X-Coinop-Timestamp", "-1"),
             ("X-Coinop-Nonce", new string('n', 300)), ("X-Coinop-Provider-Key", "!!!"), ("X-Coinop-Signature", B64(64)), ("Cookie", "coinop_admin=" + new string('0', 64))],
            [("Authorization", "Bearer"), ("X-Cashu", "cashuA" + new string('A', 6000)), ("X-Coinop-Owner-Key", new string('k', 257)),
             ("Accept", "text/event-stream"), ("X-Coinop-Token-Count", "exact")],
            [("X-Coinop-Provider-Key", B64(32)), ("X-Coinop-Timestamp", now), ("X-Coinop-Nonce", Guid.NewGuid().ToString("N")), ("X-Coinop-Signature", B64(64))],
        ];

        string[] parameters =
        [
            victim.WorkloadId, decoyProvider, victim.ResponseId, victim.QuoteId, victim.KeysetId, Guid.NewGuid().ToString("N"),
            .. HostileRequests.GarbageParameters,
        ];

        var output = $$"""{"amount":1,"id":"{{victim.KeysetId}}","B_":"{{HostileInput.Hex66}}"}""";
        var input = $$"""{"amount":1,"id":"{{victim.KeysetId}}","secret":"s","C":"{{HostileInput.Hex66}}"}""";
        var bodies = new Dictionary<string, string[]>(StringComparer.Ordinal)
        {
            ["/v1/chat/completions"] = [PaidMarket.ChatBody(maxTokens: 20), PaidMarket.ChatBody(stream: true, maxTokens: 20)],
            ["/v1/completions"] = ["""{"model":"llama3","prompt":"hi","max_tokens":20}"""],
            ["/v1/embeddings"] = ["""{"model":"llama3","input":["a","b"]}"""],
            ["/v1/messages"] = ["""{"model":"llama3","max_tokens":20,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}"""],
            ["/v1/messages/count_tokens"] = ["""{"model":"llama3","messages":[{"role":"user","content":"hi"}]}"""],
            ["/v1/responses"] =
            [
                """{"model":"llama3","input":"hi","max_output_tokens":20,"store":true}""",
                $$"""{"model":"llama3","input":"hi","max_output_tokens":20,"previous_response_id":"{{victim.ResponseId}}"}""",
            ],
            ["/v1/balance/create"] = [$$"""{"token":"{{victim.SpentToken}}"}"""],
            ["/v1/balance/topup"] = [$$"""{"token":"{{victim.SpentToken}}"}"""],
            ["/api/workloads"] =
            [
                """
                {"command":"sleep","args":["60"],"cpu":1,"memory_mb":256,"duration_seconds":60,"restart":"on-failure:3","standbys":0,"checkpointed":false,
                 "seal_to":null,"sealed_keys":{},"isolation":"sandbox","port":null}
                """,
                $$"""{"command":"sleep","args":["60"],"duration_seconds":60,"provider":"{{decoyProvider}}","id":"{{victim.WorkloadId}}"}""",
                $$"""{"command":"sleep","args":["60"],"duration_seconds":60,"id":"{{victim.WorkloadId}}"}""",
            ],
            ["/api/workloads/{id}/topup"] = ["""{"duration_seconds":60}"""],
            ["/api/provider/payout"] = ["""{"amount":1}"""],
            ["/api/admin/providers/{id}/park"] = ["""{"seconds":60}"""],
            ["/api/admin/providers/{id}/revoke"] = ["""{"reason":"sweep"}"""],
            ["/api/admin/enrollment-codes"] = ["""{"uses":1,"valid_for_seconds":60}"""],
            ["/mint/v1/swap"] = [$$"""{"inputs":[{{input}}],"outputs":[{{output}}]}"""],
            ["/mint/v1/mint/quote/bolt11"] = ["""{"amount":10,"unit":"sat","description":"d","pubkey":null}"""],
            ["/mint/v1/mint/bolt11"] = [$$"""{"quote":"{{victim.QuoteId}}","outputs":[{{output}}],"signature":null}"""],
            ["/mint/v1/melt/quote/bolt11"] = ["""{"request":"lnbc10n1pfake","unit":"sat","options":{"amountless":{"amount_msat":1000}}}"""],
            ["/mint/v1/melt/bolt11"] = [$$"""{"quote":"{{victim.QuoteId}}","inputs":[{{input}}],"outputs":[{{output}}]}"""],
            ["/mint/v1/checkstate"] = [$$"""{"Ys":["{{HostileInput.Hex66}}"]}"""],
            ["/mint/v1/restore"] = [$$"""{"outputs":[{{output}}]}"""],
            ["/internal/jobs"] = ["""{"type":"job","job_id":"00000000-0000-0000-0000-000000000001","model":"llama3","path":"/v1/chat/completions","window_bytes":65536}"""],
        };

        return new HostileRequests(parameters, credentials, bodies, BodyCredentials: [2, 3], HostileInput.Tokens(victim.SpentTokenV3, victim.SpentToken));
    }

    /// <summary>The market still serves, the victim's balance, workload and response are as they were, and the ledger balances.</summary>
    private static async Task AssertStillServingAsync(PaidMarket market, Victim victim)
    {
        using (var health = await market.Http.GetAsync("/healthz", Ct))
        {
            Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        }

        Assert.Contains("llama3", (await market.GetJsonAsync("/v1/models")).GetRawText(), StringComparison.Ordinal);
        Assert.Equal(victim.BalanceMsat, (await market.GetJsonAsync("/v1/balance/info", victim.BalanceKey)).GetProperty("balance_msat").GetInt64());

        using var workload = new HttpRequestMessage(HttpMethod.Get, "/api/workloads/" + victim.WorkloadId);
        workload.Headers.Add("X-Coinop-Owner-Key", VictimOwnerKey);
        using var workloadAnswer = await market.Http.SendAsync(workload, Ct);
        var view = await workloadAnswer.Content.ReadAsStringAsync(Ct);
        Assert.True(workloadAnswer.StatusCode == HttpStatusCode.OK, view);
        Assert.DoesNotContain("cancel", JsonDocument.Parse(view).RootElement.GetProperty("state").GetString(), StringComparison.Ordinal);

        Assert.Equal(victim.ResponseId, (await market.GetJsonAsync("/v1/responses/" + victim.ResponseId, victim.BalanceKey)).GetProperty("id").GetString());
        await market.AssertBalancedAsync();
    }
}
