using System.Buffers;
using System.Text;
using System.Text.Json;
using Coinop.Core.Protocol;
using Coinop.Market.Inference.Chat;

namespace Coinop.Market.Inference.Responses;

/// <summary>
/// An OpenAI chat stream rewritten as the Responses event sequence (sans-IO: parsed chunks in, event bytes out):
/// <c>response.created</c> and <c>response.in_progress</c>; per output item <c>response.output_item.added</c>, its deltas
/// (<c>response.reasoning_text.delta</c>, <c>response.output_text.delta</c> inside a content part, or
/// <c>response.function_call_arguments.delta</c>), its <c>.done</c> events and <c>response.output_item.done</c>; then
/// <c>response.completed</c> (or <c>response.incomplete</c> when the output limit cut it) with usage. Each event carries
/// its <c>sequence_number</c>. An item closes when output of another begins, so text between function calls is a
/// message item of its own.
/// </summary>
public sealed class ResponsesStreamTranslator : IChatStreamSink, IDisposable
{
    private readonly ResponseDraft _draft;
    private readonly ChatStreamReader _reader;
    private readonly Dictionary<StreamedToolCall, (ResponseItem Item, int Index)> _calls = [];
    private IBufferWriter<byte> _output = null!;
    private Utf8JsonWriter? _json;
    private bool _started;
    private long _sequence;
    private ResponseItem? _open;
    private int _openIndex = -1;

    private readonly long _maxKeptChars;
    private long _keptChars;

    /// <param name="maxKeptChars">
    /// The most text the draft keeps (it is stored whole when complete); a stream that runs past it fails as a whole
    /// answer past the buffered limit does, instead of growing the market's memory for as long as its deadline allows.
    /// </param>
    public ResponsesStreamTranslator(ResponseDraft draft, long maxKeptChars = long.MaxValue)
    {
        _draft = draft;
        _maxKeptChars = maxKeptChars;
        _reader = new ChatStreamReader(this);
    }

    public TokenUsage? Usage => _reader.Usage;

    public string? FinishReason => _reader.FinishReason;

    public ResponseDraft Draft => _draft;

    /// <summary>Writes <c>response.created</c> and <c>response.in_progress</c> (once).</summary>
    public void Start(IBufferWriter<byte> output)
    {
        _output = output;
        if (_started)
        {
            return;
        }

        _started = true;
        Event("response.created", json =>
        {
            json.WritePropertyName("response");
            _draft.WriteResponse(json);
        });
        Event("response.in_progress", json =>
        {
            json.WritePropertyName("response");
            _draft.WriteResponse(json);
        });
    }

    public int OnChunk(JsonElement chunk, IBufferWriter<byte> output)
    {
        Start(output);
        return _reader.OnChunk(chunk);
    }

    /// <summary>Closes the open item and completes the draft; <see cref="WriteEnd"/> writes the final event.</summary>
    public void Finish(IBufferWriter<byte> output)
    {
        Start(output);
        _reader.Flush();
        if (_draft.Output.Count == 0)
        {
            Open(ResponseItemKind.Message, null); // an empty answer is still one (empty) message
        }

        Close();
        _draft.Complete(_reader.FinishReason, Usage ?? TokenUsage.Zero);
    }

    /// <summary><c>response.completed</c> (or <c>response.incomplete</c>) with the whole response.</summary>
    public void WriteEnd(IBufferWriter<byte> output)
    {
        _output = output;
        Event(_draft.Status == "incomplete" ? "response.incomplete" : "response.completed", json =>
        {
            json.WritePropertyName("response");
            _draft.WriteResponse(json);
        });
    }

    /// <summary>A failure after the stream began: <c>error</c>, then <c>response.failed</c>.</summary>
    public void WriteError(IBufferWriter<byte> output, ApiError error)
    {
        _output = output;
        Event("error", json =>
        {
            json.WriteString("code", error.Code);
            json.WriteString("message", error.Message);
            json.WriteNull("param");
        });
    }

    void IChatStreamSink.Reasoning(string text)
    {
        Open(ResponseItemKind.Reasoning, null);
        Keep(text.Length);
        _open!.Text.Append(text);
        var (item, index) = (_open, _openIndex);
        Event("response.reasoning_text.delta", json =>
        {
            json.WriteString("item_id", item.Id);
            json.WriteNumber("output_index", index);
            json.WriteNumber("content_index", 0);
            json.WriteString("delta", text);
        });
    }

    void IChatStreamSink.Text(string text)
    {
        Open(ResponseItemKind.Message, null);
        Keep(text.Length);
        _open!.Text.Append(text);
        var (item, index) = (_open, _openIndex);
        Event("response.output_text.delta", json =>
        {
            json.WriteString("item_id", item.Id);
            json.WriteNumber("output_index", index);
            json.WriteNumber("content_index", 0);
            json.WriteString("delta", text);
            json.WriteStartArray("logprobs");
            json.WriteEndArray();
        });
    }

