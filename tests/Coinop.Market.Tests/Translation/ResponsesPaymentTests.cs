using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Coinop.Market.Payments;
using Coinop.Market.Tests.Inference;
using Coinop.Market.Tests.Payments;

namespace Coinop.Market.Tests.Translation;

/// <summary>The Responses API is paid like chat, and a stored response is readable only by whoever paid for it.</summary>
public class ResponsesPaymentTests
{
    private static async Task<HttpResponseMessage> PostAsync(PaidMarket market, string path, string body, string? bearer = null, string? xCashu = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }

        if (xCashu is not null)
        {
            request.Headers.Add(PaidInferenceBilling.HeaderName, xCashu);
        }

        var response = await market.Http.SendAsync(request, TestContext.Current.CancellationToken);
        await response.Content.LoadIntoBufferAsync(TestContext.Current.CancellationToken);
        return response;
    }

    private static async Task<HttpStatusCode> GetAsync(PaidMarket market, string id, string? bearer = null, string? xCashu = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/responses/{id}");
        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }

        if (xCashu is not null)
        {
            request.Headers.Add(PaidInferenceBilling.HeaderName, xCashu);
        }

        using var response = await market.Http.SendAsync(request, TestContext.Current.CancellationToken);
        return response.StatusCode;
    }

    private static async Task<string> IdOf(HttpResponseMessage response) =>
        JsonDocument.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken)).RootElement.GetProperty("id").GetString()!;

    [Fact]
    public async Task A_response_is_paid_with_a_token_or_a_balance_key_and_refused_without_payment()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync();
        await using var provider = await market.Market.ProviderAsync("llama3", ct);
        const string body = """{"model":"llama3","input":"hi","max_output_tokens":100}""";
        var key = (await market.PostJsonAsync("/v1/balance/create", new { token = await market.TokenAsync(10) })).GetProperty("api_key").GetString()!;

        using var unpaid = await PostAsync(market, "/v1/responses", body);
        using var byToken = await PostAsync(market, "/v1/responses", body, xCashu: await market.TokenAsync(5));
        using var byKey = await PostAsync(market, "/v1/responses", body, bearer: key);
        var stream = await Sse.PostAsync(market.Http, "/v1/responses", body.Replace("}", ",\"stream\":true}", StringComparison.Ordinal), ct,
            (PaidInferenceBilling.HeaderName, await market.TokenAsync(5)));

        Assert.Equal(HttpStatusCode.PaymentRequired, unpaid.StatusCode);
        Assert.StartsWith("creqA", unpaid.Headers.GetValues(PaidInferenceBilling.HeaderName).Single(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, byToken.StatusCode);
        Assert.True(await market.RedeemAsync(byToken.Headers.GetValues(PaidInferenceBilling.HeaderName).Single()) > 0); // change in the header
        Assert.Equal(HttpStatusCode.OK, byKey.StatusCode);
        Assert.True((await market.GetJsonAsync("/v1/balance/info", key)).GetProperty("balance_msat").GetInt64() < 10_000);
        Assert.Equal("response.completed", stream.Events[^1]);
        Assert.Contains(stream.Comments, c => c.StartsWith("X-Cashu cashuB", StringComparison.Ordinal)); // change before the last event
        await market.AssertBalancedAsync();
    }

    [Fact]
    public async Task Only_the_payer_reads_or_continues_a_stored_response()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await PaidMarket.StartAsync();
        await using var provider = await market.Market.ProviderAsync("llama3", ct);
        const string body = """{"model":"llama3","input":"hi","max_output_tokens":100}""";
        var alice = (await market.PostJsonAsync("/v1/balance/create", new { token = await market.TokenAsync(10) })).GetProperty("api_key").GetString()!;
        var bob = (await market.PostJsonAsync("/v1/balance/create", new { token = await market.TokenAsync(10) })).GetProperty("api_key").GetString()!;
        var token = await market.TokenAsync(5);

        using var byAlice = await PostAsync(market, "/v1/responses", body, bearer: alice);
        using var byToken = await PostAsync(market, "/v1/responses", body, xCashu: token);
        var aliceId = await IdOf(byAlice);
        var tokenId = await IdOf(byToken);
        using var bobContinues = await PostAsync(market, "/v1/responses", $$"""{"model":"llama3","input":"more","max_output_tokens":100,"previous_response_id":"{{aliceId}}"}""", bearer: bob);
        using var aliceContinues = await PostAsync(market, "/v1/responses", $$"""{"model":"llama3","input":"more","max_output_tokens":100,"previous_response_id":"{{aliceId}}"}""", bearer: alice);

        Assert.Equal(HttpStatusCode.OK, await GetAsync(market, aliceId, bearer: alice));
        Assert.Equal(HttpStatusCode.NotFound, await GetAsync(market, aliceId, bearer: bob));
        Assert.Equal(HttpStatusCode.NotFound, await GetAsync(market, aliceId));
        Assert.Equal(HttpStatusCode.OK, await GetAsync(market, tokenId, xCashu: token)); // the token that paid, shown again
        Assert.Equal(HttpStatusCode.OK, await GetAsync(market, tokenId, bearer: token)); // or as the key: the same payer
        Assert.Equal(HttpStatusCode.NotFound, await GetAsync(market, tokenId, xCashu: await market.TokenAsync(1)));
        Assert.Equal(HttpStatusCode.BadRequest, bobContinues.StatusCode);
        Assert.Equal(HttpStatusCode.OK, aliceContinues.StatusCode);
    }
}
