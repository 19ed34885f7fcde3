using System.Text;
using BenchmarkDotNet.Attributes;
using Coinop.Core.Protocol;
using Coinop.Market.Inference;
using Coinop.Market.Inference.Anthropic;
using Coinop.Market.Inference.Responses;
using Microsoft.AspNetCore.Http;

namespace Coinop.Bench;

/// <summary>
/// What translation adds to a request, side by side with the pass-through it replaces: the same coding-agent
/// conversation (a 2 KB system prompt, three tools, a tool call and its result) as an OpenAI chat request passed
/// through, as an Anthropic Messages request and as a Responses request, each read, checked and made into the
/// backend's chat request; and the same answer (150 words and a tool call) relayed whole and as a 200-chunk stream
/// through the pass-through relay, the Anthropic translation and the Responses translation.
/// </summary>
[MemoryDiagnoser]
public class TranslationBenchmarks
{
    private static readonly ModelOffer Offer = new("m", "ollama", 1_000_000, 3_000_000, 8192, 8);
    private byte[] _chatRequest = [];
    private byte[] _anthropicRequest = [];
    private byte[] _responsesRequest = [];
    private byte[] _countRequest = [];
    private byte[] _answer = [];
    private byte[][] _chunks = [];

    [GlobalSetup]
    public void Setup()
    {
        var system = string.Concat(Enumerable.Repeat("You are a coding agent. Read files before editing them. ", 36));
        var words = string.Join(' ', Enumerable.Range(0, 150).Select(i => "word" + i));
        const string schema = """{"type":"object","properties":{"path":{"type":"string","description":"the file"},"line":{"type":"integer"}},"required":["path"]}""";
        _chatRequest = Encoding.UTF8.GetBytes($$$"""
            {"model":"m","max_tokens":1024,"stream":false,"messages":[{"role":"system","content":"{{{system}}}"},{"role":"user","content":"fix the bug"},
             {"role":"assistant","content":"Reading.","tool_calls":[{"id":"c1","type":"function","function":{"name":"read","arguments":"{\"path\":\"a.cs\"}"}}]},
             {"role":"tool","tool_call_id":"c1","content":"{{{words}}}"},{"role":"user","content":"go on"}],
             "tools":[{"type":"function","function":{"name":"read","parameters":{{{schema}}}}},{"type":"function","function":{"name":"edit","parameters":{{{schema}}}}},
                      {"type":"function","function":{"name":"run","parameters":{{{schema}}}}}]}
            """);
        _anthropicRequest = Encoding.UTF8.GetBytes($$$"""
            {"model":"m","max_tokens":1024,"system":[{"type":"text","text":"{{{system}}}"}],"messages":[{"role":"user","content":"fix the bug"},
             {"role":"assistant","content":[{"type":"text","text":"Reading."},{"type":"tool_use","id":"c1","name":"read","input":{"path":"a.cs"}}]},
             {"role":"user","content":[{"type":"tool_result","tool_use_id":"c1","content":"{{{words}}}"},{"type":"text","text":"go on"}]}],
             "tools":[{"name":"read","input_schema":{{{schema}}}},{"name":"edit","input_schema":{{{schema}}}},{"name":"run","input_schema":{{{schema}}}}]}
            """);
        _responsesRequest = Encoding.UTF8.GetBytes($$$"""
            {"model":"m","max_output_tokens":1024,"instructions":"{{{system}}}","input":[{"role":"user","content":"fix the bug"},
             {"type":"function_call","call_id":"c1","name":"read","arguments":"{\"path\":\"a.cs\"}"},{"type":"function_call_output","call_id":"c1","output":"{{{words}}}"},
             {"role":"user","content":"go on"}],
             "tools":[{"type":"function","name":"read","parameters":{{{schema}}}},{"type":"function","name":"edit","parameters":{{{schema}}}},{"type":"function","name":"run","parameters":{{{schema}}}}]}
            """);
        _countRequest = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(_anthropicRequest).Replace("\"model\":\"m\"", "\"model\":\"gpt-4o\"", StringComparison.Ordinal));
        _answer = Encoding.UTF8.GetBytes($$$"""
            {"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"{{{words}}}",
             "tool_calls":[{"id":"c2","type":"function","function":{"name":"edit","arguments":"{\"path\":\"a.cs\",\"line\":12}"}}]},"finish_reason":"tool_calls"}],
             "usage":{"prompt_tokens":900,"completion_tokens":170,"total_tokens":1070}}
            """);
        var chunks = new List<string> { """{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}""" };
        chunks.AddRange(Enumerable.Range(0, 150).Select(i => $$$"""{"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" word{{{i}}}"},"finish_reason":null}]}"""));
        chunks.Add("""{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c2","type":"function","function":{"name":"edit","arguments":""}}]},"finish_reason":null}]}""");
        const string arguments = """{"path":"a.cs","line":12,"text":"the new text of the line, long enough to come in pieces"}""";
        for (var at = 0; at < arguments.Length; at += 4)
        {
            var piece = System.Text.Json.JsonEncodedText.Encode(arguments.AsSpan(at, Math.Min(4, arguments.Length - at))).ToString();
            chunks.Add($$$"""{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{{{piece}}}"}}]},"finish_reason":null}]}""");
        }

