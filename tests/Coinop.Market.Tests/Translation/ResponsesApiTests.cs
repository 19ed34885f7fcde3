#pragma warning disable OPENAI001 // the Responses client is marked experimental
using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json;
using Coinop.Market.Tests.Inference;
using OpenAI.Responses;

namespace Coinop.Market.Tests.Translation;

/// <summary>The official OpenAI SDK's Responses client against a market whose provider fronts an OpenAI-chat-only backend.</summary>
public class ResponsesApiTests
{
    public static ResponsesClient Client(string marketUrl, string apiKey = "unused") =>
        new(new ApiKeyCredential(apiKey), new ResponsesClientOptions { Endpoint = new Uri(marketUrl + "/v1"), NetworkTimeout = TimeSpan.FromSeconds(60) });

    private static FunctionTool Weather => ResponseTool.CreateFunctionTool(
        "get_weather", BinaryData.FromString("""{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"""), strictModeEnabled: false, "The weather in a city");

    [Fact]
    public async Task The_OpenAI_SDK_gets_a_response_with_instructions_and_max_output_tokens_from_a_chat_backend()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var stack = await ChatStack.StartAsync();
        var options = new CreateResponseOptions(ChatStack.TextModel, [ResponseItem.CreateUserMessageItem("hello [[sim:tokens=5]]")])
        {
            Instructions = "be brief",
            MaxOutputTokenCount = 40,
            Temperature = 0.25f,
        };

        ResponseResult response = await Client(stack.Url).CreateResponseAsync(options, ct);

