using System.Buffers;
using System.Text;
using System.Text.Json;
using Coinop.Core.Protocol;
using Coinop.Market.Inference.Chat;

namespace Coinop.Market.Inference.Anthropic;

/// <summary>
/// An OpenAI chat stream rewritten as Anthropic message events, chunk by chunk (sans-IO: parsed chunks in, event
/// bytes out). <c>message_start</c> and a <c>ping</c> open it; each kind of output gets its own content block as it
/// appears: reasoning a thinking block (<c>thinking_delta</c>, then an empty <c>signature_delta</c>), content a text
/// block (<c>text_delta</c>), each tool call a tool_use block (<c>content_block_start</c> with its id and name, then
/// its arguments as <c>input_json_delta</c> partial JSON as the backend streams them). A block closes when output of
/// another begins, so text between tool calls is a block of its own. The end writes <c>message_delta</c> with the stop
/// reason (<c>tool_use</c> whenever tools were called) and usage; <see cref="Stop"/> writes <c>message_stop</c>.
/// </summary>
public sealed class AnthropicStreamTranslator : IChatStreamSink, IDisposable
{
    private readonly AnthropicReply _reply;
    private readonly ChatStreamReader _reader;
    private IBufferWriter<byte> _output = null!;
    private Utf8JsonWriter? _json;
    private bool _started;
    private int _nextIndex;
    private Block _open = Block.None;
    private int _openIndex = -1;
    private StreamedToolCall? _openTool;
    private readonly Dictionary<StreamedToolCall, int> _toolBlocks = [];

    public AnthropicStreamTranslator(AnthropicReply reply)
    {
        _reply = reply;
        _reader = new ChatStreamReader(this);
    }

    private enum Block
    {
        None,
        Thinking,
        Text,
        Tool,
    }

    /// <summary>Usage from the stream's usage chunk; null until one came.</summary>
    public TokenUsage? Usage => _reader.Usage;

    /// <summary>Writes <c>message_start</c> and a ping (once).</summary>
    public void Start(IBufferWriter<byte> output)
    {
        _output = output;
        if (_started)
        {
            return;
        }

        _started = true;
        Event("message_start", json =>
        {
            json.WriteStartObject("message");
            json.WriteString("id", _reply.MessageId);
            json.WriteString("type", "message");
            json.WriteString("role", "assistant");
            json.WriteString("model", _reply.Model);
            json.WriteStartArray("content");
            json.WriteEndArray();
            json.WriteNull("stop_reason");
            json.WriteNull("stop_sequence");
            ChatToAnthropic.WriteUsage(json, TokenUsage.Zero);
            json.WriteEndObject();
        });
        Event("ping", static _ => { });
    }

    /// <summary>Takes one parsed chunk; returns how many pieces of generated output it carried (for partial billing).</summary>
    public int OnChunk(JsonElement chunk, IBufferWriter<byte> output)
    {
        Start(output);
        return _reader.OnChunk(chunk);
    }

    /// <summary>
    /// Closes the open block and writes <c>message_delta</c> with the usage billed (<paramref name="billed"/>, else the
    /// stream's own); <c>message_stop</c> follows with <see cref="Stop"/>.
    /// </summary>
    public void Finish(IBufferWriter<byte> output, TokenUsage? billed = null)
    {
        Start(output);
        _reader.Flush();
        if (_nextIndex == 0)
        {
            Open(Block.Text, null); // an empty answer is still one (empty) text block
        }

        Close();
        var usage = billed ?? Usage ?? TokenUsage.Zero;
        var (reason, sequence) = _reply.StopReason(_reader.FinishReason, _reader.MatchedStop, _reader.ToolCalls.Count > 0);
        Event("message_delta", json => AnthropicEvents.WriteMessageDelta(json, reason, sequence, usage));
    }

    public void Stop(IBufferWriter<byte> output)
    {
        _output = output;
        Event("message_stop", static _ => { });
    }

    void IChatStreamSink.Reasoning(string text)
    {
        Open(Block.Thinking, null);
        Delta(_openIndex, "thinking_delta", "thinking", text);
    }

    void IChatStreamSink.Text(string text)
    {
        Open(Block.Text, null);
        Delta(_openIndex, "text_delta", "text", text);
    }

    void IChatStreamSink.ToolStarted(StreamedToolCall call) => Open(Block.Tool, call);

    void IChatStreamSink.ToolArguments(StreamedToolCall call, string piece)
    {
        // Arguments of an earlier call after a later one began (no server is known to do this) go to the earlier
        // call's block by its index, which Anthropic clients accumulate by.
        Delta(_toolBlocks[call], "input_json_delta", "partial_json", piece);
    }

    public void Dispose() => _json?.Dispose();

    /// <summary>Makes <paramref name="kind"/> the open block: the same one stays open, another closes the open one first.</summary>
    private void Open(Block kind, StreamedToolCall? tool)
    {
        if (_open == kind && (kind != Block.Tool || ReferenceEquals(_openTool, tool)))
        {
            return;
        }

        Close();
        _open = kind;
        _openTool = tool;
        _openIndex = _nextIndex++;
        if (tool is not null)
        {
            _toolBlocks[tool] = _openIndex;
        }

        var index = _openIndex;
        Event("content_block_start", json =>
        {
            json.WriteNumber("index", index);
            json.WriteStartObject("content_block");
            switch (kind)
            {
                case Block.Thinking:
                    json.WriteString("type", "thinking");
                    json.WriteString("thinking", "");
                    json.WriteString("signature", "");
                    break;
                case Block.Text:
                    json.WriteString("type", "text");
                    json.WriteString("text", "");
                    break;
                default:
                    json.WriteString("type", "tool_use");
                    json.WriteString("id", ChatToAnthropic.ToolUseId(tool!.Id, _reply.MessageId, tool.Ordinal));
                    json.WriteString("name", tool.Name ?? "");
                    json.WriteStartObject("input");
                    json.WriteEndObject();
                    break;
            }

            json.WriteEndObject();
        });
    }

    private void Close()
    {
        if (_open == Block.None)
        {
            return;
        }

        var index = _openIndex;
        if (_open == Block.Thinking)
        {
            // Anthropic clients expect a signature on a thinking block; the market has none to give.
            Delta(index, "signature_delta", "signature", "");
        }

        Event("content_block_stop", json => json.WriteNumber("index", index));
        _open = Block.None;
        _openTool = null;
    }

    private void Delta(int index, string type, string field, string value) =>
        Event("content_block_delta", json =>
        {
            json.WriteNumber("index", index);
            json.WriteStartObject("delta");
            json.WriteString("type", type);
            json.WriteString(field, value);
            json.WriteEndObject();
        });

    /// <summary>One event: <c>event: NAME</c>, then <c>data: {"type":NAME,...}</c>, then a blank line.</summary>
    private void Event(string name, Action<Utf8JsonWriter> body)
    {
        var output = _output;
        output.Write("event: "u8);
        Encoding.UTF8.GetBytes(name, output);
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
        _json.WriteString("type", name);
        body(_json);
        _json.WriteEndObject();
        _json.Flush();
        output.Write("\n\n"u8);
    }
}