        chunks.Add("""{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}""");
        chunks.Add("""{"choices":[],"usage":{"prompt_tokens":900,"completion_tokens":170,"total_tokens":1070}}""");
        _chunks = [.. chunks.Select(c => Encoding.UTF8.GetBytes("data: " + c + "\n\n")), "data: [DONE]\n\n"u8.ToArray()];
    }

    public int StreamChunks => _chunks.Length;

    [Benchmark(Baseline = true, Description = "request: OpenAI chat, passed through")]
    public int ChatRequest() => Request(_chatRequest, InferenceRoute.ChatCompletions);

    [Benchmark(Description = "request: Anthropic Messages → chat")]
    public int AnthropicRequest() => Request(_anthropicRequest, InferenceRoute.Messages);

    [Benchmark(Description = "request: Responses → chat")]
    public int ResponsesRequest() => Request(_responsesRequest, InferenceRoute.Responses);

    [Benchmark(Description = "count_tokens (gpt-4o, exact)")]
    public long CountTokens()
    {
        using var document = System.Text.Json.JsonDocument.Parse(_countRequest);
        return TokenCounter.Count(document.RootElement).Tokens;
    }

    [Benchmark(Description = "answer, whole: chat passed through")]
    public long ChatAnswer() => Whole(InferenceRoute.ChatCompletions, _chatRequest);

    [Benchmark(Description = "answer, whole: chat → Anthropic message")]
    public long AnthropicAnswer() => Whole(InferenceRoute.Messages, _anthropicRequest);

    [Benchmark(Description = "answer, whole: chat → Responses response")]
    public long ResponsesAnswer() => Whole(InferenceRoute.Responses, _responsesRequest);

    [Benchmark(Description = "answer, 200-chunk stream: chat passed through")]
    public long ChatStream() => Stream(InferenceRoute.ChatCompletions, _chatRequest);

    [Benchmark(Description = "answer, 200-chunk stream: chat → Anthropic events")]
    public long AnthropicStream() => Stream(InferenceRoute.Messages, _anthropicRequest);

    [Benchmark(Description = "answer, 200-chunk stream: chat → Responses events")]
    public long ResponsesStream() => Stream(InferenceRoute.Responses, _responsesRequest);

    private static int Request(byte[] body, InferenceRoute route)
    {
        using var request = Read(body, route, stream: false);
        return request.ForBackend(Offer).GetArrayLength("messages");
    }

    private static InferenceRequest Read(byte[] body, InferenceRoute route, bool stream)
    {
        if (stream)
        {
            body = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(body).Replace("{\"model\":\"m\",", "{\"model\":\"m\",\"stream\":true,", StringComparison.Ordinal));
        }

        var http = new DefaultHttpContext();
        http.Request.Body = new MemoryStream(body);
        var (request, error) = InferenceRequest.ReadAsync(http.Request, route, 4 << 20, CancellationToken.None).GetAwaiter().GetResult();
        if (request is null)
        {
            throw new InvalidOperationException(error!.Message);
        }

        if (route == InferenceRoute.Responses)
        {
            var input = new System.Buffers.ArrayBufferWriter<byte>();
            using (var json = new System.Text.Json.Utf8JsonWriter(input))
            {
                ResponsesInput.WriteMessages(request.Root, json);
            }

            request.Turn = new ResponsesTurn("resp_bench", DateTimeOffset.UnixEpoch, null, [], input.WrittenSpan.ToArray(), store: false, null!);
        }

        return request;
    }

    private long Whole(InferenceRoute route, byte[] body)
    {
        using var request = Read(body, route, stream: false);
        var http = new DefaultHttpContext { Response = { Body = System.IO.Stream.Null } };
        using var relay = ResponseRelay.For(request, Offer, Guid.Empty, new ConsumerOutput(http.Response), 64 << 20);
        relay.Accept(_answer);
        if (!relay.Complete())
        {
            throw new InvalidOperationException("not a chat completion");
        }

        relay.FinishingAsync(relay.Usage!, CancellationToken.None).AsTask().GetAwaiter().GetResult();
        relay.Finish(BillingSettlement.Free);
        return http.Response.BodyWriter.UnflushedBytes;
    }

    private long Stream(InferenceRoute route, byte[] body)
    {
        using var request = Read(body, route, stream: true);
        var http = new DefaultHttpContext { Response = { Body = System.IO.Stream.Null } };
        using var relay = ResponseRelay.For(request, Offer, Guid.Empty, new ConsumerOutput(http.Response), 64 << 20);
        long written = 0;
        foreach (var chunk in _chunks)
        {
            relay.Accept(chunk);
            written += http.Response.BodyWriter.UnflushedBytes;
            http.Response.BodyWriter.FlushAsync().AsTask().GetAwaiter().GetResult();
        }

        relay.Complete();
        relay.FinishingAsync(relay.Usage ?? TokenUsage.Zero, CancellationToken.None).AsTask().GetAwaiter().GetResult();
        relay.Finish(BillingSettlement.Free);
        return written + http.Response.BodyWriter.UnflushedBytes;
    }
}

internal static class JsonElementExtensions
{
    public static int GetArrayLength(this System.Text.Json.JsonElement root, string name) => root.GetProperty(name).GetArrayLength();
}
