using System.Net;
using System.Text;
using System.Text.Json;
using Anthropic;
using Anthropic.Models.Messages;
using Coinop.Core.Protocol;
using Coinop.Market.Tests.TestProviders;

namespace Coinop.Market.Tests.Inference;

public class AnthropicApiTests
{
    private static AnthropicClient Client(MarketUnderTest market) => new() { ApiKey = "unused", BaseUrl = market.Url, MaxRetries = 0 };

    private static MessageCreateParams Params(string text) => new()
    {
        Model = "llama3",
        MaxTokens = 64,
        System = "be brief",
        Messages = [new UserMessageParam { Content = text }],
    };

    [Fact]
    public async Task The_Anthropic_SDK_gets_a_message_translated_from_an_OpenAI_backend()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var provider = await market.ProviderAsync("llama3", ct, script: Scripts.Answer("bonjour le monde"));

        var message = await Client(market).Messages.Create(Params("hi"), ct);

        Assert.True(message.Content[0].TryPickText(out var text));
        Assert.Equal("bonjour le monde", text!.Text);
        Assert.Equal(StopReason.EndTurn, message.StopReason!.Value());
        Assert.Equal(5, message.Usage.InputTokens);
        Assert.Equal(7, message.Usage.OutputTokens);
        var job = Assert.Single(provider.Jobs);
        Assert.Equal(WireFormat.OpenAi, job.Format);
        Assert.Equal("chat/completions", job.Path);
        var messages = job.Request.GetProperty("messages");
        Assert.Equal("system", messages[0].GetProperty("role").GetString());
        Assert.Equal("be brief", messages[0].GetProperty("content").GetString());
        Assert.Equal("hi", messages[1].GetProperty("content").GetString());
        Assert.Equal(64, job.Request.GetProperty("max_tokens").GetInt32());
    }

    [Fact]
    public async Task The_Anthropic_SDK_streams_a_message_translated_from_an_OpenAI_stream()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var provider = await market.ProviderAsync("llama3", ct, script: Scripts.Answer("un deux trois"));

        var text = new StringBuilder();
        long? outputTokens = null;
        await foreach (var e in Client(market).Messages.CreateStreaming(Params("count"), ct))
        {
            if (e.TryPickContentBlockDelta(out var delta) && delta!.Delta.TryPickText(out var t))
            {
                text.Append(t!.Text);
            }

            if (e.TryPickDelta(out var messageDelta))
            {
                outputTokens = messageDelta!.Usage.OutputTokens;
            }
        }

        Assert.Equal("un deux trois", text.ToString());
        Assert.Equal(7, outputTokens);
    }

    [Fact]
    public async Task A_translated_stream_has_the_Anthropic_event_sequence()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var provider = await market.ProviderAsync("llama3", ct, script: Scripts.Answer("a b"));

        var sse = await Sse.PostAsync(market.Http, "/v1/messages",
            """{"model":"llama3","max_tokens":10,"stream":true,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}""", ct);

        Assert.Equal(
            ["message_start", "ping", "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop", "message_delta", "message_stop"],
            sse.Events);
        using var delta = JsonDocument.Parse(sse.Data[6]);
        Assert.Equal("end_turn", delta.RootElement.GetProperty("delta").GetProperty("stop_reason").GetString());
        Assert.Equal(5, delta.RootElement.GetProperty("usage").GetProperty("input_tokens").GetInt32());
    }

    [Fact]
    public async Task A_native_Anthropic_backend_gets_the_request_as_sent_and_its_answer_is_relayed()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var provider = await market.ProviderAsync("claude-local", ct, anthropicNative: true, script: Scripts.Answer("native answer"));
        var body = """{"model":"claude-local","max_tokens":10,"top_k":3,"messages":[{"role":"user","content":"x"}]}""";

        using var whole = await market.Http.PostAsync("/v1/messages", OpenAiApiTests.Json(body), ct);
        var stream = await Sse.PostAsync(market.Http, "/v1/messages", body.Replace("\"max_tokens\":10", "\"max_tokens\":10,\"stream\":true", StringComparison.Ordinal), ct);

        using var doc = JsonDocument.Parse(await whole.Content.ReadAsStringAsync(ct));
        Assert.Equal("msg_native", doc.RootElement.GetProperty("id").GetString());
        Assert.Equal("native answer", doc.RootElement.GetProperty("content")[0].GetProperty("text").GetString());
        Assert.Equal("message_stop", stream.Events[^1]);
        Assert.Contains("content_block_delta", stream.Events);
        Assert.All(provider.Jobs, j =>
        {
            Assert.Equal(WireFormat.Anthropic, j.Format);
            Assert.Equal("messages", j.Path);
            Assert.Equal(3, j.Request.GetProperty("top_k").GetInt32());
        });
    }

    [Fact]
    public async Task The_Anthropic_SDK_reads_a_native_backends_message_and_stream_with_the_usage_billed()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        // The backend claims a million output tokens for two words: the market bills its own count of them (13 bytes, 3 a token).
        await using var provider = await market.ProviderAsync("claude-local", ct, anthropicNative: true, script: Scripts.Answer("native answer", 5, 1_000_000));
        var request = new MessageCreateParams { Model = "claude-local", MaxTokens = 64, Messages = [new UserMessageParam { Content = "hi" }] };

        var message = await Client(market).Messages.Create(request, ct);
        var text = new StringBuilder();
        long? started = null, input = null, output = null;
        await foreach (var e in Client(market).Messages.CreateStreaming(request, ct))
        {
            if (e.TryPickStart(out var start))
            {
                started = start!.Message.Usage.InputTokens;
            }

            if (e.TryPickContentBlockDelta(out var delta) && delta!.Delta.TryPickText(out var t))
            {
                text.Append(t!.Text);
            }

            if (e.TryPickDelta(out var messageDelta))
            {
                (input, output) = (messageDelta!.Usage.InputTokens, messageDelta.Usage.OutputTokens);
                Assert.Equal(StopReason.EndTurn, messageDelta.Delta.StopReason!.Value());
            }
        }

        Assert.True(message.Content[0].TryPickText(out var whole));
        Assert.Equal("native answer", whole!.Text);
        Assert.Equal((5, 5), (message.Usage.InputTokens, message.Usage.OutputTokens));
        Assert.Equal("native answer", text.ToString());
        Assert.Equal(0, started); // the market shows no usage before it is billed
        Assert.Equal((5L, 5L), (input, output));
    }

    [Theory]
    [InlineData("""{"model":"llama3","messages":[{"role":"user","content":"x"}]}""", HttpStatusCode.BadRequest, "invalid_request_error")]
    [InlineData("""{"model":"llama3","max_tokens":5,"messages":[{"role":"system","content":"x"}]}""", HttpStatusCode.BadRequest, "invalid_request_error")]
    [InlineData("""{"model":"llama3","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{}}]}]}""", HttpStatusCode.BadRequest, "invalid_request_error")]
    [InlineData("""{"model":"nope","max_tokens":5,"messages":[{"role":"user","content":"x"}]}""", HttpStatusCode.NotFound, "not_found_error")]
    [InlineData("""not json""", HttpStatusCode.BadRequest, "invalid_request_error")]
    public async Task Errors_on_the_messages_route_take_the_Anthropic_shape(string body, HttpStatusCode status, string type)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var provider = await market.ProviderAsync("llama3", ct);

        using var response = await market.Http.PostAsync("/v1/messages", OpenAiApiTests.Json(body), ct);

        Assert.Equal(status, response.StatusCode);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        Assert.Equal("error", doc.RootElement.GetProperty("type").GetString());
        Assert.Equal(type, doc.RootElement.GetProperty("error").GetProperty("type").GetString());
        Assert.False(string.IsNullOrEmpty(doc.RootElement.GetProperty("error").GetProperty("message").GetString()));
        Assert.Empty(provider.Jobs);
    }
}
