using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using Coinop.SimBackend.Generation;
using Coinop.SimBackend.Hosting;
using Microsoft.AspNetCore.Http;

namespace Coinop.SimBackend.OpenAi;

/// <summary>
/// A chat answer with more than text, as tool-using and reasoning models give: <c>reasoning_content</c> first, then
/// text, or for <c>[[sim:tool-calls=N]]</c> a short text before each of N tool calls whose arguments stream in small
/// pieces. Deterministic like the rest of the simulator; not on the latency-benchmark path, so plain
/// <see cref="Utf8JsonWriter"/> output.
/// </summary>
internal sealed class ScriptedAnswer
{
    private const int DefaultArgChunk = 4;
    private readonly Simulator _sim;
    private readonly SimRequest _request;
    private readonly string _model;
    private readonly string _id;
    private readonly long _created;
    private readonly List<Piece> _pieces = [];
    private readonly string _finishReason;
    private readonly int _completionTokens;

    public ScriptedAnswer(Simulator sim, SimRequest request, SimDirectives directives)
    {
        _sim = sim;
        _request = request;
        _model = request.Model;
        var seed = SimText.Seed(request.Model, request.Prompt);
        _id = "chatcmpl-sim" + seed.ToString("x16", null);
        _created = sim.Time.GetUtcNow().ToUnixTimeSeconds();
        var tokens = 0;
        if (directives.Reasoning is { } thinking)
        {
            for (var i = 0; i < thinking; i++)
            {
                _pieces.Add(new Piece(PieceKind.Reasoning, 0, Encoding.UTF8.GetString(SimText.Token(seed ^ 0x5EED, i))));
            }

            tokens += thinking;
        }

        string finish;
        if (directives.ToolCalls is { } calls)
        {
            var chunk = directives.ArgChunk ?? DefaultArgChunk;
            for (var i = 0; i < calls; i++)
            {
                var tool = request.Tools[i % request.Tools.Count];
                var text = (i == 0 ? "" : " ") + $"Calling {tool.Name}.";
                _pieces.Add(new Piece(PieceKind.Text, 0, text));
                tokens += SimText.CountTokens(text);
                var arguments = Arguments(tool, i);
                _pieces.Add(new Piece(PieceKind.ToolStart, i, tool.Name, $"call_sim_{seed:x8}_{i}"));
                for (var at = 0; at < arguments.Length; at += chunk)
                {
                    _pieces.Add(new Piece(PieceKind.ToolArguments, i, arguments.Substring(at, Math.Min(chunk, arguments.Length - at))));
                }

                tokens += Math.Max(1, (arguments.Length + 3) / 4);
            }

            finish = "tool_calls";
        }
        else
        {
            var natural = directives.Tokens ?? SimText.NaturalLength(seed);
            var count = Math.Min(natural, request.MaxTokens ?? int.MaxValue);
            for (var i = 0; i < count; i++)
            {
                _pieces.Add(new Piece(PieceKind.Text, 0, Encoding.UTF8.GetString(SimText.Token(seed, i))));
            }

            tokens += count;
            finish = count < natural ? "length" : "stop";
        }

        _finishReason = directives.Finish ?? finish;
        _completionTokens = tokens;
    }

    /// <summary>True when the request can be answered this way (tool calls need tools to call).</summary>
    public static bool TryCheck(SimRequest request, SimDirectives directives, out string? error)
    {
        error = directives.ToolCalls is not null && request.Tools.Count == 0
            ? "[[sim:tool-calls=N]] needs 'tools' in the request"
            : null;
        return error is null;
    }

    public async Task WriteJsonAsync(HttpContext ctx)
    {
        await Task.Delay(_sim.FirstTokenDelay + _sim.TokenInterval * Math.Max(_pieces.Count - 1, 0), _sim.Time, ctx.RequestAborted);
        var body = new ArrayBufferWriter<byte>(1024);
        using (var json = new Utf8JsonWriter(body))
        {
            json.WriteStartObject();
            Head(json, "chat.completion");
            json.WriteStartArray("choices");
            json.WriteStartObject();
            json.WriteNumber("index", 0);
            json.WriteStartObject("message");
            json.WriteString("role", "assistant");
            var text = Join(PieceKind.Text, 0);
            if (text.Length > 0)
            {
                json.WriteString("content", text);
            }
            else
            {
                json.WriteNull("content");
            }

            if (Join(PieceKind.Reasoning, 0) is { Length: > 0 } reasoning)
            {
                json.WriteString("reasoning_content", reasoning);
            }

            var starts = _pieces.Where(p => p.Kind == PieceKind.ToolStart).ToList();
            if (starts.Count > 0)
            {
                json.WriteStartArray("tool_calls");
                foreach (var start in starts)
                {
                    json.WriteStartObject();
                    json.WriteString("id", start.Id);
                    json.WriteString("type", "function");
                    json.WriteStartObject("function");
                    json.WriteString("name", start.Text);
                    json.WriteString("arguments", Join(PieceKind.ToolArguments, start.Index));
                    json.WriteEndObject();
                    json.WriteEndObject();
                }

                json.WriteEndArray();
            }

            json.WriteEndObject();
            json.WriteString("finish_reason", _finishReason);
            json.WriteEndObject();
            json.WriteEndArray();
            Usage(json);
            json.WriteEndObject();
        }

        await OpenAiEndpoints.WriteJsonAsync(ctx, 200, body.WrittenMemory);
    }

