using System.Text;
using System.Text.Json;
using Anthropic;
using Anthropic.Models.Messages;
using Coinop.Market.Tests.Inference;

namespace Coinop.Market.Tests.Translation;

/// <summary>
/// The official Anthropic SDK against a market whose provider fronts an OpenAI-chat-only backend: tools, tool
/// choice, tool calls back as tool_use blocks (whole and streamed), thinking from reasoning_content.
/// </summary>
public class AnthropicToolsTests
{
    private static AnthropicClient Client(ChatStack stack) => new() { ApiKey = "unused", BaseUrl = stack.Url, MaxRetries = 0 };

    private static Tool Weather => new()
    {
        Name = "get_weather",
        Description = "The weather in a city",
        InputSchema = new()
        {
            Properties = new Dictionary<string, JsonElement> { ["city"] = JsonSerializer.SerializeToElement(new { type = "string" }) },
            Required = ["city"],
        },
    };

    private static Tool Time => new()
    {
        Name = "get_time",
        InputSchema = new()
        {
            Properties = new Dictionary<string, JsonElement>
            {
                ["zone"] = JsonSerializer.SerializeToElement(new { type = "string" }),
                ["offset"] = JsonSerializer.SerializeToElement(new { type = "integer" }),
            },
        },
    };

    private static MessageCreateParams Params(string prompt, ToolChoice? choice = null) => new()
    {
        Model = ChatStack.TextModel,
        MaxTokens = 256,
        Messages = [new UserMessageParam { Content = prompt }],
        Tools = [Weather, Time],
        ToolChoice = choice,
    };

    [Fact]
    public async Task Tools_and_every_tool_choice_reach_the_backend_as_OpenAI_tools()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var stack = await ChatStack.StartAsync();
        var client = Client(stack);

        await client.Messages.Create(Params("plain", new ToolChoiceAuto()), ct);
        var auto = stack.LastBackendRequest();
        await client.Messages.Create(Params("plain", new ToolChoiceAny { DisableParallelToolUse = true }), ct);
        var any = stack.LastBackendRequest();
        await client.Messages.Create(Params("plain", new ToolChoiceTool { Name = "get_time" }), ct);
        var tool = stack.LastBackendRequest();
        await client.Messages.Create(Params("plain", new ToolChoiceNone()), ct);
        var none = stack.LastBackendRequest();

