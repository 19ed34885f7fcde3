using System.Net;
using System.Text.Json;
using Coinop.Market.Tests.Inference;
using Coinop.Market.Tests.TestProviders;

namespace Coinop.Market.Tests.Translation;

/// <summary>Every malformed Messages, count_tokens or Responses body is a 400 in its route's error shape, and nothing reaches a provider.</summary>
public class TranslationBadInputTests
{
    private const string Tools = """ "tools":[{"name":"f","input_schema":{"type":"object"}}] """;

    public static TheoryData<string, string> BadMessages => new()
    {
        { """{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_use","id":"t","name":"f","input":{}}]}]}""", "belong in assistant" },
        { """{"model":"m","max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":"x"}]}]}""", "input" },
        { """{"model":"m","max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"tool_use","name":"f","input":{}}]}]}""", "'id'" },
        { """{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"nope","content":"x"}]}]}""", "answers no tool_use" },
        { """{"model":"m","max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{}}]},{"role":"user","content":"no result"}]}""", "without tool_result" },
        { """{"model":"m","max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","is_error":"yes"}]}]}""", "is_error" },
        { """{"model":"m","max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"text"}]}]}]}""", "text" },
        { """{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/bmp","data":"AAAA"}}]}]}""", "media_type" },
        { """{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"not base64!"}}]}]}""", "base64" },
        { """{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"file:///etc/passwd"}}]}]}""", "http(s)" },
        { """{"model":"m","max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"image","source":{"type":"url","url":"https://x/y.png"}}]}]}""", "user messages" },
        { """{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":7}]}]}""", "text" },
        { """{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[7]}]}""", "type" },
        { """{"model":"m","max_tokens":5,"messages":[{"role":"user","content":7}]}""", "content" },
        { """{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"tools":{}}""", "tools" },
        { """{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"tools":[{"name":"bad name","input_schema":{}}]}""", "name" },
        { """{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"tools":[{"name":"f","input_schema":{}},{"name":"f","input_schema":{}}]}""", "unique" },
        { """{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"tools":[{"name":"f"}]}""", "input_schema" },
        { """{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"tool_choice":{"type":"any"}}""", "needs tools" },
        { """{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],""" + Tools + ""","tool_choice":{"type":"tool","name":"g"}}""", "not one of the tools" },
        { """{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"tool_choice":{"type":"sometimes"}}""", "tool_choice" },
        { """{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"tool_choice":"auto"}""", "tool_choice" },
        { """{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"temperature":1.5}""", "temperature" },
        { """{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"top_p":"high"}""", "top_p" },
        { """{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"top_k":-1}""", "top_k" },
        { """{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"stop_sequences":[""]}""", "stop_sequences" },
        { """{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"metadata":{"user_id":5}}""", "metadata" },
        { """{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"thinking":{"type":"enabled"}}""", "budget_tokens" },
        { """{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"thinking":{"type":"deep"}}""", "thinking" },
        { """{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"system":[{"type":"image"}]}""", "system" },
        { """{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"system":5}""", "system" },
    };