        Assert.StartsWith("resp_", response.Id, StringComparison.Ordinal);
        Assert.Equal(ResponseStatus.Completed, response.Status);
        Assert.Equal(5, response.GetOutputText().Split(' ').Length);
        Assert.Equal(5, response.Usage.OutputTokenCount);
        Assert.True(response.Usage.InputTokenCount > 0);
        var sent = stack.LastBackendRequest();
        Assert.Equal("system", sent.GetProperty("messages")[0].GetProperty("role").GetString());
        Assert.Equal("be brief", sent.GetProperty("messages")[0].GetProperty("content").GetString());
        Assert.Equal("user", sent.GetProperty("messages")[1].GetProperty("role").GetString());
        Assert.Equal(40, sent.GetProperty("max_tokens").GetInt32());
        Assert.Equal(0.25, sent.GetProperty("temperature").GetDouble(), 3);
    }

    [Fact]
    public async Task A_function_call_then_its_output_with_previous_response_id_continues_the_conversation()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var stack = await ChatStack.StartAsync();
        var client = Client(stack.Url);
        var first = new CreateResponseOptions(ChatStack.TextModel, [ResponseItem.CreateUserMessageItem("weather? [[sim:tool-calls=1]]")])
        {
            Instructions = "use tools",
        };
        first.Tools.Add(Weather);

        ResponseResult called = await client.CreateResponseAsync(first, ct);
        var call = Assert.Single(called.OutputItems.OfType<FunctionCallResponseItem>());
        var second = new CreateResponseOptions(ChatStack.TextModel, [ResponseItem.CreateFunctionCallOutputItem(call.CallId, "sunny")])
        {
            PreviousResponseId = called.Id,
        };
        second.Tools.Add(Weather);
        ResponseResult answered = await client.CreateResponseAsync(second, ct);
        ResponseResult stored = await client.GetResponseAsync(called.Id, ct);

        Assert.Equal("get_weather", call.FunctionName);
        Assert.Equal("city-0", JsonDocument.Parse(call.FunctionArguments.ToString()).RootElement.GetProperty("city").GetString());
        Assert.Equal(ResponseStatus.Completed, answered.Status);
        Assert.False(string.IsNullOrEmpty(answered.GetOutputText()));
        Assert.Equal(called.Id, answered.PreviousResponseId);
        var messages = stack.LastBackendRequest().GetProperty("messages");
        Assert.Equal(["user", "assistant", "tool"], messages.EnumerateArray().Select(m => m.GetProperty("role").GetString()));
        Assert.Equal(call.CallId, messages[1].GetProperty("tool_calls")[0].GetProperty("id").GetString());
        Assert.Equal(call.CallId, messages[2].GetProperty("tool_call_id").GetString());
        Assert.Equal("sunny", messages[2].GetProperty("content").GetString());
        Assert.Equal(called.Id, stored.Id);
        Assert.Equal(call.CallId, Assert.Single(stored.OutputItems.OfType<FunctionCallResponseItem>()).CallId);
    }

    [Fact]
    public async Task A_streamed_response_has_the_Responses_event_sequence_with_usage_at_the_end()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var stack = await ChatStack.StartAsync();
        var body = """
            {"model":"sim-small","stream":true,"input":"go [[sim:tool-calls=2]] [[sim:arg-chunk=5]]",
             "tools":[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}]}
            """;

        var sse = await Sse.PostAsync(stack.Http, "/v1/responses", body, ct);

        var expectedStart = new[]
        {
            "response.created", "response.in_progress",
            "response.output_item.added", "response.content_part.added", "response.output_text.delta", "response.output_text.done",
            "response.content_part.done", "response.output_item.done",
            "response.output_item.added",
        };
        Assert.Equal(expectedStart, sse.Events.Take(expectedStart.Length));
        Assert.Equal("response.completed", sse.Events[^1]);
        Assert.Contains("response.function_call_arguments.delta", sse.Events);
        Assert.Equal(2, sse.Events.Count(e => e == "response.function_call_arguments.done"));
        Assert.Equal(4, sse.Events.Count(e => e == "response.output_item.done"));
        var numbers = sse.Data.Select(d => JsonDocument.Parse(d).RootElement.GetProperty("sequence_number").GetInt64()).ToList();
        Assert.Equal(Enumerable.Range(0, numbers.Count).Select(i => (long)i), numbers);
        using var completed = JsonDocument.Parse(sse.Data[^1]);
        var response = completed.RootElement.GetProperty("response");
        Assert.Equal("completed", response.GetProperty("status").GetString());
        Assert.True(response.GetProperty("usage").GetProperty("output_tokens").GetInt32() > 0);
        Assert.Equal(["message", "function_call", "message", "function_call"], response.GetProperty("output").EnumerateArray().Select(i => i.GetProperty("type").GetString()));
        var arguments = sse.Events.Select((e, i) => (e, i)).Where(x => x.e == "response.function_call_arguments.delta")
            .Select(x => JsonDocument.Parse(sse.Data[x.i]).RootElement).Where(d => d.GetProperty("output_index").GetInt32() == 1)
            .Aggregate(new StringBuilder(), (s, d) => s.Append(d.GetProperty("delta").GetString()));
        Assert.Equal("""{"city":"city-0"}""", arguments.ToString());
    }

    [Fact]
    public async Task The_OpenAI_SDK_streams_a_response_and_sees_it_complete()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var stack = await ChatStack.StartAsync();
        var options = new CreateResponseOptions(ChatStack.TextModel, [ResponseItem.CreateUserMessageItem("stream it [[sim:tokens=6]] [[sim:reasoning=2]]")])
        {
            StreamingEnabled = true,
        };

        var text = new StringBuilder();
        ResponseResult? done = null;
        await using var updates = await Client(stack.Url).CreateResponseStreamingAsync(options, ct);
        await foreach (var update in updates)
        {
            if (update is StreamingResponseOutputTextDeltaUpdate delta)
            {
                text.Append(delta.Delta);
            }
            else if (update is StreamingResponseCompletedUpdate completed)
            {
                done = completed.Response;
            }
        }

        Assert.NotNull(done);
        Assert.Equal(6, text.ToString().Split(' ').Length);
        Assert.Equal(text.ToString(), done.GetOutputText());
        Assert.Equal(8, done.Usage.OutputTokenCount);
        Assert.IsType<ReasoningResponseItem>(done.OutputItems[0], exactMatch: false);
    }

    [Fact]
    public async Task A_response_cut_by_max_output_tokens_is_incomplete()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var stack = await ChatStack.StartAsync();

        using var whole = await stack.Http.PostAsync("/v1/responses", OpenAiApiTests.Json("""{"model":"sim-small","input":"long [[sim:tokens=50]]","max_output_tokens":3}"""), ct);
        var stream = await Sse.PostAsync(stack.Http, "/v1/responses", """{"model":"sim-small","input":"long [[sim:tokens=50]]","max_output_tokens":3,"stream":true}""", ct);

        using var doc = JsonDocument.Parse(await whole.Content.ReadAsStringAsync(ct));
        Assert.Equal("incomplete", doc.RootElement.GetProperty("status").GetString());
        Assert.Equal("max_output_tokens", doc.RootElement.GetProperty("incomplete_details").GetProperty("reason").GetString());
        Assert.Equal("response.incomplete", stream.Events[^1]);
    }

    [Fact]
    public async Task Images_in_input_reach_a_vision_model_and_a_text_model_gets_a_400()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var stack = await ChatStack.StartAsync();
        var url = "data:image/png;base64," + AnthropicContentTests.PngBase64;
        string Body(string model) => $$"""
            {"model":"{{model}}","input":[{"role":"user","content":[{"type":"input_text","text":"what is it?"},{"type":"input_image","image_url":"{{url}}","detail":"low"}]}]}
            """;

        using var vision = await stack.Http.PostAsync("/v1/responses", OpenAiApiTests.Json(Body(ChatStack.VisionModel)), ct);
        var part = stack.LastBackendRequest().GetProperty("messages")[0].GetProperty("content")[1];
        using var text = await stack.Http.PostAsync("/v1/responses", OpenAiApiTests.Json(Body(ChatStack.TextModel)), ct);

        Assert.Equal(HttpStatusCode.OK, vision.StatusCode);
        Assert.Equal(url, part.GetProperty("image_url").GetProperty("url").GetString());
        Assert.Equal("low", part.GetProperty("image_url").GetProperty("detail").GetString());
        Assert.Equal(HttpStatusCode.BadRequest, text.StatusCode);
        Assert.Contains("vision", await text.Content.ReadAsStringAsync(ct), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_response_stored_with_store_false_cannot_be_read_or_continued()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var stack = await ChatStack.StartAsync();

        using var created = await stack.Http.PostAsync("/v1/responses", OpenAiApiTests.Json("""{"model":"sim-small","input":"x","store":false}"""), ct);
        var id = JsonDocument.Parse(await created.Content.ReadAsStringAsync(ct)).RootElement.GetProperty("id").GetString();
        using var read = await stack.Http.GetAsync($"/v1/responses/{id}", ct);
        using var continued = await stack.Http.PostAsync("/v1/responses", OpenAiApiTests.Json($$"""{"model":"sim-small","input":"y","previous_response_id":"{{id}}"}"""), ct);

        Assert.Equal(HttpStatusCode.OK, created.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, read.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, continued.StatusCode);
        Assert.Contains("previous_response_not_found", await continued.Content.ReadAsStringAsync(ct), StringComparison.Ordinal);
    }
}
