using System.Net;
using System.Text.Json;
using Anthropic;
using Anthropic.Models.Messages;
using Coinop.Market.Tests.Inference;

namespace Coinop.Market.Tests.Translation;

/// <summary>What an OpenAI-chat backend receives for Anthropic content: tool results in order, images, system blocks, parameters.</summary>
public class AnthropicContentTests
{
    /// <summary>A 2×1 PNG (its header says 2 by 1).</summary>
    public const string PngBase64 = "iVBORw0KGgoAAAANSUhEUgAAAAIAAAABCAYAAAD0In+KAAAAEUlEQVR4nGP4z8DwHwQZGBgAQfMF+5Ed8E0AAAAASUVORK5CYII=";

    private static AnthropicClient Client(ChatStack stack) => new() { ApiKey = "unused", BaseUrl = stack.Url, MaxRetries = 0 };

    [Fact]
    public async Task Tool_results_become_tool_messages_in_their_order_with_errors_marked_and_images_after_them()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var stack = await ChatStack.StartAsync();
        var request = new MessageCreateParams
        {
            Model = ChatStack.VisionModel,
            MaxTokens = 64,
            System = new MessageCreateParamsSystem([new TextBlockParam { Text = "You use tools." }, new TextBlockParam { Text = "Be brief." }]),
            Tools = [new Tool { Name = "look", InputSchema = new() { Properties = new Dictionary<string, JsonElement>() } }],
            Messages =
            [
                new UserMessageParam { Content = "look twice" },
                new AssistantMessageParam
                {
                    Content = new List<ContentBlockParam>
                    {
                        new TextBlockParam { Text = "Looking." },
                        new ToolUseBlockParam { ID = "toolu_a", Name = "look", Input = new Dictionary<string, JsonElement> { ["at"] = JsonSerializer.SerializeToElement("left") } },
                        new ToolUseBlockParam { ID = "toolu_b", Name = "look", Input = new Dictionary<string, JsonElement>() },
                    },
                },
                new UserMessageParam
                {
                    Content = new List<ContentBlockParam>
                    {
                        new ToolResultBlockParam { ToolUseID = "toolu_b", Content = "nothing there", IsError = true },
                        new ToolResultBlockParam
                        {
                            ToolUseID = "toolu_a",
                            Content = new List<Block>
                            {
                                new TextBlockParam { Text = "a picture:" },
                                new ImageBlockParam { Source = new Base64ImageSource { Data = PngBase64, MediaType = MediaType.ImagePng } },
                            },
                        },
                        new TextBlockParam { Text = "what do you see?" },
                    },
                },
            ],
        };

        var message = await Client(stack).Messages.Create(request, ct);