    public static TheoryData<string, string> BadResponses => new()
    {
        { """{"model":"m"}""", "input" },
        { """{"model":"m","input":[]}""", "input" },
        { """{"model":"m","input":5}""", "input" },
        { """{"model":"m","input":[5]}""", "input[0]" },
        { """{"model":"m","input":[{"role":"robot","content":"x"}]}""", "role" },
        { """{"model":"m","input":[{"role":"user"}]}""", "content" },
        { """{"model":"m","input":[{"role":"user","content":[{"type":"input_text"}]}]}""", "text" },
        { """{"model":"m","input":[{"role":"user","content":[{"type":"input_image","file_id":"file_1"}]}]}""", "file ids" },
        { """{"model":"m","input":[{"role":"user","content":[{"type":"input_image","image_url":"ftp://x"}]}]}""", "image_url" },
        { """{"model":"m","input":[{"role":"user","content":[{"type":"input_image","image_url":"data:image/png;base64,%%%"}]}]}""", "image_url" },
        { """{"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_id":"f"}]}]}""", "input files" },
        { """{"model":"m","input":[{"type":"function_call","name":"f","arguments":"{}"}]}""", "call_id" },
        { """{"model":"m","input":[{"type":"function_call_output","call_id":"c"}]}""", "output" },
        { """{"model":"m","input":[{"type":"function_call_output","call_id":"unknown","output":"x"}]}""", "No tool call found" },
        { """{"model":"m","input":[{"type":"item_reference","id":"msg_1"}]}""", "item references" },
        { """{"model":"m","input":[{"type":"web_search_call"}]}""", "cannot be served" },
        { """{"model":"m","input":"x","tools":[{"type":"web_search"}]}""", "function tools" },
        { """{"model":"m","input":"x","tools":[{"type":"function"}]}""", "name" },
        { """{"model":"m","input":"x","tools":[{"type":"function","name":"f","parameters":"x"}]}""", "parameters" },
        { """{"model":"m","input":"x","tool_choice":"required"}""", "needs tools" },
        { """{"model":"m","input":"x","tool_choice":{"type":"function","name":"g"}}""", "tool_choice" },
        { """{"model":"m","input":"x","max_output_tokens":0}""", "max_output_tokens" },
        { """{"model":"m","input":"x","temperature":3}""", "temperature" },
        { """{"model":"m","input":"x","metadata":{"k":1}}""", "metadata" },
        { """{"model":"m","input":"x","text":{"format":{"type":"json_schema"}}}""", "json_schema" },
        { """{"model":"m","input":"x","background":true}""", "background" },
        { """{"model":"m","input":"x","conversation":"conv_1"}""", "conversation" },
        { """{"model":"m","input":"x","store":"yes"}""", "store" },
        { """{"model":"m","input":"x","previous_response_id":"resp_nope"}""", "not found" },
        { """{"model":"m","input":"x","stream":"yes"}""", "stream" },
        { """{"input":"x"}""", "model" },
        { "[1,2]", "object" },
        { "{", "JSON" },
    };

    [Theory]
    [MemberData(nameof(BadMessages))]
    public async Task A_malformed_Messages_request_is_a_400_in_the_Anthropic_shape_and_reaches_no_provider(string body, string says)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var provider = await market.ProviderAsync("m", ct);

        using var messages = await market.Http.PostAsync("/v1/messages", OpenAiApiTests.Json(body), ct);
        using var count = await market.Http.PostAsync("/v1/messages/count_tokens", OpenAiApiTests.Json(body), ct);

        foreach (var response in new[] { messages, count })
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
            Assert.Equal("error", doc.RootElement.GetProperty("type").GetString());
            Assert.Equal("invalid_request_error", doc.RootElement.GetProperty("error").GetProperty("type").GetString());
            Assert.Contains(says, doc.RootElement.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        }

        Assert.Empty(provider.Jobs);
    }

    [Theory]
    [MemberData(nameof(BadResponses))]
    public async Task A_malformed_Responses_request_is_a_400_in_the_OpenAI_shape_and_reaches_no_provider(string body, string says)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var provider = await market.ProviderAsync("m", ct);

        using var response = await market.Http.PostAsync("/v1/responses", OpenAiApiTests.Json(body), ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        Assert.Equal("invalid_request_error", doc.RootElement.GetProperty("error").GetProperty("type").GetString());
        Assert.Contains(says, doc.RootElement.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Empty(provider.Jobs);
    }

    [Fact]
    public async Task Content_without_a_chat_equivalent_needs_a_native_backend_and_says_so()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var provider = await market.ProviderAsync("m", ct);
        var body = """{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"x"}}]}]}""";

        using var response = await market.Http.PostAsync("/v1/messages", OpenAiApiTests.Json(body), ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        Assert.Contains("'document' need a provider that serves the Anthropic API natively", doc.RootElement.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Empty(provider.Jobs);
    }
}
