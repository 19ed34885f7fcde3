using System.Net;
using System.Text.Json;
using Coinop.Market.Tests.TestProviders;

namespace Coinop.Market.Tests.Inference;

public class RoutingTests
{
    private const string Chat = """{"model":"llama3","messages":[{"role":"user","content":"x"}]}""";

    private static async Task<HttpResponseMessage> PostAsync(MarketUnderTest market, CancellationToken ct, params (string, string)[] headers)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = OpenAiApiTests.Json(Chat) };
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        return await market.Http.SendAsync(request, ct);
    }

    [Fact]
    public async Task Providers_above_the_consumers_price_ceiling_are_never_chosen()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var cheap = await market.ProviderAsync("llama3", ct, name: "cheap", inSats: 1000, outSats: 1000);
        await using var dear = await market.ProviderAsync("llama3", ct, name: "dear", inSats: 5000, outSats: 500);

        for (var i = 0; i < 6; i++)
        {
            using var ok = await PostAsync(market, ct, ("X-Coinop-Max-Price", "2000:2000"));
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        using var tooLow = await PostAsync(market, ct, ("X-Coinop-Max-Price", "10:10"));

        Assert.Equal(6, cheap.Jobs.Count);
        Assert.Empty(dear.Jobs);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, tooLow.StatusCode);
        using var error = JsonDocument.Parse(await tooLow.Content.ReadAsStringAsync(ct));
        Assert.Equal("no_provider_available", error.RootElement.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task A_provider_failing_several_times_in_a_row_is_parked_and_skipped()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var flaky = await market.ProviderAsync("llama3", ct, name: "flaky", inSats: 100, outSats: 100, script: Scripts.Fail());
        await using var steady = await market.ProviderAsync("llama3", ct, name: "steady", inSats: 900, outSats: 900);

        for (var i = 0; i < 5; i++)
        {
            using var response = await PostAsync(market, ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        // Three failures park it; the later requests go straight to the steady provider.
        Assert.Equal(3, flaky.Jobs.Count);
        Assert.Equal(5, steady.Jobs.Count);
        using var providers = JsonDocument.Parse(await market.Http.GetStringAsync("/api/providers", ct));
        var parked = providers.RootElement.EnumerateArray().Single(p => p.GetProperty("name").GetString() == "flaky");
        Assert.True(parked.TryGetProperty("parked_until", out var until) && until.ValueKind == JsonValueKind.String);
    }

    [Fact]
    public async Task When_every_provider_of_a_model_is_parked_the_consumer_gets_503()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var flaky = await market.ProviderAsync("llama3", ct, script: Scripts.Fail());

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 4; i++)
        {
            using var response = await PostAsync(market, ct);
            statuses.Add(response.StatusCode);
        }

        Assert.Equal([HttpStatusCode.BadGateway, HttpStatusCode.BadGateway, HttpStatusCode.BadGateway, HttpStatusCode.ServiceUnavailable], statuses);
        Assert.Equal(3, flaky.Jobs.Count);
    }

    [Fact]
    public async Task Power_of_two_choices_prefers_the_provider_that_answers_faster()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        var answer = Scripts.Answer("ok");
        await using var slow = await market.ProviderAsync("llama3", ct, name: "slow", script: async (job, run) =>
        {
            await Task.Delay(1000, run.Cancelled);
            await answer(job, run);
        });
        await using var fast = await market.ProviderAsync("llama3", ct, name: "fast", script: answer);

        // Until the slow one has been measured both look alike (two at once: the busy one loses the second);
        // once it has, every choice goes to the fast one.
        for (var i = 0; i < 20 && slow.Jobs.IsEmpty; i++)
        {
            var pair = await Task.WhenAll(PostAsync(market, ct), PostAsync(market, ct));
            Array.ForEach(pair, r => r.Dispose());
        }

        Assert.Single(slow.Jobs);
        var before = fast.Jobs.Count;
        for (var i = 0; i < 10; i++)
        {
            using var response = await PostAsync(market, ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        Assert.Single(slow.Jobs);
        Assert.Equal(before + 10, fast.Jobs.Count);
    }

    [Fact]
    public async Task A_draining_provider_gets_no_new_jobs_but_finishes_the_ones_it_has()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var answer = Scripts.Answer("finished anyway");
        await using var draining = await market.ProviderAsync("llama3", ct, name: "draining", inSats: 100, outSats: 100, script: async (job, run) =>
        {
            await release.Task;
            await answer(job, run);
        });
        await using var other = await market.ProviderAsync("llama3", ct, name: "other", inSats: 900, outSats: 900);

        var inFlight = PostAsync(market, ct);
        await Gateway.Eventually.TrueAsync(() => Task.FromResult(!draining.Jobs.IsEmpty), ct);
        await draining.SendAsync(new Core.Protocol.DrainNotice(30_000), ct);
        await draining.HeartbeatAsync(ct);
        using var next = await PostAsync(market, ct);
        release.SetResult();
        using var finished = await inFlight;

        Assert.Equal(HttpStatusCode.OK, finished.StatusCode);
        Assert.Contains("finished anyway", await finished.Content.ReadAsStringAsync(ct), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        Assert.Single(draining.Jobs);
        Assert.Single(other.Jobs);
    }
}
