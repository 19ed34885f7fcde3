using System.ClientModel;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Coinop.Core.Protocol;
using Coinop.Market.Inference;
using Coinop.Market.Tests.TestProviders;
using Coinop.TestKit;
using Microsoft.Extensions.DependencyInjection;
using OpenAI;
using OpenAI.Chat;

namespace Coinop.Market.Tests.Inference;

/// <summary>
/// Issue 8, "Capacity: queue, don't refuse": requests beyond every provider's slots wait in a bounded, fair per-model
/// queue; a full queue answers 429 with Retry-After; a consumer who leaves frees its place; routing skips offers that
/// cannot serve what a request needs.
/// </summary>
[Collection(ExactMetricsCollection.Name)]
public class CapacityQueueTests
{
    private static string Chat(string content, string extra = "") =>
        $$"""{"model":"llama3"{{extra}},"messages":[{"role":"user","content":"{{content}}"}]}""";

    [Fact]
    public async Task A_burst_of_five_times_a_providers_slots_through_the_OpenAI_SDK_all_completes()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var running = 0;
        var mostAtOnce = 0;
        var slotsFull = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var provider = await TestProvider.ConnectAsync(market.Url, cancellationToken: ct);
        provider.Script = async (job, run) =>
        {
            var now = Interlocked.Increment(ref running);
            InterlockedMax(ref mostAtOnce, now);
            if (now == 4)
            {
                slotsFull.TrySetResult();
            }

            await gate.Task.WaitAsync(run.Cancelled);
            Interlocked.Decrement(ref running);
            await Scripts.Answer("done " + job.Request.GetProperty("messages")[0].GetProperty("content").GetString())(job, run);
        };
        await provider.OfferAsync(ct, 4, TestProvider.Offer("llama3"));
        var chat = new OpenAIClient(new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(market.Url + "/v1") }).GetChatClient("llama3");

        var burst = Enumerable.Range(0, 20).Select(i => chat.CompleteChatAsync([new UserChatMessage("n" + i)], cancellationToken: ct)).ToList();
        await QueuedAsync(market, 16, ct);
        // Queued in the market is not yet started at the provider: the four dispatched jobs are still crossing the link.
        await slotsFull.Task.WaitAsync(ct);
        gate.SetResult();
        var answers = await Task.WhenAll(burst);

        Assert.Equal(Enumerable.Range(0, 20).Select(i => "done n" + i), answers.Select(a => a.Value.Content[0].Text));
        Assert.Equal(20, provider.Jobs.Count);
        Assert.Equal(4, mostAtOnce);
        Assert.Equal(0, await QueuedAsync(market, 0, ct));
    }

    [Fact]
    public async Task A_full_queue_answers_429_with_Retry_After_in_the_routes_error_shape()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(builder: b => b.Services.Configure<InferenceOptions>(o => o.MaxQueuedPerModel = 2), cancellationToken: ct);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var provider = await GatedProviderAsync(market, 1, gate, ct);

        var held = Enumerable.Range(0, 3).Select(i => market.Http.PostAsync("/v1/chat/completions", OpenAiApiTests.Json(Chat("q" + i)), ct)).ToList();
        await QueuedAsync(market, 2, ct);
        using var openAi = await market.Http.PostAsync("/v1/chat/completions", OpenAiApiTests.Json(Chat("one too many")), ct);
        using var anthropic = await market.Http.PostAsync("/v1/messages",
            OpenAiApiTests.Json("""{"model":"llama3","max_tokens":10,"messages":[{"role":"user","content":"one too many"}]}"""), ct);

        Assert.Equal(HttpStatusCode.TooManyRequests, openAi.StatusCode);
        Assert.True(openAi.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1));
        using (var body = JsonDocument.Parse(await openAi.Content.ReadAsStringAsync(ct)))
        {
            Assert.Equal("queue_full", body.RootElement.GetProperty("error").GetProperty("code").GetString());
        }

        Assert.Equal(HttpStatusCode.TooManyRequests, anthropic.StatusCode);
        Assert.NotNull(anthropic.Headers.RetryAfter);
        using (var body = JsonDocument.Parse(await anthropic.Content.ReadAsStringAsync(ct)))
        {
            Assert.Equal("error", body.RootElement.GetProperty("type").GetString());
            Assert.Equal("rate_limit_error", body.RootElement.GetProperty("error").GetProperty("type").GetString());
        }

        gate.SetResult();
        foreach (var response in await Task.WhenAll(held))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            response.Dispose();
        }

        var metrics = await market.Http.GetStringAsync("/metrics", ct);
        Assert.Contains("coinop_market_queue_rejected_total{otel_scope_name=\"Coinop.Market\",model=\"llama3\"} 2", metrics, StringComparison.Ordinal);
        Assert.Contains("coinop_market_queue_depth{otel_scope_name=\"Coinop.Market\",model=\"llama3\"} 0", metrics, StringComparison.Ordinal);
        Assert.Contains("coinop_market_queue_wait_milliseconds_count{otel_scope_name=\"Coinop.Market\",model=\"llama3\",outcome=\"acquired\"} 2", metrics,
            StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_consumer_who_leaves_frees_its_place_in_the_queue()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(builder: b => b.Services.Configure<InferenceOptions>(o => o.MaxQueuedPerModel = 1), cancellationToken: ct);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var provider = await GatedProviderAsync(market, 1, gate, ct);
        var blocker = market.Http.PostAsync("/v1/chat/completions", OpenAiApiTests.Json(Chat("blocker")), ct);
        await provider.WaitForAsync<JobMessage>(_ => true).WaitAsync(TimeSpan.FromSeconds(30), ct);

        using (var leaving = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            var gone = market.Http.PostAsync("/v1/chat/completions", OpenAiApiTests.Json(Chat("leaves")), leaving.Token);
            await QueuedAsync(market, 1, ct);
            await leaving.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => gone);
        }

        await QueuedAsync(market, 0, ct);
        var stays = market.Http.PostAsync("/v1/chat/completions", OpenAiApiTests.Json(Chat("stays")), ct);
        await QueuedAsync(market, 1, ct);
        gate.SetResult();

        using var served = await stays;
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        (await blocker).Dispose();
        Assert.Equal(["blocker", "stays"], provider.Jobs.Select(ContentOf));
    }

    [Fact]
    public async Task Two_consumers_take_turns_whatever_the_size_of_one_consumers_burst()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        var turns = new SemaphoreSlim(0);
        await using var provider = await TestProvider.ConnectAsync(market.Url, cancellationToken: ct);
        provider.Script = async (job, run) =>
        {
            await turns.WaitAsync(run.Cancelled);
            await Scripts.Answer("ok")(job, run);
        };
        await provider.OfferAsync(ct, 1, TestProvider.Offer("llama3"));

        var blocker = SendAs("z", "blocker");
        await provider.WaitForAsync<JobMessage>(_ => true).WaitAsync(TimeSpan.FromSeconds(30), ct);
        var requests = new List<Task<HttpResponseMessage>>();
        foreach (var (consumer, content) in new[] { ("x", "x1"), ("x", "x2"), ("x", "x3"), ("x", "x4"), ("y", "y1"), ("y", "y2") })
        {
            requests.Add(SendAs(consumer, content));
            await QueuedAsync(market, requests.Count, ct); // one by one, so arrival order is known
        }

        for (var served = 1; served <= 7; served++)
        {
            turns.Release();
            if (served < 7)
            {
                await Eventually.WaitAsync(() => Task.FromResult<int?>(provider.Jobs.Count), n => n == served + 1, "the next job", cancellationToken: ct);
            }
        }

        foreach (var response in await Task.WhenAll(requests.Append(blocker)))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            response.Dispose();
        }

        Assert.Equal(["blocker", "x1", "y1", "x2", "y2", "x3", "x4"], provider.Jobs.Select(ContentOf));

        Task<HttpResponseMessage> SendAs(string consumer, string content)
        {
            var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = OpenAiApiTests.Json(Chat(content)) };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "sk-" + consumer);
            return market.Http.SendAsync(request, ct);
        }
    }

    [Fact]
    public async Task A_waiting_request_gets_503_when_the_only_provider_goes_away()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var provider = await GatedProviderAsync(market, 1, gate, ct);
        var blocker = market.Http.PostAsync("/v1/chat/completions", OpenAiApiTests.Json(Chat("blocker")), ct);
        await provider.WaitForAsync<JobMessage>(_ => true).WaitAsync(TimeSpan.FromSeconds(30), ct);
        var waiting = market.Http.PostAsync("/v1/chat/completions", OpenAiApiTests.Json(Chat("waits")), ct);
        await QueuedAsync(market, 1, ct);

        provider.Kill();

        using var turnedAway = await waiting;
        Assert.Equal(HttpStatusCode.ServiceUnavailable, turnedAway.StatusCode);
        (await blocker).Dispose();
    }

    [Fact]
    public async Task Requests_with_tools_skip_offers_without_tool_calling_and_get_400_when_none_has_it()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var plain = await TestProvider.ConnectAsync(market.Url, "plain", cancellationToken: ct);
        await plain.OfferAsync(ct, 8, TestProvider.Offer("llama3", inSats: 1, outSats: 1) with { Tools = false });
        const string withTools = """{"model":"llama3","tools":[{"type":"function","function":{"name":"f","parameters":{}}}],"messages":[{"role":"user","content":"x"}]}""";

        using var refused = await market.Http.PostAsync("/v1/chat/completions", OpenAiApiTests.Json(withTools), ct);
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        using (var error = JsonDocument.Parse(await refused.Content.ReadAsStringAsync(ct)))
        {
            Assert.Equal("no provider of model 'llama3' can serve tools", error.RootElement.GetProperty("error").GetProperty("message").GetString());
        }

        await using var capable = await market.ProviderAsync("llama3", ct, name: "capable"); // says nothing about tools: may get them
        for (var i = 0; i < 4; i++)
        {
            using var ok = await market.Http.PostAsync("/v1/chat/completions", OpenAiApiTests.Json(withTools), ct);
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        }

        Assert.Equal(4, capable.Jobs.Count);
        Assert.Empty(plain.Jobs);
        using var without = await market.Http.PostAsync("/v1/chat/completions", OpenAiApiTests.Json(Chat("no tools")), ct);
        Assert.Single(plain.Jobs); // the cheaper plain offer still takes requests without tools
    }

    [Fact]
    public async Task Requests_go_only_to_offers_whose_context_window_fits_the_input_and_output_limit()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var small = await TestProvider.ConnectAsync(market.Url, "small", cancellationToken: ct);
        await small.OfferAsync(ct, 8, TestProvider.Offer("llama3", inSats: 1, outSats: 1) with { ContextWindow = 256 });

        using var refused = await market.Http.PostAsync("/v1/chat/completions", OpenAiApiTests.Json(Chat("x", ""","max_tokens":1000""")), ct);
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("context", await refused.Content.ReadAsStringAsync(ct), StringComparison.Ordinal);

        await using var large = await market.ProviderAsync("llama3", ct, name: "large"); // 8192 tokens
        for (var i = 0; i < 3; i++)
        {
            using var fits = await market.Http.PostAsync("/v1/chat/completions", OpenAiApiTests.Json(Chat("x", ""","max_tokens":1000""")), ct);
            Assert.Equal(HttpStatusCode.OK, fits.StatusCode);
        }

        Assert.Equal(3, large.Jobs.Count);
        Assert.Empty(small.Jobs);
        using var short_ = await market.Http.PostAsync("/v1/chat/completions", OpenAiApiTests.Json(Chat("x", ""","max_tokens":100""")), ct);
        Assert.Single(small.Jobs); // fits the small window, which is cheaper
    }

    internal static async Task<TestProvider> GatedProviderAsync(MarketUnderTest market, int slots, TaskCompletionSource gate, CancellationToken ct)
    {
        var provider = await TestProvider.ConnectAsync(market.Url, cancellationToken: ct);
        provider.Script = async (job, run) =>
        {
            await gate.Task.WaitAsync(run.Cancelled);
            await Scripts.Answer("ok")(job, run);
        };
        await provider.OfferAsync(ct, slots, TestProvider.Offer("llama3"));
        return provider;
    }

    /// <summary>Waits until the market's queue for llama3 holds <paramref name="depth"/> requests (as <c>/api/providers</c> shows it).</summary>
    internal static async Task<int> QueuedAsync(MarketUnderTest market, int depth, CancellationToken ct) =>
        (await Eventually.WaitAsync(async () =>
        {
            using var providers = JsonDocument.Parse(await market.Http.GetStringAsync("/api/providers", ct));
            return (int?)providers.RootElement.EnumerateArray().Where(p => p.GetProperty("online").GetBoolean())
                .Select(p => p.GetProperty("load").GetProperty("queued").GetProperty("llama3").GetInt32()).DefaultIfEmpty(0).Max();
        }, n => n == depth, $"{depth} queued", cancellationToken: ct))!.Value;

    private static string? ContentOf(JobMessage job) => job.Request.GetProperty("messages")[0].GetProperty("content").GetString();

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while ((current = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }
}
