using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Coinop.Ecash.Tokens;
using Coinop.Market.Payments;
using Coinop.Market.Tests.TestLightning;
using Coinop.Market.Tests.TestProviders;
using Coinop.Storage;
using Coinop.Storage.Ledger;
using Coinop.TestKit;
using Coinop.Ecash.MintClient;

namespace Coinop.Market.Tests.Payments;

/// <summary>
/// A payment made with another accepted mint's ecash gets its change (and refunds) in that same mint's ecash, never in the
/// market's own: real processes, market A (a mint) and market B (<c>--accept-mint A</c>, on a real-protocol fake LND).
/// </summary>
public class ForeignChangeTests
{
    [Fact]
    public async Task Change_and_refunds_of_a_payment_in_mint_As_ecash_come_back_in_mint_As_ecash_even_while_A_is_down()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDirectory("coinop-foreign-change");
        var aUrl = $"http://127.0.0.1:{Ports.GetFree()}";
        string[] aArgs = ["market", "--urls", aUrl, "--data", dir.Sub("a")];
        var a = ChildProcess.StartCoinop("market A", aArgs);
        await using var node = await LightningNodeTests.StartNodeAsync("lnd", dir);
        var lnd = (FakeLnd)node;
        var bUrl = $"http://127.0.0.1:{Ports.GetFree()}";
        await using var b = ChildProcess.StartCoinop("market B", ["market", "--urls", bUrl, "--data", dir.Sub("b"), "--accept-mint", aUrl + "/mint",
            "--lightning", "lnd", "--lnd-url", lnd.Url, "--lnd-macaroon", lnd.MacaroonFile, "--lnd-cert", lnd.CertFile]);
        try
        {
            await a.WaitForLineAsync("coinop market listening", TimeSpan.FromSeconds(60), ct);
            await b.WaitForLineAsync("coinop market listening", TimeSpan.FromSeconds(60), ct);
            using var aHttp = new HttpClient { BaseAddress = new Uri(aUrl), Timeout = TimeSpan.FromSeconds(60) };
            using var bHttp = new HttpClient { BaseAddress = new Uri(bUrl), Timeout = TimeSpan.FromSeconds(120) };
            var aMint = new CashuMintClient(aHttp, aUrl + "/mint");
            var answered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            await using var provider = await TestProvider.ConnectAsync(bUrl, cancellationToken: ct);
            var served = 0;
            provider.Script = async (job, run) =>
            {
                switch (Interlocked.Increment(ref served))
                {
                    case 1: // a job that completes
                        await Scripts.Answer("done")(job, run);
                        break;
                    case 2: // a job that fails before any output: the whole payment comes back
                        await Scripts.Fail()(job, run);
                        break;
                    default: // a job that completes only once mint A is down
                        await answered.Task.WaitAsync(run.Cancelled);
                        await Scripts.Answer("done")(job, run);
                        break;
                }
            };
            await provider.OfferAsync(ct, 8, TestProvider.Offer("llama3"));

            // 1. A completed job: 200 sat of A's ecash pay; the change is A's ecash, and it swaps at A.
            using (var paid = await ChatAsync(bHttp, await PaidMarket.TokenAsync(aMint, 200), ct))
            {
                Assert.Equal(HttpStatusCode.OK, paid.StatusCode);
                var change = TokenCodec.Decode(paid.Headers.GetValues(PaidInferenceBilling.HeaderName).Single());
                Assert.Equal(aUrl + "/mint", Token.NormalizeMintUrl(change.Mint));
                Assert.Equal(199UL, change.Amount);
                Assert.Equal(199UL, await PaidMarket.RedeemAsync(aHttp, TokenCodec.EncodeV4(change)));
            }

            // 2. A job that failed before any output: all 50 sat come back, in A's ecash.
            using (var failed = await ChatAsync(bHttp, await PaidMarket.TokenAsync(aMint, 50), ct))
            {
                Assert.NotEqual(HttpStatusCode.OK, failed.StatusCode);
                var refund = TokenCodec.Decode(failed.Headers.GetValues(PaidInferenceBilling.HeaderName).Single());
                Assert.Equal(aUrl + "/mint", Token.NormalizeMintUrl(refund.Mint));
                Assert.Equal(50UL, await PaidMarket.RedeemAsync(aHttp, TokenCodec.EncodeV4(refund)));
            }

            // 3. Mint A goes down while a job runs: the change is still A's ecash (made when the token was swapped), not B's.
            var third = ChatAsync(bHttp, await PaidMarket.TokenAsync(aMint, 30), ct);
            await Eventually.WaitAsync(() => Task.FromResult<int?>(provider.Jobs.Count), n => n >= 3, "the third job at the provider", cancellationToken: ct);
            a.KillHard();
            await a.Exited.WaitAsync(TimeSpan.FromSeconds(30), ct);
            await a.DisposeAsync();
            answered.SetResult();
            string later;
            using (var response = await third)
            {
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                later = response.Headers.GetValues(PaidInferenceBilling.HeaderName).Single();
                Assert.Equal(aUrl + "/mint", Token.NormalizeMintUrl(TokenCodec.Decode(later).Mint));
            }

            a = ChildProcess.StartCoinop("market A", aArgs);
            await a.WaitForLineAsync("coinop market listening", TimeSpan.FromSeconds(60), ct);
            Assert.Equal(29UL, await PaidMarket.RedeemAsync(aHttp, later));

            // B's books: every equation holds and the journal matches the accounts; nothing of B's own mint was handed out.
            var summary = await SummaryAsync(bHttp, File.ReadAllText(Path.Combine(dir.Sub("b"), "admin.token")).Trim(), ct);
            LedgerAssert.Balanced(summary);
            Assert.Equal(280_000, summary.ReceivedMsat);
            Assert.Equal((199 + 50 + 29) * 1000, summary.RefundedMsat);
            Assert.Equal(0, summary.HeldMsat);
            await using var store = Database.Sqlite(Path.Combine(dir.Sub("b"), "market.db"));
            Assert.Empty(await new LedgerStore(store).AuditAsync(ct));
        }
        finally
        {
            await a.DisposeAsync();
        }
    }

    internal static async Task<HttpResponseMessage> ChatAsync(HttpClient http, string token, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent(PaidMarket.ChatBody(), Encoding.UTF8, "application/json"),
        };
        request.Headers.Add(PaidInferenceBilling.HeaderName, token);
        var response = await http.SendAsync(request, ct);
        await response.Content.LoadIntoBufferAsync(ct);
        return response;
    }

    private static async Task<LedgerSummary> SummaryAsync(HttpClient http, string adminToken, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/ledger/summary");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", adminToken);
        using var response = await http.SendAsync(request, ct);
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        long Get(string name) => json.RootElement.GetProperty(name).GetInt64();
        return new LedgerSummary(Get("received_msat"), Get("spent_msat"), Get("refunded_msat"), Get("balances_msat"), Get("held_msat"),
            Get("provider_earned_msat"), Get("owed_msat"), Get("fee_msat"), Get("paid_out_msat"));
    }
}
