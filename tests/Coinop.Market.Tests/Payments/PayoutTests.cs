using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Coinop.Core.Identity;
using Coinop.Market.Hosting;
using Coinop.Storage;
using Coinop.TestKit;
using Coinop.Wallet;
using Microsoft.Extensions.DependencyInjection;
using NSec.Cryptography;

namespace Coinop.Market.Tests.Payments;

/// <summary>Providers' earnings and payouts: signed requests, the CLI, tokens any wallet receives, replays refused.</summary>
public class PayoutTests
{
    // 200 msat per input token, 600 per output token: each answer (5 in, 7 out) costs 5 200 msat, 4 680 of it the provider's.
    private const long ShareMsat = 4_680;

    /// <summary>These prices are above the default <c>--max-price</c>: the operator of this market allows them.</summary>
    internal static void AllowDearProviders(Coinop.Market.Hosting.MarketOptions options) => options.MaxPrice = "1000000:1000000";

    [Theory]
    [MemberData(nameof(PaidMarket.Dialects), MemberType = typeof(PaidMarket))]
    public async Task The_CLI_shows_earnings_and_pays_them_out_as_a_token_a_wallet_receives(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync(dialect, AllowDearProviders);
        await using var provider = await market.Market.ProviderAsync("llama3", ct, inSats: 200_000, outSats: 600_000);
        await EarnAsync(market, requests: 3);
        using var providerDir = ProviderDir(provider.Key);

        var (earningsExit, earnings) = await CoinopAsync("provider", "earnings", "--market", market.Url, "--data", providerDir.Path);
        var (payoutExit, payout) = await CoinopAsync("provider", "payout", "--market", market.Url, "--data", providerDir.Path);

        Assert.Equal(0, earningsExit);
        Assert.Contains($"Provider {provider.ProviderId}: earned 14.04 sat, paid out 0 sat, owed 14.04 sat (14 sat payable now)", earnings, StringComparison.Ordinal);
        Assert.Equal(0, payoutExit);
        var token = payout.Split('\n').Single(l => l.StartsWith("cashuB", StringComparison.Ordinal));
        using var walletDir = new TempDirectory("coinop-wallet");
        var wallet = await CashuWallet.OpenAsync(walletDir.Path, market.Http, TimeProvider.System, ct);
        Assert.Equal(14UL, await wallet.ReceiveAsync(token, ct));
        var s = await market.AssertBalancedAsync();
        Assert.Equal(14_000, s.PaidOutMsat);
        Assert.Equal(3 * ShareMsat - 14_000, s.OwedMsat);

        var (againExit, again) = await CoinopAsync("provider", "payout", "--market", market.Url, "--data", providerDir.Path);
        Assert.Equal(1, againExit);
        Assert.Contains("less than 1 sat is owed", again, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_signed_payout_is_served_once_and_its_replay_is_refused()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync(configure: AllowDearProviders);
        await using var provider = await market.Market.ProviderAsync("llama3", ct, inSats: 200_000, outSats: 600_000);
        await EarnAsync(market, requests: 1);
        var marketId = market.Services.GetRequiredService<MarketIdentity>().MarketId;
        var signed = Sign(provider.Key, marketId, "POST", "/api/provider/payout", 2, TimeProvider.System.GetUtcNow().ToUnixTimeMilliseconds());

        var (firstStatus, first) = await SendAsync(market, signed);
        var (replayStatus, replay) = await SendAsync(market, signed);

        Assert.Equal(HttpStatusCode.OK, firstStatus);
        Assert.Equal(2, first.GetProperty("amount").GetInt64());
        Assert.Equal(HttpStatusCode.Conflict, replayStatus);
        Assert.Equal("request_replayed", replay.GetProperty("error").GetProperty("code").GetString());
        // The replay pays nothing and gives nothing: a captured request replayed must not hand its token to the replayer.
        Assert.NotNull(first.GetProperty("token").GetString());
        Assert.Equal(JsonValueKind.Null, replay.GetProperty("token").ValueKind);
        Assert.Equal(2_000, (await market.AssertBalancedAsync()).PaidOutMsat);

        var reused = signed with { Amount = 1, Signature = Sign(provider.Key, marketId, "POST", "/api/provider/payout", 1, signed.SignedAt, signed.Nonce).Signature };
        var (reusedStatus, reusedBody) = await SendAsync(market, reused);
        Assert.Equal(HttpStatusCode.Conflict, reusedStatus);
        Assert.Equal(JsonValueKind.Null, reusedBody.GetProperty("token").ValueKind);

        var stale = Sign(provider.Key, marketId, "POST", "/api/provider/payout", 1, TimeProvider.System.GetUtcNow().AddMinutes(-10).ToUnixTimeMilliseconds());
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(market, stale)).Status);
        var otherMarket = Sign(provider.Key, "m-another-market", "POST", "/api/provider/payout", 1, TimeProvider.System.GetUtcNow().ToUnixTimeMilliseconds());
        Assert.Equal(HttpStatusCode.Unauthorized, (await SendAsync(market, otherMarket)).Status);
        var tooMuch = Sign(provider.Key, marketId, "POST", "/api/provider/payout", 100, TimeProvider.System.GetUtcNow().ToUnixTimeMilliseconds());
        var (tooMuchStatus, tooMuchBody) = await SendAsync(market, tooMuch);
        Assert.Equal(HttpStatusCode.BadRequest, tooMuchStatus);
        Assert.Equal("more_than_owed", tooMuchBody.GetProperty("error").GetProperty("code").GetString());
        using var unsigned = await market.Http.PostAsync("/api/provider/payout", null, ct);
        Assert.Equal(HttpStatusCode.Unauthorized, unsigned.StatusCode);
    }

    [Theory]
    [MemberData(nameof(PaidMarket.Dialects), MemberType = typeof(PaidMarket))]
    public async Task Two_concurrent_payouts_pay_once_and_the_other_is_a_409_never_a_500(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync(dialect, AllowDearProviders);
        await using var provider = await market.Market.ProviderAsync("llama3", ct, inSats: 200_000, outSats: 600_000);
        var marketId = market.Services.GetRequiredService<MarketIdentity>().MarketId;
        long paidMsat = 0;
        for (var round = 0; round < 4; round++)
        {
            await EarnAsync(market, requests: 1);
            var now = TimeProvider.System.GetUtcNow().ToUnixTimeMilliseconds();
            var both = await Task.WhenAll(
                SendAsync(market, Sign(provider.Key, marketId, "POST", "/api/provider/payout", null, now)),
                SendAsync(market, Sign(provider.Key, marketId, "POST", "/api/provider/payout", null, now)));

            var paid = Assert.Single(both, r => r.Status == HttpStatusCode.OK);
            var other = Assert.Single(both, r => r.Status != HttpStatusCode.OK);
            // The loser either overlapped (409) or came after the winner had taken every whole sat (400 nothing_owed).
            var code = other.Body.GetProperty("error").GetProperty("code").GetString();
            Assert.True(other.Status == HttpStatusCode.Conflict ? code == "payout_in_progress" : other.Status == HttpStatusCode.BadRequest && code == "nothing_owed",
                $"round {round}: {(int)other.Status} {code}");
            paidMsat += paid.Body.GetProperty("amount").GetInt64() * 1000;
        }

        Assert.Equal(paidMsat, (await market.AssertBalancedAsync()).PaidOutMsat);
    }

    [Fact]
    public async Task Earnings_of_a_provider_key_with_no_identity_file_is_a_one_line_error()
    {
        await using var market = await PaidMarket.StartAsync();
        using var empty = new TempDirectory("coinop-provider");

        var (exit, output) = await CoinopAsync("provider", "earnings", "--market", market.Url, "--data", empty.Path);

        Assert.Equal(1, exit);
        Assert.StartsWith("coinop: no provider identity at ", output, StringComparison.Ordinal);
        Assert.Single(output.TrimEnd('\n').Split('\n'));

        await market.AssertBalancedAsync();
    }

    internal static async Task EarnAsync(PaidMarket market, int requests)
    {
        var key = (await market.PostJsonAsync("/v1/balance/create", new { token = await market.TokenAsync(500) })).GetProperty("api_key").GetString();
        for (var i = 0; i < requests; i++)
        {
            using var response = await market.ChatAsync(bearer: key);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
    }

    /// <summary>A provider data directory holding the test provider's key, as <c>coinop provider</c> writes it.</summary>
    internal static TempDirectory ProviderDir(Key key)
    {
        var dir = new TempDirectory("coinop-provider");
        File.WriteAllBytes(Path.Combine(dir.Path, "identity.key"), key.Export(KeyBlobFormat.PkixPrivateKeyText));
        return dir;
    }

    internal static async Task<(int Exit, string Output)> CoinopAsync(params string[] args)
    {
        await using var cli = ChildProcess.StartCoinop("coinop", args);
        var exit = await cli.WaitForExitAsync(TimeSpan.FromSeconds(60));
        return (exit, cli.Output);
    }

    private sealed record SignedRequest(string PublicKey, long SignedAt, string Nonce, long? Amount, string Signature);

    private static SignedRequest Sign(Key key, string marketId, string method, string path, long? amount, long signedAt, string? nonce = null)
    {
        nonce ??= Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var signature = SignatureAlgorithm.Ed25519.Sign(key, ProviderRequestAuth.SigningPayload(marketId, method, path, amount, signedAt, nonce));
        return new SignedRequest(Convert.ToBase64String(key.PublicKey.Export(KeyBlobFormat.RawPublicKey)), signedAt, nonce, amount, Convert.ToBase64String(signature));
    }

    private static async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(PaidMarket market, SignedRequest signed)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/provider/payout")
        {
            Content = new StringContent(signed.Amount is { } a ? $$"""{"amount":{{a.ToString(CultureInfo.InvariantCulture)}}}""" : "", Encoding.UTF8, "application/json"),
        };
        request.Headers.Add(ProviderRequestAuth.KeyHeader, signed.PublicKey);
        request.Headers.Add(ProviderRequestAuth.TimestampHeader, signed.SignedAt.ToString(CultureInfo.InvariantCulture));
        request.Headers.Add(ProviderRequestAuth.NonceHeader, signed.Nonce);
        request.Headers.Add(ProviderRequestAuth.SignatureHeader, signed.Signature);
        using var response = await market.Http.SendAsync(request, TestContext.Current.CancellationToken);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        return (response.StatusCode, body.RootElement.Clone());
    }
}