        var tools = auto.GetProperty("tools");
        Assert.Equal(2, tools.GetArrayLength());
        Assert.Equal("function", tools[0].GetProperty("type").GetString());
        Assert.Equal("get_weather", tools[0].GetProperty("function").GetProperty("name").GetString());
        Assert.Equal("The weather in a city", tools[0].GetProperty("function").GetProperty("description").GetString());
        Assert.Equal("string", tools[0].GetProperty("function").GetProperty("parameters").GetProperty("properties").GetProperty("city").GetProperty("type").GetString());
        Assert.Equal("auto", auto.GetProperty("tool_choice").GetString());
        Assert.Equal("required", any.GetProperty("tool_choice").GetString());
        Assert.False(any.GetProperty("parallel_tool_calls").GetBoolean());
        Assert.Equal("get_time", tool.GetProperty("tool_choice").GetProperty("function").GetProperty("name").GetString());
        Assert.Equal("none", none.GetProperty("tool_choice").GetString());
        Assert.False(auto.TryGetProperty("parallel_tool_calls", out _));
    }

    [Fact]
    public async Task Tool_calls_come_back_as_tool_use_blocks_with_parsed_input_and_stop_reason_tool_use()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var stack = await ChatStack.StartAsync();

        var message = await Client(stack).Messages.Create(Params("[[sim:tool-calls=2]]"), ct);

        Assert.Equal(StopReason.ToolUse, message.StopReason!.Value());
        Assert.True(message.Content[0].TryPickText(out var text));
        Assert.Equal("Calling get_weather. Calling get_time.", text!.Text);
        Assert.True(message.Content[1].TryPickToolUse(out var first));
        Assert.True(message.Content[2].TryPickToolUse(out var second));
        Assert.Equal("get_weather", first!.Name);
        Assert.Equal("city-0", first.Input["city"].GetString());
        Assert.Equal("get_time", second!.Name);
        Assert.Equal("zone-1", second.Input["zone"].GetString());
        Assert.Equal(2, second.Input["offset"].GetInt32());
        Assert.NotEqual(first.ID, second.ID);
        Assert.True(message.Usage.OutputTokens > 0);
    }

    [Fact]
    public async Task A_backend_that_says_stop_with_tool_calls_still_gives_tool_use()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var stack = await ChatStack.StartAsync();
        var client = Client(stack);

        var whole = await client.Messages.Create(Params("[[sim:tool-calls=1]] [[sim:finish=stop]]"), ct);
        StopReason? streamed = null;
        await foreach (var e in client.Messages.CreateStreaming(Params("[[sim:tool-calls=1]] [[sim:finish=stop]] again"), ct))
        {
            if (e.TryPickDelta(out var delta))
            {
                streamed = delta!.Delta.StopReason!.Value();
            }
        }

        Assert.Equal(StopReason.ToolUse, whole.StopReason!.Value());
        Assert.Equal(StopReason.ToolUse, streamed);
    }

    [Fact]
    public async Task A_stream_with_tool_calls_interleaved_with_text_gives_each_its_block_and_the_arguments_in_pieces()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var stack = await ChatStack.StartAsync();

        var starts = new List<string>();
        var partials = new Dictionary<long, StringBuilder>();
        var pieces = 0;
        var names = new Dictionary<long, string>();
        StopReason? stop = null;
        long? outputTokens = null;
        await foreach (var e in Client(stack).Messages.CreateStreaming(Params("[[sim:tool-calls=3]] [[sim:arg-chunk=3]]"), ct))
        {
            if (e.TryPickContentBlockStart(out var start))
            {
                if (start!.ContentBlock.TryPickToolUse(out var toolUse))
                {
                    starts.Add("tool_use");
                    names[start.Index] = toolUse!.Name;
                    partials[start.Index] = new StringBuilder();
                }
                else if (start.ContentBlock.TryPickText(out _))
                {
                    starts.Add("text");
                }
            }
            else if (e.TryPickContentBlockDelta(out var delta) && delta!.Delta.TryPickInputJson(out var json))
            {
                partials[delta.Index].Append(json!.PartialJson);
                pieces++;
            }
            else if (e.TryPickDelta(out var messageDelta))
            {
                stop = messageDelta!.Delta.StopReason!.Value();
                outputTokens = messageDelta.Usage.OutputTokens;
            }
        }

        Assert.Equal(["text", "tool_use", "text", "tool_use", "text", "tool_use"], starts);
        Assert.Equal(["get_weather", "get_time", "get_weather"], names.OrderBy(n => n.Key).Select(n => n.Value));
        var inputs = partials.OrderBy(p => p.Key).Select(p => JsonDocument.Parse(p.Value.ToString()).RootElement).ToList();
        Assert.Equal("city-0", inputs[0].GetProperty("city").GetString());
        Assert.Equal("zone-1", inputs[1].GetProperty("zone").GetString());
        Assert.Equal("city-2", inputs[2].GetProperty("city").GetString());
        Assert.True(pieces > 6, $"the arguments came in {pieces} pieces; expected several per call");
        Assert.Equal(StopReason.ToolUse, stop);
        Assert.True(outputTokens > 0);
    }

    [Fact]
    public async Task Thinking_comes_back_from_reasoning_content_and_the_thinking_parameter_is_not_sent_on()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var stack = await ChatStack.StartAsync();
        var client = Client(stack);
        var request = new MessageCreateParams
        {
            Model = ChatStack.TextModel,
            MaxTokens = 2048,
            Thinking = new ThinkingConfigEnabled { BudgetTokens = 1024 },
            Messages = [new UserMessageParam { Content = "think [[sim:reasoning=4]] [[sim:tokens=3]]" }],
        };

        var message = await client.Messages.Create(request, ct);
        var thinkingDeltas = new StringBuilder();
        var text = new StringBuilder();
        await foreach (var e in client.Messages.CreateStreaming(request, ct))
        {
            if (e.TryPickContentBlockDelta(out var delta))
            {
                if (delta!.Delta.TryPickThinking(out var thinking))
                {
                    thinkingDeltas.Append(thinking!.Thinking);
                }
                else if (delta.Delta.TryPickText(out var t))
                {
                    text.Append(t!.Text);
                }
            }
        }

        Assert.True(message.Content[0].TryPickThinking(out var block));
        Assert.Equal(4, block!.Thinking.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.True(message.Content[1].TryPickText(out var answer));
        Assert.Equal(block.Thinking, thinkingDeltas.ToString());
        Assert.Equal(answer!.Text, text.ToString());
        Assert.False(stack.LastBackendRequest().TryGetProperty("thinking", out _));
    }

    [Fact]
    public async Task A_raw_translated_stream_is_the_Anthropic_event_sequence_for_thinking_text_and_a_tool()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var stack = await ChatStack.StartAsync();
        var body = """
            {"model":"sim-small","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"[[sim:reasoning=1]] [[sim:tool-calls=1]] [[sim:arg-chunk=1000]]"}],
             "tools":[{"name":"get_weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}]}
            """;

        var sse = await Sse.PostAsync(stack.Http, "/v1/messages", body, ct);

        Assert.Equal(
            ["message_start", "ping",
             "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
             "content_block_start", "content_block_delta", "content_block_stop",
             "content_block_start", "content_block_delta", "content_block_stop",
             "message_delta", "message_stop"],
            sse.Events);
        Assert.Contains("\"type\":\"signature_delta\"", sse.Data[4], StringComparison.Ordinal);
        Assert.Contains("""
            "partial_json":"{\"city\":\"city-0\"}"
            """, sse.Data[10], StringComparison.Ordinal);
        using var delta = JsonDocument.Parse(sse.Data[12]);
        Assert.Equal("tool_use", delta.RootElement.GetProperty("delta").GetProperty("stop_reason").GetString());
        Assert.True(delta.RootElement.GetProperty("usage").GetProperty("input_tokens").GetInt32() > 0);
    }
}
