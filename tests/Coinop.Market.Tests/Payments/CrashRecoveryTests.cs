using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Coinop.Ecash.Crypto;
using Coinop.Ecash.MintApi;
using Coinop.Ecash.MintClient;
using Coinop.Ecash.Tokens;
using Coinop.Market.Payments;
using Coinop.Market.Tests.TestProviders;
using Coinop.Storage;
using Coinop.Storage.Ledger;
using Coinop.TestKit;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace Coinop.Market.Tests.Payments;

/// <summary>A market that dies never loses an accepted payment, never credits twice, and its books still balance.</summary>
public class CrashRecoveryTests
{
    [Theory]
    [MemberData(nameof(PaidMarket.Dialects), MemberType = typeof(PaidMarket))]
    public async Task A_hold_left_by_a_dead_request_is_released_at_start_into_the_paying_tokens_balance(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDirectory("coinop-market");
        var database = dialect == SqlDialect.Postgres ? await TestMarket.CreatePostgresDatabaseAsync() : null;
        var urls = $"http://127.0.0.1:{Ports.GetFree()}"; // the same URL after the restart, so the token's mint is still this market's
        try
        {
            string token;
            await using (var before = await PaidMarket.StartAsync(dialect, o => o.Urls = urls, dataDir: dir.Path, postgresDatabase: database))
            {
                // A request took the token and then died with its node: nothing will settle or release its hold.
                token = await before.TokenAsync(6);
                var cashier = before.Services.GetRequiredService<Cashier>();
                var accepted = await cashier.AcceptAsync(cashier.CheckToken(token).Token!, new CreditHold(Guid.NewGuid(), 1_000), ct);
                Assert.Equal(AcceptOutcome.Held, accepted.Outcome);
                Assert.Equal(6_000, (await before.SummaryAsync()).HeldMsat);
            }

            await using var after = await PaidMarket.StartAsync(dialect, o => o.Urls = urls, dataDir: dir.Path, postgresDatabase: database);

            var s = await after.AssertBalancedAsync();
            Assert.Equal(0, s.HeldMsat);
            Assert.Equal(6_000, s.BalancesMsat);
            // The consumer still holds the value: the same token, as the Bearer key, names it.
            Assert.Equal(6_000, (await after.GetJsonAsync("/v1/balance/info", token)).GetProperty("balance_msat").GetInt64());
            var refund = await after.PostJsonAsync("/v1/balance/refund", null, token);
            Assert.Equal(6UL, await after.RedeemAsync(refund.GetProperty("token").GetString()!));
        }
        finally
        {
            await PaidMarket.DropDatabaseAsync(database);
        }
    }

