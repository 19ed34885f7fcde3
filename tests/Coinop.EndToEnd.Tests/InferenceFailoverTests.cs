using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json;
using Coinop.TestKit;
using OpenAI;
using OpenAI.Chat;

namespace Coinop.EndToEnd.Tests;

/// <summary>Providers dying and draining under real requests, all parts as real processes.</summary>
public class InferenceFailoverTests
{
    private static ChatClient Chat(string marketUrl, string model) =>
        new(model, new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(marketUrl + "/v1"), NetworkTimeout = TimeSpan.FromSeconds(60) });

    [Fact]
    public async Task The_official_OpenAI_SDK_talks_to_a_market_served_by_a_real_provider()
    {
        await using var cluster = new Cluster();
        var (_, sim) = await cluster.StartSimulatorAsync("sim");
        var (_, market) = await cluster.StartMarketAsync("market", 0, "--free");
        var (_, id) = await cluster.StartProviderAsync("provider", market, "--backend", $"openai={sim}");
        await cluster.WaitOnlineAsync(market, id);

        var chat = Chat(market, "sim-small");
        ChatCompletion whole = await chat.CompleteChatAsync([new UserChatMessage("Hello there")], cancellationToken: TestContext.Current.CancellationToken);
        Assert.False(string.IsNullOrWhiteSpace(whole.Content[0].Text));
        Assert.True(whole.Usage.OutputTokenCount > 0);

        var streamed = new StringBuilder();
        await foreach (var update in chat.CompleteChatStreamingAsync([new UserChatMessage("Hello there")], cancellationToken: TestContext.Current.CancellationToken))
        {
            foreach (var part in update.ContentUpdate)
            {
                streamed.Append(part.Text);
            }
        }

        Assert.Equal(whole.Content[0].Text, streamed.ToString()); // the simulator is deterministic
    }

    [Fact]
    public async Task A_provider_killed_before_its_first_byte_costs_the_consumer_nothing_the_request_is_served_by_another()
    {
        await using var cluster = new Cluster();
        var (_, slowSim) = await cluster.StartSimulatorAsync("slow-sim", "--latency", "600000"); // never gets to its first token
        var (_, fastSim) = await cluster.StartSimulatorAsync("fast-sim");
        var (_, market) = await cluster.StartMarketAsync("market", 0, "--free");
        // The cheap provider wins every routing comparison, so the request goes to it first.
        var (doomed, doomedId) = await cluster.StartProviderAsync("cheap", market, "--backend", $"openai={slowSim}", "--price", "sim-small=1:1");
        var (_, spareId) = await cluster.StartProviderAsync("dear", market, "--backend", $"openai={fastSim}", "--price", "sim-small=5000:9000");
        await cluster.WaitOnlineAsync(market, doomedId);
        await cluster.WaitOnlineAsync(market, spareId);

        var request = Chat(market, "sim-small").CompleteChatAsync([new UserChatMessage("Who answers?")], cancellationToken: TestContext.Current.CancellationToken);
        await Eventually.WaitAsync(() => cluster.ProviderAsync(market, doomedId),
            p => p is { } e && e.GetProperty("load").GetProperty("in_flight").GetInt32() > 0, "the job on the cheap provider", cancellationToken: TestContext.Current.CancellationToken);
        doomed.KillHard();

        ChatCompletion answer = await request;
        Assert.False(string.IsNullOrWhiteSpace(answer.Content[0].Text));
        await cluster.WaitOfflineAsync(market, doomedId);
    }

    [Fact]
    public async Task A_provider_killed_mid_stream_ends_the_stream_with_a_clean_error_and_the_next_request_is_served()
    {
        await using var cluster = new Cluster();
        var (_, slowSim) = await cluster.StartSimulatorAsync("slow-sim", "--tokens-per-second", "20");
        var (_, fastSim) = await cluster.StartSimulatorAsync("fast-sim");
        var (_, market) = await cluster.StartMarketAsync("market", 0, "--free");
        var (doomed, doomedId) = await cluster.StartProviderAsync("cheap", market, "--backend", $"openai={slowSim}", "--price", "sim-small=1:1");
        var (_, spareId) = await cluster.StartProviderAsync("dear", market, "--backend", $"openai={fastSim}", "--price", "sim-small=5000:9000");
        await cluster.WaitOnlineAsync(market, doomedId);
        await cluster.WaitOnlineAsync(market, spareId);

        using var body = new StringContent("""{"model":"sim-small","stream":true,"messages":[{"role":"user","content":"[[sim:tokens=400]] tell a long story"}]}""", Encoding.UTF8, "application/json");
        using var post = new HttpRequestMessage(HttpMethod.Post, market + "/v1/chat/completions") { Content = body };
        using var response = await cluster.Http.SendAsync(post, HttpCompletionOption.ResponseHeadersRead, TestContext.Current.CancellationToken);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(TestContext.Current.CancellationToken));

        var first = await reader.ReadLineAsync(TestContext.Current.CancellationToken);
        Assert.StartsWith("data: {", first, StringComparison.Ordinal); // output has reached the consumer
        doomed.KillHard();
        Assert.Equal(137, await doomed.WaitForExitAsync());

        var rest = await reader.ReadToEndAsync(TestContext.Current.CancellationToken);
        var events = rest.Split('\n').Where(l => l.StartsWith("data: {", StringComparison.Ordinal)).ToList();
        var error = JsonDocument.Parse(events[^1]["data: ".Length..]).RootElement;
        Assert.True(error.TryGetProperty("error", out var detail), "the stream must end with an error event: " + events[^1]);
        Assert.False(string.IsNullOrEmpty(detail.GetProperty("message").GetString()));
        Assert.DoesNotContain("data: [DONE]", rest, StringComparison.Ordinal); // a clean error is not a clean finish

        // The next request is served by the surviving provider.
        ChatCompletion next = await Chat(market, "sim-small").CompleteChatAsync([new UserChatMessage("still there?")], cancellationToken: TestContext.Current.CancellationToken);
        Assert.False(string.IsNullOrWhiteSpace(next.Content[0].Text));
    }

    [Fact]
    public async Task SIGTERM_drains_a_provider_it_finishes_the_job_in_flight_then_exits()
    {
        await using var cluster = new Cluster();
        var ct = TestContext.Current.CancellationToken;
        var (_, sim) = await cluster.StartSimulatorAsync("sim", "--tokens-per-second", "25");
        var (_, market) = await cluster.StartMarketAsync("market", 0, "--free");
        var (provider, id) = await cluster.StartProviderAsync("provider", market, "--backend", $"openai={sim}");
        await cluster.WaitOnlineAsync(market, id);

        // Output flowing to the consumer proves the provider holds the job (a job still on the wire when the drain
        // begins is refused and, having produced nothing, would be retried elsewhere: a different case).
        var text = new StringBuilder();
        var tokens = 0;
        await using var stream = Chat(market, "sim-small").CompleteChatStreamingAsync(
            [new UserChatMessage("[[sim:tokens=50]] a two-second answer")], new ChatCompletionOptions(), ct).GetAsyncEnumerator(ct);
        try
        {
            var terminated = false;
            while (await stream.MoveNextAsync())
            {
                foreach (var part in stream.Current.ContentUpdate)
                {
                    text.Append(part.Text);
                    tokens++;
                }

                if (!terminated && tokens > 0)
                {
                    provider.Terminate();
                    terminated = true;
                }
            }
        }
        catch (Exception ex)
        {
            throw new InvalidOperationException(ex.Message + "\n" + cluster.Diagnostics(), ex);
        }

        Assert.Equal(50, text.ToString().Split(' ', StringSplitOptions.RemoveEmptyEntries).Length); // the whole answer arrived
        Assert.Equal(0, await provider.WaitForExitAsync());
        await cluster.WaitOfflineAsync(market, id);

        // With its only provider gone the market says so clearly.
        using var body = new StringContent("""{"model":"sim-small","messages":[{"role":"user","content":"anyone?"}]}""", Encoding.UTF8, "application/json");
        using var after = await cluster.Http.PostAsync(market + "/v1/chat/completions", body, TestContext.Current.CancellationToken);
        Assert.True(after.StatusCode is HttpStatusCode.ServiceUnavailable or HttpStatusCode.NotFound, $"got {after.StatusCode}");
        Assert.Contains("\"error\"", await after.Content.ReadAsStringAsync(TestContext.Current.CancellationToken), StringComparison.Ordinal);
    }
}
