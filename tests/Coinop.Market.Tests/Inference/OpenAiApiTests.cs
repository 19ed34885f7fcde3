using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json;
using Coinop.Market.Tests.TestProviders;
using OpenAI;
using OpenAI.Chat;

namespace Coinop.Market.Tests.Inference;

public class OpenAiApiTests
{
    private static OpenAIClient Client(MarketUnderTest market) =>
        new(new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(market.Url + "/v1") });

    [Fact]
    public async Task The_OpenAI_SDK_gets_a_chat_completion_through_the_market()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var provider = await market.ProviderAsync("llama3", ct, script: Scripts.Answer("hello there"));

        var completion = await Client(market).GetChatClient("llama3").CompleteChatAsync([new UserChatMessage("hi")], cancellationToken: ct);

        Assert.Equal("hello there", completion.Value.Content[0].Text);
        Assert.Equal(5, completion.Value.Usage.InputTokenCount);
        Assert.Equal(7, completion.Value.Usage.OutputTokenCount);
        var job = Assert.Single(provider.Jobs);
        Assert.Equal("chat/completions", job.Path);
        Assert.Equal(1, job.Fence);
        Assert.False(job.Stream);
    }

    [Fact]
    public async Task The_OpenAI_SDK_streams_a_chat_completion_through_the_market()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var provider = await market.ProviderAsync("llama3", ct, script: Scripts.Answer("one two three"));

        var text = new StringBuilder();
        await foreach (var update in Client(market).GetChatClient("llama3").CompleteChatStreamingAsync([new UserChatMessage("count")], cancellationToken: ct))
        {
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }
        }

        Assert.Equal("one two three", text.ToString());
        var job = Assert.Single(provider.Jobs);
        Assert.True(job.Stream);
        // The market always asks the backend for usage so it can meter the stream.
        Assert.True(job.Request.GetProperty("stream_options").GetProperty("include_usage").GetBoolean());
    }

    [Fact]
    public async Task The_usage_chunk_reaches_the_consumer_only_when_it_asked_for_it()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var provider = await market.ProviderAsync("llama3", ct, script: Scripts.Answer("a b"));

        var without = await Sse.PostAsync(market.Http, "/v1/chat/completions",
            """{"model":"llama3","stream":true,"messages":[{"role":"user","content":"x"}]}""", ct);
        var with = await Sse.PostAsync(market.Http, "/v1/chat/completions",
            """{"model":"llama3","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]}""", ct);

        Assert.DoesNotContain(without.Data, d => d.Contains("\"usage\":{", StringComparison.Ordinal));
        Assert.Equal("[DONE]", without.Data[^1]);
        var usage = Assert.Single(with.Data, d => d.Contains("\"usage\":{", StringComparison.Ordinal));
        Assert.Contains("\"completion_tokens\":7", usage, StringComparison.Ordinal);
        Assert.Equal("[DONE]", with.Data[^1]);
    }

    [Fact]
    public async Task The_OpenAI_SDK_gets_embeddings_and_the_model_list()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var embedder = await market.ProviderAsync("nomic-embed", ct, embeddings: true);
        await using var chatter = await market.ProviderAsync("llama3", ct, name: "chat");

        var embedding = await Client(market).GetEmbeddingClient("nomic-embed").GenerateEmbeddingAsync("some text", cancellationToken: ct);
        var models = await Client(market).GetOpenAIModelClient().GetModelsAsync(ct);

        Assert.Equal([0.25f, -0.5f, 1f], embedding.Value.ToFloats().ToArray());
        Assert.Equal(["llama3", "nomic-embed"], models.Value.Select(m => m.Id).Order());
        Assert.Equal("embeddings", Assert.Single(embedder.Jobs).Path);
    }

    // OpenAI 2.15 keeps its legacy completions client internal, so this route is exercised over raw HTTP.
    [Fact]
    public async Task Legacy_completions_work_whole_and_streamed()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var provider = await market.ProviderAsync("llama3", ct, script: Scripts.Answer("once upon"));

        using var whole = await market.Http.PostAsync("/v1/completions", Json("""{"model":"llama3","prompt":"say"}"""), ct);
        var stream = await Sse.PostAsync(market.Http, "/v1/completions", """{"model":"llama3","prompt":"say","stream":true}""", ct);

        Assert.Equal(HttpStatusCode.OK, whole.StatusCode);
        using var doc = JsonDocument.Parse(await whole.Content.ReadAsStringAsync(ct));
        Assert.Equal("once upon", doc.RootElement.GetProperty("choices")[0].GetProperty("text").GetString());
        var text = string.Concat(stream.Data.Where(d => d != "[DONE]")
            .Select(d => JsonDocument.Parse(d).RootElement.GetProperty("choices"))
            .Where(c => c.GetArrayLength() > 0)
            .Select(c => c[0].GetProperty("text").GetString()));
        Assert.Equal("once upon", text);
        Assert.All(provider.Jobs, j => Assert.Equal("completions", j.Path));
    }

    [Fact]
    public async Task Providers_are_listed_with_prices_in_sats_and_load()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var provider = await market.ProviderAsync("llama3", ct, name: "alpha", inSats: 1500, outSats: 2500);

        using var doc = JsonDocument.Parse(await market.Http.GetStringAsync("/api/providers", ct));
        var entry = Assert.Single(doc.RootElement.EnumerateArray());
        Assert.Equal(provider.ProviderId, entry.GetProperty("id").GetString());
        Assert.Equal("alpha", entry.GetProperty("name").GetString());
        Assert.True(entry.GetProperty("online").GetBoolean());
        var model = Assert.Single(entry.GetProperty("models").EnumerateArray());
        Assert.Equal("llama3", model.GetProperty("model").GetString());
        Assert.Equal(1500m, model.GetProperty("input_price").GetDecimal());
        Assert.Equal(2500m, model.GetProperty("output_price").GetDecimal());
        Assert.Equal(8192, model.GetProperty("context_window").GetInt32());
        Assert.Equal(0, entry.GetProperty("load").GetProperty("in_flight").GetInt32());
        Assert.True(entry.TryGetProperty("last_seen", out _));
    }

    internal static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");
}

/// <summary>Reads a server-sent-events response into its events.</summary>
public sealed record Sse(HttpStatusCode Status, List<string> Data, List<string> Events, List<string> Comments, string Raw)
{
    public static async Task<Sse> PostAsync(HttpClient http, string path, string body, CancellationToken ct, params (string Name, string Value)[] headers)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = OpenAiApiTests.Json(body) };
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        var raw = await response.Content.ReadAsStringAsync(ct);
        return Parse(response.StatusCode, raw);
    }

    public static Sse Parse(HttpStatusCode status, string raw)
    {
        List<string> data = [], events = [], comments = [];
        foreach (var line in raw.Split('\n'))
        {
            if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                data.Add(line[6..]);
            }
            else if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                events.Add(line[7..]);
            }
            else if (line.StartsWith(": ", StringComparison.Ordinal))
            {
                comments.Add(line[2..]);
            }
        }

        return new Sse(status, data, events, comments, raw);
    }
}