    [Theory]
    [MemberData(nameof(PaidMarket.Dialects), MemberType = typeof(PaidMarket))]
    public async Task A_market_killed_mid_payments_restarts_with_every_token_accounted_or_spendable(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDirectory("coinop-market");
        var database = dialect == SqlDialect.Postgres ? await TestMarket.CreatePostgresDatabaseAsync() : null;
        var connection = database is null ? null : new NpgsqlConnectionStringBuilder(PostgresServer.ConnectionString) { Database = database }.ConnectionString;
        var url = $"http://127.0.0.1:{Ports.GetFree()}";
        string[] args = ["market", "--urls", url, "--data", dir.Path, .. connection is null ? Array.Empty<string>() : ["--postgres", connection]];
        using var http = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(60) };
        var mint = new CashuMintClient(http, url + "/mint");
        try
        {
            var market = ChildProcess.StartCoinop("market", args);
            await market.WaitForLineAsync("coinop market listening", TimeSpan.FromSeconds(60), ct);
            // The first jobs complete; later ones stay in flight until the market dies.
            var served = 0;
            await using var provider = await TestProvider.ConnectAsync(url, cancellationToken: ct);
            provider.Script = (job, run) => Interlocked.Increment(ref served) <= 6 ? Scripts.Answer("done")(job, run) : Task.Delay(Timeout.Infinite, run.Cancelled);
            await provider.OfferAsync(ct, 64, TestProvider.Offer("llama3"));

            var tokens = new List<string>();
            for (var i = 0; i < 24; i++)
            {
                tokens.Add(await PaidMarket.TokenAsync(mint, 4));
            }

            var key = await CreateBalanceAsync(http, await PaidMarket.TokenAsync(mint, 50), ct);
            for (var i = 0; i < 3; i++)
            {
                Assert.Equal(HttpStatusCode.OK, (await ChatAsync(http, tokens[i], null, stream: i == 1, ct)).Status);
                Assert.Equal(HttpStatusCode.OK, (await ChatAsync(http, null, key, stream: false, ct)).Status);
            }

            // Many paid requests at once, at every stage (redeeming, reserving, dispatched, streaming); the market is
            // killed once enough of them reached the provider.
            var inFlight = tokens.Skip(3).Select((t, i) => ChatAsync(http, t, null, stream: i % 3 == 0, ct))
                .Concat(Enumerable.Range(0, 6).Select(_ => ChatAsync(http, null, key, stream: false, ct))).ToList();
            await Eventually.WaitAsync(() => Task.FromResult<int?>(provider.Jobs.Count), n => n >= 6 + 12, "jobs in flight at the provider", cancellationToken: ct);
            market.KillHard();
            await market.Exited.WaitAsync(TimeSpan.FromSeconds(30), ct);
            await market.DisposeAsync();
            var answers = await Task.WhenAll(inFlight);
            Assert.DoesNotContain(answers, a => a.Status == HttpStatusCode.OK); // none could complete: their jobs hung

            await using var restarted = ChildProcess.StartCoinop("market", args);
            await restarted.WaitForLineAsync("coinop market listening", TimeSpan.FromSeconds(60), ct);

            // The books balance, and every hold of the dead requests went back to its payer.
            var summary = await SummaryAsync(http, File.ReadAllText(Path.Combine(dir.Path, "admin.token")).Trim(), ct);
            LedgerAssert.Balanced(summary);
            Assert.Equal(0, summary.HeldMsat);
            await using var store = connection is null ? Database.Sqlite(Path.Combine(dir.Path, "market.db")) : Database.Postgres(connection);
            Assert.Empty(await new LedgerStore(store).AuditAsync(ct));

            long spentTokens = 0;
            foreach (var (token, index) in tokens.Select((t, i) => (t, i)))
            {
                var decoded = TokenCodec.Decode(token);
                var states = await mint.CheckStateAsync([.. decoded.Proofs.Select(p => Convert.ToHexStringLower(Bdhke.Y(p.Secret)))], ct);
                var state = Assert.Single(states.States.Select(s => s.State).Distinct());
                var tokenKey = PaymentKeys.TokenKey(decoded);
                var credits = await store.ReadAsync(c => c.ExecuteScalarAsync<long>(
                    "SELECT COUNT(*) FROM ledger_entries WHERE event = 'payment' AND reference = @tokenKey", new { tokenKey }), ct);
                if (state == ProofState.Spent)
                {
                    Assert.Equal(1, credits); // accepted, and credited exactly once
                    spentTokens++;
                    if (index >= 3)
                    {
                        // Its request died: the value waits under the token, to spend or refund with it as the key.
                        using var info = await GetAsync(http, "/v1/balance/info", token, ct);
                        using var json = JsonDocument.Parse(await info.Content.ReadAsStringAsync(ct));
                        Assert.Equal(4_000, json.RootElement.GetProperty("balance_msat").GetInt64());
                    }
                }
                else
                {
                    Assert.Equal(ProofState.Unspent, state);
                    Assert.Equal(0, credits);
                    Assert.Equal(4UL, await PaidMarket.RedeemAsync(http, token)); // still the consumer's to spend
                }
            }

            Assert.Equal(50_000 + spentTokens * 4_000, summary.ReceivedMsat);
            Assert.True(spentTokens > 3, "some in-flight requests had taken their tokens when the market died");

            LedgerAssert.Balanced(await SummaryAsync(http, File.ReadAllText(Path.Combine(dir.Path, "admin.token")).Trim(), ct));
            Assert.Empty(await new LedgerStore(store).AuditAsync(ct));
        }
        finally
        {
            await PaidMarket.DropDatabaseAsync(database);
        }
    }

    private static async Task<string> CreateBalanceAsync(HttpClient http, string token, CancellationToken ct)
    {
        using var response = await http.PostAsync("/v1/balance/create", new StringContent(JsonSerializer.Serialize(new { token }), Encoding.UTF8, "application/json"), ct);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        return json.RootElement.GetProperty("api_key").GetString()!;
    }

    private static async Task<(HttpStatusCode? Status, string Body)> ChatAsync(HttpClient http, string? token, string? key, bool stream, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent(PaidMarket.ChatBody(stream), Encoding.UTF8, "application/json"),
        };
        if (token is not null)
        {
            request.Headers.Add(PaidInferenceBilling.HeaderName, token);
        }

        if (key is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        try
        {
            using var response = await http.SendAsync(request, ct);
            return (response.StatusCode, await response.Content.ReadAsStringAsync(ct));
        }
        catch (HttpRequestException ex)
        {
            return (null, ex.Message); // the market died under the request
        }
    }

    private static async Task<HttpResponseMessage> GetAsync(HttpClient http, string path, string bearer, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        return await http.SendAsync(request, ct);
    }

    private static async Task<LedgerSummary> SummaryAsync(HttpClient http, string adminToken, CancellationToken ct)
    {
        using var response = await GetAsync(http, "/api/ledger/summary", adminToken, ct);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        long Get(string name) => json.RootElement.GetProperty(name).GetInt64();
        return new LedgerSummary(Get("received_msat"), Get("spent_msat"), Get("refunded_msat"), Get("balances_msat"), Get("held_msat"),
            Get("provider_earned_msat"), Get("owed_msat"), Get("fee_msat"), Get("paid_out_msat"));
    }
}