    void IChatStreamSink.ToolStarted(StreamedToolCall call)
    {
        Open(ResponseItemKind.FunctionCall, call);
    }

    void IChatStreamSink.ToolArguments(StreamedToolCall call, string piece)
    {
        var (item, index) = _calls[call];
        Keep(piece.Length);
        item.Text.Append(piece);
        Event("response.function_call_arguments.delta", json =>
        {
            json.WriteString("item_id", item.Id);
            json.WriteNumber("output_index", index);
            json.WriteString("delta", piece);
        });
    }

    public void Dispose() => _json?.Dispose();

    private void Keep(int chars)
    {
        _keptChars += chars;
        if (_keptChars > _maxKeptChars)
        {
            throw new ProviderOutputException($"the response's text exceeds {_maxKeptChars} characters");
        }
    }

    private void Open(ResponseItemKind kind, StreamedToolCall? call)
    {
        if (_open is not null && _open.Kind == kind && kind != ResponseItemKind.FunctionCall)
        {
            return;
        }

        Close();
        var item = _draft.Add(kind, call?.Id, call?.Name);
        var index = _draft.Output.Count - 1;
        _open = item;
        _openIndex = index;
        if (call is not null)
        {
            _calls[call] = (item, index);
        }

        Event("response.output_item.added", json =>
        {
            json.WriteNumber("output_index", index);
            json.WritePropertyName("item");
            item.WriteTo(json);
        });
        if (kind != ResponseItemKind.FunctionCall)
        {
            Event("response.content_part.added", json =>
            {
                json.WriteString("item_id", item.Id);
                json.WriteNumber("output_index", index);
                json.WriteNumber("content_index", 0);
                json.WritePropertyName("part");
                if (kind == ResponseItemKind.Message)
                {
                    ResponseItem.WriteTextPart("", json);
                }
                else
                {
                    ResponseItem.WriteReasoningPart("", json);
                }
            });
        }
    }

    private void Close()
    {
        if (_open is not { } item)
        {
            return;
        }

        var index = _openIndex;
        var text = item.Text.ToString();
        switch (item.Kind)
        {
            case ResponseItemKind.Reasoning:
                Event("response.reasoning_text.done", json =>
                {
                    json.WriteString("item_id", item.Id);
                    json.WriteNumber("output_index", index);
                    json.WriteNumber("content_index", 0);
                    json.WriteString("text", text);
                });
                PartDone(item, index, json => ResponseItem.WriteReasoningPart(text, json));
                break;
            case ResponseItemKind.Message:
                Event("response.output_text.done", json =>
                {
                    json.WriteString("item_id", item.Id);
                    json.WriteNumber("output_index", index);
                    json.WriteNumber("content_index", 0);
                    json.WriteString("text", text);
                    json.WriteStartArray("logprobs");
                    json.WriteEndArray();
                });
                PartDone(item, index, json => ResponseItem.WriteTextPart(text, json));
                break;
            default:
                Event("response.function_call_arguments.done", json =>
                {
                    json.WriteString("item_id", item.Id);
                    json.WriteNumber("output_index", index);
                    json.WriteString("name", item.Name);
                    json.WriteString("arguments", text);
                });
                break;
        }

        item.Done = true;
        Event("response.output_item.done", json =>
        {
            json.WriteNumber("output_index", index);
            json.WritePropertyName("item");
            item.WriteTo(json);
        });
        _open = null;
    }

    private void PartDone(ResponseItem item, int index, Action<Utf8JsonWriter> part) =>
        Event("response.content_part.done", json =>
        {
            json.WriteString("item_id", item.Id);
            json.WriteNumber("output_index", index);
            json.WriteNumber("content_index", 0);
            json.WritePropertyName("part");
            part(json);
        });

    /// <summary>One event: <c>event: TYPE</c>, then <c>data: {"type":TYPE,"sequence_number":N,...}</c>, then a blank line.</summary>
    private void Event(string type, Action<Utf8JsonWriter> body)
    {
        var output = _output;
        output.Write("event: "u8);
        Encoding.UTF8.GetBytes(type, output);
        output.Write("\ndata: "u8);
        if (_json is null)
        {
            _json = new Utf8JsonWriter(output, TranslationJson.Options);
        }
        else
        {
            _json.Reset(output);
        }

        _json.WriteStartObject();
        _json.WriteString("type", type);
        _json.WriteNumber("sequence_number", _sequence++);
        body(_json);
        _json.WriteEndObject();
        _json.Flush();
        output.Write("\n\n"u8);
    }
}
