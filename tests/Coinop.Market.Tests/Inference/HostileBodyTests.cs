using System.Text;
using System.Text.Json;
using Coinop.Market.Tests.TestProviders;
using Coinop.TestKit;
using CsCheck;

namespace Coinop.Market.Tests.Inference;

/// <summary>
/// The inference endpoints parse a consumer's body: valid bodies with a node replaced, mutated byte by byte, or random
/// JSON get a 4xx with a JSON error in the route's shape (or are served), never a 500.
/// </summary>
public class HostileBodyTests
{
    public static TheoryData<string, string> Routes => new()
    {
        { "/v1/chat/completions", """{"model":"llama3","stream":false,"max_tokens":20,"temperature":0.5,"stream_options":{"include_usage":true},"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"hi"}]}]}""" },
        { "/v1/completions", """{"model":"llama3","prompt":"hi","max_tokens":20,"stream":false}""" },
        { "/v1/embeddings", """{"model":"llama3","input":["a","b"]}""" },
        { "/v1/messages", """{"model":"llama3","max_tokens":20,"system":"s","stream":false,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}""" },
        {
            "/v1/messages",
            """
            {"model":"llama3","max_tokens":20,"system":[{"type":"text","text":"s"}],"temperature":0.5,"top_k":3,"stop_sequences":["x"],"metadata":{"user_id":"u"},
             "thinking":{"type":"enabled","budget_tokens":1024},"tool_choice":{"type":"tool","name":"f"},
             "tools":[{"name":"f","description":"d","input_schema":{"type":"object","properties":{"a":{"type":"string"}}}}],
             "messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]},
                         {"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":""},{"type":"tool_use","id":"t1","name":"f","input":{"a":"b"}}]},
                         {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","is_error":true,"content":[{"type":"text","text":"r"},{"type":"image","source":{"type":"url","url":"https://x/y.png"}}]}]}]}
            """
        },
        { "/v1/messages/count_tokens", """{"model":"gpt-4o","system":"s","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"tools":[{"name":"f","input_schema":{"type":"object"}}]}""" },
        {
            "/v1/responses",
            """
            {"model":"llama3","instructions":"i","max_output_tokens":20,"temperature":0.5,"store":true,"metadata":{"k":"v"},"tool_choice":"auto",
             "tools":[{"type":"function","name":"f","parameters":{"type":"object"},"strict":false}],"text":{"format":{"type":"json_schema","name":"n","schema":{}}},
             "input":[{"role":"user","content":[{"type":"input_text","text":"hi"},{"type":"input_image","image_url":"data:image/png;base64,AAAA"}]},
                      {"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c1","output":"ok"},
                      {"role":"assistant","content":[{"type":"output_text","text":"done"}]}]}
            """
        },
    };

    [Theory]
    [MemberData(nameof(Routes))]
    public async Task Bodies_an_attacker_builds_from_a_valid_one_are_never_a_server_error(string path, string valid)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var provider = await market.ProviderAsync("llama3", ct, embeddings: true);

        await HostileInput.JsonBodies(valid).SampleAsync(async body =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            using var response = await market.Http.SendAsync(request, ct);
            var text = await response.Content.ReadAsStringAsync(ct);
            var status = (int)response.StatusCode;
            Assert.True(status < 500, $"{path}: {status} {text} for {body}");
            if (status >= 400)
            {
                using var json = JsonDocument.Parse(text);
                Assert.True(json.RootElement.TryGetProperty(path.StartsWith("/v1/messages", StringComparison.Ordinal) ? "type" : "error", out _), $"{status} not in the route's error shape: {text}");
            }
        }, iter: 80, threads: 1);
    }
}
