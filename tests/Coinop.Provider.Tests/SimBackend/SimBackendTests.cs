using System.ClientModel;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Coinop.Provider.Tests.Infrastructure;
using Coinop.SimBackend.Generation;
using Coinop.TestKit;
using Microsoft.Extensions.Time.Testing;
using OpenAI;
using OpenAI.Chat;
using OpenAI.Embeddings;
using OpenAI.Models;

namespace Coinop.Provider.Tests.SimBackend;

public class SimBackendTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static OpenAIClientOptions ClientOptions(SimServer sim) => new() { Endpoint = new Uri(sim.Url + "/v1") };

    private static async Task<(HttpStatusCode Status, string Body)> PostAsync(SimServer sim, string path, string json)
    {
        using var http = new HttpClient();
        using var response = await http.PostAsync(sim.Url + path, new StringContent(json, Encoding.UTF8, "application/json"), Ct);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(Ct));
    }

    private static string Chat(string prompt, bool stream = false, bool usage = false, int? maxTokens = null, string model = "sim-small") =>
        JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["model"] = model,
            ["messages"] = new[] { new { role = "user", content = prompt } },
            ["stream"] = stream,
            ["stream_options"] = usage ? new { include_usage = true } : null,
            ["max_tokens"] = maxTokens,
        });

    [Fact]
    public async Task The_official_OpenAI_client_gets_deterministic_answers_with_consistent_usage()
    {
        await using var sim = await SimServer.StartAsync();
        var client = new ChatClient("sim-small", new ApiKeyCredential("unused"), ClientOptions(sim));

        ChatCompletion first = await client.CompleteChatAsync([new UserChatMessage("What is a market?")], cancellationToken: Ct);
        ChatCompletion second = await client.CompleteChatAsync([new UserChatMessage("What is a market?")], cancellationToken: Ct);
        ChatCompletion other = await client.CompleteChatAsync([new UserChatMessage("Something else entirely")], cancellationToken: Ct);

        var text = first.Content[0].Text;
        Assert.Equal(text, second.Content[0].Text);
        Assert.NotEqual(text, other.Content[0].Text);
        Assert.Equal(ChatFinishReason.Stop, first.FinishReason);
        Assert.Equal(SimText.CountTokens(text), first.Usage.OutputTokenCount);
        Assert.Equal(SimText.CountTokens("What is a market?"), first.Usage.InputTokenCount);
        Assert.Equal("fp_coinop_simulator", first.SystemFingerprint);
    }

    [Fact]
    public async Task Streams_the_same_answer_with_a_final_usage_update()
    {
        await using var sim = await SimServer.StartAsync();
        var client = new ChatClient("sim-large", new ApiKeyCredential("unused"), ClientOptions(sim));
        ChatCompletion whole = await client.CompleteChatAsync([new UserChatMessage("stream me")], cancellationToken: Ct);

        var streamed = new StringBuilder();
        ChatTokenUsage? usage = null;
        await foreach (var update in client.CompleteChatStreamingAsync([new UserChatMessage("stream me")], cancellationToken: Ct))
        {
            foreach (var part in update.ContentUpdate)
            {
                streamed.Append(part.Text);
            }

            usage ??= update.Usage;
        }

        Assert.Equal(whole.Content[0].Text, streamed.ToString());
        Assert.NotNull(usage);
        Assert.Equal(whole.Usage.OutputTokenCount, usage.OutputTokenCount);
    }

    [Fact]
    public async Task The_sse_shape_matches_openai_with_and_without_include_usage()
    {
        await using var sim = await SimServer.StartAsync();
        var (status, withUsage) = await PostAsync(sim, "/v1/chat/completions", Chat("hello [[sim:tokens=3]]", stream: true, usage: true));
        Assert.Equal(HttpStatusCode.OK, status);
        var events = withUsage.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(1 + 3 + 1 + 1 + 1, events.Length); // role, 3 tokens, finish, usage, [DONE]
        Assert.All(events, e => Assert.StartsWith("data: ", e, StringComparison.Ordinal));
        Assert.Equal("data: [DONE]", events[^1]);
        using (var usageChunk = JsonDocument.Parse(events[^2][6..]))
        {
            Assert.Equal(0, usageChunk.RootElement.GetProperty("choices").GetArrayLength());
            Assert.Equal(3, usageChunk.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        }

        using (var finish = JsonDocument.Parse(events[^3][6..]))
        {
            Assert.Equal("stop", finish.RootElement.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
            Assert.Equal(JsonValueKind.Null, finish.RootElement.GetProperty("usage").ValueKind);
        }

        var (_, without) = await PostAsync(sim, "/v1/chat/completions", Chat("hello [[sim:tokens=3]]", stream: true));
        Assert.DoesNotContain("usage", without, StringComparison.Ordinal);
        Assert.EndsWith("data: [DONE]\n\n", without, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Max_tokens_caps_the_answer_and_tokens_directive_fixes_its_length()
    {
        await using var sim = await SimServer.StartAsync();
        var (_, capped) = await PostAsync(sim, "/v1/chat/completions", Chat("x [[sim:tokens=50]]", maxTokens: 5));
        using var doc = JsonDocument.Parse(capped);
        Assert.Equal("length", doc.RootElement.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.Equal(5, doc.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(5, SimText.CountTokens(doc.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()));

        var (_, exact) = await PostAsync(sim, "/v1/completions", """{"model":"sim-small","prompt":"go [[sim:tokens=42]]"}""");
        using var text = JsonDocument.Parse(exact);
        Assert.Equal("text_completion", text.RootElement.GetProperty("object").GetString());
        Assert.Equal(42, text.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal("stop", text.RootElement.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
    }

    [Theory]
    [InlineData(503)]
    [InlineData(429)]
    [InlineData(401)]
    [InlineData(400)]
    public async Task A_status_directive_fails_the_request_before_any_byte(int code)
    {
        await using var sim = await SimServer.StartAsync();
        var (status, body) = await PostAsync(sim, "/v1/chat/completions", Chat($"please [[sim:status={code}]]", stream: true));
        Assert.Equal(code, (int)status);
        using var doc = JsonDocument.Parse(body);
        Assert.Contains("simulated failure", doc.RootElement.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Drop_after_cuts_the_stream_after_n_events()
    {
        await using var sim = await SimServer.StartAsync();
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, sim.Url + "/v1/chat/completions")
        {
            Content = new StringContent(Chat("cut [[sim:drop-after=3]] [[sim:tokens=20]]", stream: true), Encoding.UTF8, "application/json"),
        };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
        var stream = await response.Content.ReadAsStreamAsync(Ct);
        var received = new MemoryStream();
        await Assert.ThrowsAnyAsync<IOException>(() => stream.CopyToAsync(received, Ct));
        Assert.Equal(3, Encoding.UTF8.GetString(received.ToArray()).Split("\n\n", StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Fact]
    public async Task Hang_never_answers_until_the_client_gives_up()
    {
        await using var sim = await SimServer.StartAsync();
        using var http = new HttpClient();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var pending = http.PostAsync(sim.Url + "/v1/chat/completions", new StringContent(Chat("[[sim:hang]]"), Encoding.UTF8, "application/json"), cts.Token);
        await Eventually.WaitAsync(() => Task.FromResult<int?>(sim.Simulator.Active), a => a == 1, "the hanging request to arrive", cancellationToken: Ct);
        Assert.False(pending.IsCompleted);

        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending);
        await Eventually.WaitAsync(() => Task.FromResult<int?>(sim.Simulator.Active), a => a == 0, "the simulator to notice the client left", cancellationToken: Ct);
    }

    [Fact]
    public async Task Latency_and_pacing_follow_the_clock()
    {
        var time = new FakeTimeProvider();
        await using var sim = await SimServer.StartAsync(o => (o.Latency, o.TokensPerSecond) = (TimeSpan.FromMilliseconds(500), 10), time);
        using var http = new HttpClient();
        var pending = http.PostAsync(sim.Url + "/v1/chat/completions", new StringContent(Chat("[[sim:tokens=6]]"), Encoding.UTF8, "application/json"), Ct);
        await Eventually.WaitAsync(() => Task.FromResult<int?>(sim.Simulator.Active), a => a == 1, "the request to arrive", cancellationToken: Ct);

        // Due at 500 ms latency + 5 more tokens at 100 ms each.
        time.Advance(TimeSpan.FromMilliseconds(999));
        await Task.Delay(100, Ct); // observation window for the negative check
        Assert.False(pending.IsCompleted);
        time.Advance(TimeSpan.FromMilliseconds(1));
        using var response = await pending;
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Embeddings_are_deterministic_unit_vectors_in_float_and_base64()
    {
        await using var sim = await SimServer.StartAsync(o => o.EmbeddingDimensions = 16);
        var client = new EmbeddingClient("sim-small", new ApiKeyCredential("unused"), ClientOptions(sim));
        OpenAIEmbedding a = await client.GenerateEmbeddingAsync("coin operated", cancellationToken: Ct);
        OpenAIEmbedding b = await client.GenerateEmbeddingAsync("coin operated", cancellationToken: Ct);
        var vector = a.ToFloats().ToArray();
        Assert.Equal(16, vector.Length);
        Assert.Equal(vector, b.ToFloats().ToArray());
        Assert.Equal(1.0, Math.Sqrt(vector.Sum(v => (double)v * v)), 4);

        var (_, floats) = await PostAsync(sim, "/v1/embeddings", """{"model":"sim-small","input":["coin operated","x y z"],"encoding_format":"float"}""");
        using var doc = JsonDocument.Parse(floats);
        Assert.Equal(vector, doc.RootElement.GetProperty("data")[0].GetProperty("embedding").EnumerateArray().Select(e => e.GetSingle()).ToArray());
        Assert.Equal(2 + 3, doc.RootElement.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task Lists_models_as_a_simulator_in_openai_and_ollama_form()
    {
        await using var sim = await SimServer.StartAsync(o => o.Models = ["alpha", "beta:7b"]);
        var models = new OpenAIModelClient(new ApiKeyCredential("unused"), ClientOptions(sim));
        OpenAIModelCollection list = await models.GetModelsAsync(Ct);
        Assert.Equal(["alpha", "beta:7b"], list.Select(m => m.Id));
        Assert.All(list, m => Assert.Equal("coinop-simulator", m.OwnedBy));

        using var http = new HttpClient();
        using var tags = JsonDocument.Parse(await http.GetStringAsync(sim.Url + "/api/tags", Ct));
        Assert.Equal(["alpha", "beta:7b"], tags.RootElement.GetProperty("models").EnumerateArray().Select(m => m.GetProperty("name").GetString()));
        using var version = JsonDocument.Parse(await http.GetStringAsync(sim.Url + "/api/version", Ct));
        Assert.Contains("simulator", version.RootElement.GetProperty("version").GetString(), StringComparison.Ordinal);

        using var show = await http.PostAsJsonAsync(sim.Url + "/api/show", new { model = "beta:7b" }, Ct);
        using var details = JsonDocument.Parse(await show.Content.ReadAsStringAsync(Ct));
        Assert.Equal(8192, details.RootElement.GetProperty("model_info").GetProperty("coinop-simulator.context_length").GetInt32());
        Assert.Contains("num_ctx 8192", details.RootElement.GetProperty("parameters").GetString(), StringComparison.Ordinal);

        using var missing = await http.PostAsJsonAsync(sim.Url + "/api/show", new { model = "gamma" }, Ct);
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Contains("\"error\"", await missing.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/v1/chat/completions", "{not json", 400, "not valid JSON")]
    [InlineData("/v1/chat/completions", """{"model":"sim-small"}""", 400, "'messages' is required")]
    [InlineData("/v1/chat/completions", """{"model":"sim-small","messages":[{"role":"user","content":"x"}],"max_tokens":-1}""", 400, "'max_tokens'")]
    [InlineData("/v1/chat/completions", """{"model":"nope","messages":[{"role":"user","content":"x"}]}""", 404, "does not exist")]
    [InlineData("/v1/chat/completions", """{"model":"sim-small","messages":[{"role":"user","content":"[[sim:explode]]"}]}""", 400, "unknown or invalid simulator directive")]
    [InlineData("/v1/completions", """{"model":"sim-small","prompt":5}""", 400, "'prompt'")]
    [InlineData("/v1/embeddings", """{"model":"sim-small","input":{"a":1}}""", 400, "'input'")]
    [InlineData("/v1/nothing-here", "{}", 404, "no route")]
    public async Task Bad_requests_get_openai_shaped_errors(string path, string body, int status, string fragment)
    {
        await using var sim = await SimServer.StartAsync();
        var (code, text) = await PostAsync(sim, path, body);
        Assert.Equal(status, (int)code);
        using var doc = JsonDocument.Parse(text);
        Assert.Contains(fragment, doc.RootElement.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
    }
}