    public async Task StreamAsync(HttpContext ctx)
    {
        var aborted = ctx.RequestAborted;
        await Task.Delay(_sim.FirstTokenDelay, _sim.Time, aborted);
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "text/event-stream";
        ctx.Response.Headers.CacheControl = "no-cache";
        var pipe = ctx.Response.BodyWriter;
        await ChunkAsync(pipe, json =>
        {
            json.WriteString("role", "assistant");
            json.WriteString("content", "");
        }, null, aborted);
        foreach (var piece in _pieces)
        {
            if (_sim.TokenInterval > TimeSpan.Zero)
            {
                await Task.Delay(_sim.TokenInterval, _sim.Time, aborted);
            }

            await ChunkAsync(pipe, json => Delta(json, piece), null, aborted);
        }

        await ChunkAsync(pipe, static _ => { }, _finishReason, aborted);
        if (_request.IncludeUsage)
        {
            await WriteEventAsync(pipe, json =>
            {
                Head(json, "chat.completion.chunk");
                json.WriteStartArray("choices");
                json.WriteEndArray();
                Usage(json);
            }, aborted);
        }

        pipe.Write("data: [DONE]\n\n"u8);
        await pipe.FlushAsync(aborted);
        await pipe.CompleteAsync();
    }

    /// <summary>Arguments for call <paramref name="call"/>: one value per schema property, by its type.</summary>
    internal static string Arguments(SimTool tool, int call)
    {
        var buffer = new ArrayBufferWriter<byte>(128);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (tool.Parameters.ValueKind == JsonValueKind.Object && tool.Parameters.TryGetProperty("properties", out var properties)
                && properties.ValueKind == JsonValueKind.Object)
            {
                foreach (var property in properties.EnumerateObject())
                {
                    json.WritePropertyName(property.Name);
                    var schema = property.Value;
                    if (schema.ValueKind == JsonValueKind.Object && schema.TryGetProperty("enum", out var values) && values.ValueKind == JsonValueKind.Array
                        && values.GetArrayLength() > 0)
                    {
                        values[0].WriteTo(json);
                        continue;
                    }

                    var type = schema.ValueKind == JsonValueKind.Object && schema.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String
                        ? t.GetString()
                        : null;
                    switch (type)
                    {
                        case "string":
                            json.WriteStringValue($"{property.Name}-{call}");
                            break;
                        case "integer" or "number":
                            json.WriteNumberValue(call + 1);
                            break;
                        case "boolean":
                            json.WriteBooleanValue(true);
                            break;
                        case "array":
                            json.WriteStartArray();
                            json.WriteEndArray();
                            break;
                        case "object":
                            json.WriteStartObject();
                            json.WriteEndObject();
                            break;
                        default:
                            json.WriteNullValue();
                            break;
                    }
                }
            }

            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    private static void Delta(Utf8JsonWriter json, Piece piece)
    {
        switch (piece.Kind)
        {
            case PieceKind.Reasoning:
                json.WriteString("reasoning_content", piece.Text);
                break;
            case PieceKind.Text:
                json.WriteString("content", piece.Text);
                break;
            default:
                json.WriteStartArray("tool_calls");
                json.WriteStartObject();
                json.WriteNumber("index", piece.Index);
                if (piece.Kind == PieceKind.ToolStart)
                {
                    json.WriteString("id", piece.Id);
                    json.WriteString("type", "function");
                    json.WriteStartObject("function");
                    json.WriteString("name", piece.Text);
                    json.WriteString("arguments", "");
                }
                else
                {
                    json.WriteStartObject("function");
                    json.WriteString("arguments", piece.Text);
                }

                json.WriteEndObject();
                json.WriteEndObject();
                json.WriteEndArray();
                break;
        }
    }

    private Task ChunkAsync(PipeWriter pipe, Action<Utf8JsonWriter> delta, string? finishReason, CancellationToken cancellationToken) =>
        WriteEventAsync(pipe, json =>
        {
            Head(json, "chat.completion.chunk");
            json.WriteStartArray("choices");
            json.WriteStartObject();
            json.WriteNumber("index", 0);
            json.WriteStartObject("delta");
            delta(json);
            json.WriteEndObject();
            if (finishReason is null)
            {
                json.WriteNull("finish_reason");
            }
            else
            {
                json.WriteString("finish_reason", finishReason);
            }

            json.WriteEndObject();
            json.WriteEndArray();
            if (_request.IncludeUsage)
            {
                json.WriteNull("usage");
            }
        }, cancellationToken);

    private static async Task WriteEventAsync(PipeWriter pipe, Action<Utf8JsonWriter> body, CancellationToken cancellationToken)
    {
        pipe.Write("data: "u8);
        using (var json = new Utf8JsonWriter(pipe))
        {
            json.WriteStartObject();
            body(json);
            json.WriteEndObject();
        }

        pipe.Write("\n\n"u8);
        await pipe.FlushAsync(cancellationToken);
    }

    private void Head(Utf8JsonWriter json, string type)
    {
        json.WriteString("id", _id);
        json.WriteString("object", type);
        json.WriteNumber("created", _created);
        json.WriteString("model", _model);
        json.WriteString("system_fingerprint", "fp_coinop_simulator");
    }

    private void Usage(Utf8JsonWriter json)
    {
        json.WriteStartObject("usage");
        json.WriteNumber("prompt_tokens", _request.PromptTokens);
        json.WriteNumber("completion_tokens", _completionTokens);
        json.WriteNumber("total_tokens", _request.PromptTokens + _completionTokens);
        json.WriteEndObject();
    }

    private string Join(PieceKind kind, int index)
    {
        var text = new StringBuilder();
        foreach (var piece in _pieces)
        {
            if (piece.Kind == kind && piece.Index == index)
            {
                text.Append(piece.Text);
            }
        }

        return text.ToString();
    }

    private enum PieceKind
    {
        Reasoning,
        Text,
        ToolStart,
        ToolArguments,
    }

    private sealed record Piece(PieceKind Kind, int Index, string Text, string? Id = null);
}