        Assert.Equal(StopReason.EndTurn, message.StopReason!.Value());
        var messages = stack.LastBackendRequest().GetProperty("messages");
        Assert.Equal(["system", "user", "assistant", "tool", "tool", "user"], messages.EnumerateArray().Select(m => m.GetProperty("role").GetString()));
        Assert.Equal("You use tools.\n\nBe brief.", messages[0].GetProperty("content").GetString());
        var calls = messages[2].GetProperty("tool_calls");
        Assert.Equal("Looking.", messages[2].GetProperty("content").GetString());
        Assert.Equal(["toolu_a", "toolu_b"], calls.EnumerateArray().Select(c => c.GetProperty("id").GetString()));
        Assert.Equal("left", JsonDocument.Parse(calls[0].GetProperty("function").GetProperty("arguments").GetString()!).RootElement.GetProperty("at").GetString());
        Assert.Equal("toolu_b", messages[3].GetProperty("tool_call_id").GetString());
        Assert.Equal("Error: nothing there", messages[3].GetProperty("content").GetString());
        Assert.Equal("toolu_a", messages[4].GetProperty("tool_call_id").GetString());
        Assert.Equal("a picture:", messages[4].GetProperty("content").GetString());
        var parts = messages[5].GetProperty("content");
        Assert.Equal("what do you see?", parts[0].GetProperty("text").GetString());
        Assert.Equal("[image from the result of tool call toolu_a]", parts[1].GetProperty("text").GetString());
        Assert.Equal("data:image/png;base64," + PngBase64, parts[2].GetProperty("image_url").GetProperty("url").GetString());
    }

    [Fact]
    public async Task Images_reach_a_vision_model_as_data_URLs_or_URLs_and_a_text_model_gets_a_clear_400()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var stack = await ChatStack.StartAsync();
        MessageCreateParams Request(string model) => new()
        {
            Model = model,
            MaxTokens = 32,
            Messages =
            [
                new UserMessageParam
                {
                    Content = new List<ContentBlockParam>
                    {
                        new ImageBlockParam { Source = new Base64ImageSource { Data = PngBase64, MediaType = MediaType.ImagePng } },
                        new ImageBlockParam { Source = new UrlImageSource { Url = "https://example.com/cat.jpg" } },
                        new TextBlockParam { Text = "describe" },
                    },
                },
            ],
        };

        var message = await Client(stack).Messages.Create(Request(ChatStack.VisionModel), ct);
        var parts = stack.LastBackendRequest().GetProperty("messages")[0].GetProperty("content");
        var received = stack.Simulator.Requests;
        var refused = await Assert.ThrowsAnyAsync<Anthropic.Exceptions.AnthropicApiException>(() => Client(stack).Messages.Create(Request(ChatStack.TextModel), ct));

        Assert.True(message.Content[0].TryPickText(out _));
        Assert.Equal("data:image/png;base64," + PngBase64, parts[0].GetProperty("image_url").GetProperty("url").GetString());
        Assert.Equal("https://example.com/cat.jpg", parts[1].GetProperty("image_url").GetProperty("url").GetString());
        Assert.Equal("describe", parts[2].GetProperty("text").GetString());
        Assert.Contains("vision", refused.Message, StringComparison.Ordinal);
        Assert.Equal(received, stack.Simulator.Requests); // the text model's request never left the market
    }

    [Fact]
    public async Task An_image_request_for_a_text_only_model_is_a_400_in_the_Anthropic_shape()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var stack = await ChatStack.StartAsync();
        var body = $$$"""{"model":"sim-small","max_tokens":8,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"{{{PngBase64}}}"}}]}]}""";

        using var response = await stack.Http.PostAsync("/v1/messages", OpenAiApiTests.Json(body), ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        Assert.Equal("invalid_request_error", doc.RootElement.GetProperty("error").GetProperty("type").GetString());
        Assert.Contains("declares vision", doc.RootElement.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Stop_sequences_sampling_metadata_and_string_system_are_carried_and_unknown_parameters_dropped()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var stack = await ChatStack.StartAsync();
        var body = """
            {"model":"sim-small","max_tokens":50,"system":"brief","stop_sequences":["END","STOP"],"temperature":0.5,"top_p":0.9,"top_k":40,
             "metadata":{"user_id":"user-42"},"service_tier":"auto","messages":[{"role":"user","content":"hi"}]}
            """;

        using var response = await stack.Http.PostAsync("/v1/messages", OpenAiApiTests.Json(body), ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var sent = stack.LastBackendRequest();
        Assert.Equal("brief", sent.GetProperty("messages")[0].GetProperty("content").GetString());
        Assert.Equal(["END", "STOP"], sent.GetProperty("stop").EnumerateArray().Select(s => s.GetString()));
        Assert.Equal(0.5, sent.GetProperty("temperature").GetDouble());
        Assert.Equal(0.9, sent.GetProperty("top_p").GetDouble());
        Assert.Equal(40, sent.GetProperty("top_k").GetInt32());
        Assert.Equal("user-42", sent.GetProperty("user").GetString());
        Assert.Equal(50, sent.GetProperty("max_tokens").GetInt32());
        Assert.False(sent.TryGetProperty("metadata", out _));
        Assert.False(sent.TryGetProperty("service_tier", out _));
        Assert.False(sent.TryGetProperty("stop_sequences", out _));
    }

    [Fact]
    public async Task Count_tokens_is_free_and_counts_system_tools_and_images_for_an_estimate_and_exactly_for_an_OpenAI_family()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var stack = await ChatStack.StartAsync(configure: o => o.Free = false);
        var client = Client(stack);
        MessageCountTokensParams Params(string model, bool tools = false, bool image = false) => new()
        {
            Model = model,
            System = "You are a helpful assistant.",
            Messages =
            [
                new UserMessageParam
                {
                    Content = image
                        ? new List<ContentBlockParam>
                        {
                            new TextBlockParam { Text = "Hello world" },
                            new ImageBlockParam { Source = new Base64ImageSource { Data = PngBase64, MediaType = MediaType.ImagePng } },
                        }
                        : "Hello world",
                },
            ],
            Tools = tools ? [new Tool { Name = "get_weather", Description = "Weather", InputSchema = new() { Properties = new Dictionary<string, JsonElement> { ["city"] = JsonSerializer.SerializeToElement(new { type = "string" }) } } }] : null,
        };

        var exact = await client.Messages.CountTokens(Params("gpt-4o"), ct);
        var estimate = await client.Messages.CountTokens(Params("llama3.1:8b"), ct);
        var withTools = await client.Messages.CountTokens(Params("gpt-4o", tools: true), ct);
        var withImage = await client.Messages.CountTokens(Params("gpt-4o", image: true), ct);
        using var raw = await stack.Http.PostAsync("/v1/messages/count_tokens",
            OpenAiApiTests.Json("""{"model":"qwen3","messages":[{"role":"user","content":"x"}]}"""), ct);

        // o200k_base: "You are a helpful assistant." is 6 tokens, "Hello world" 2, "system" and "user" 1 each; 3 a message, 3 to prime the reply.
        Assert.Equal(3 + (3 + 1 + 6) + (3 + 1 + 2), exact.InputTokens);
        Assert.Equal((long)Math.Ceiling(exact.InputTokens * 1.2), estimate.InputTokens);
        Assert.True(withTools.InputTokens > exact.InputTokens + 8);
        Assert.Equal(exact.InputTokens + 1, withImage.InputTokens); // a 2×1 image: ceil(2 / 750) = 1 token
        Assert.Equal(HttpStatusCode.OK, raw.StatusCode); // a paid market, no payment
        Assert.Equal("estimate", raw.Headers.GetValues("X-Coinop-Token-Count").Single());
        Assert.Equal(0, stack.Simulator.Requests);
    }
}
