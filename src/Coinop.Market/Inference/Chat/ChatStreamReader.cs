using System.Text;
using System.Text.Json;
using Coinop.Core.Protocol;

namespace Coinop.Market.Inference.Chat;

/// <summary>
/// A tool call as a chat stream builds it up: the backend's index and id, then the name, then argument pieces (handed on
/// as they come; only those before the name are held, so a call's arguments cost no memory for the length of a stream).
/// </summary>
public sealed class StreamedToolCall(int backendIndex, int ordinal)
{
    /// <summary>The <c>index</c> the backend gave its deltas.</summary>
    public int BackendIndex { get; } = backendIndex;

    /// <summary>0 for the first call of the answer, 1 for the next, ...</summary>
    public int Ordinal { get; } = ordinal;

    public string? Id { get; internal set; }

    public string? Name { get; internal set; }

    /// <summary>True once the sink was told it started (which needs its name).</summary>
    public bool Started { get; internal set; }

    internal StringBuilder Pending { get; } = new();
}

/// <summary>What a chat stream says, in order, to whatever rewrites it.</summary>
public interface IChatStreamSink
{
    void Reasoning(string text);

    void Text(string text);

    /// <summary>A tool call begins; its id and name are known (the id may still be null: the backend gave none).</summary>
    void ToolStarted(StreamedToolCall call);

    /// <summary>More arguments of a started call (the pieces before its start come right after <see cref="ToolStarted"/>).</summary>
    void ToolArguments(StreamedToolCall call, string piece);
}

/// <summary>
/// Reads OpenAI chat stream chunks (sans-IO: parsed chunks in, sink calls out) and keeps what the end needs: finish
/// reason, the stop string hit, usage, and every tool call. Tool-call deltas are matched by <c>index</c> (or by id, for
/// servers that send none); a call starts once its name is known, and arguments that came before are handed over then.
/// </summary>
public sealed class ChatStreamReader(IChatStreamSink sink)
{
    /// <summary>
    /// The most tool calls one answer may make (parallel calls run to a few dozen): each becomes a block or item the
    /// translation keeps, so a stream of endless new indices is a provider failure, not work and memory without end.
    /// </summary>
    public const int MaxToolCalls = 256;

    /// <summary>The most argument text held for a call whose name has not come yet (backends send the name first).</summary>
    public const int MaxPendingArguments = 1024 * 1024;

    private readonly List<StreamedToolCall> _calls = [];
    private readonly Dictionary<int, StreamedToolCall> _byIndex = [];

    public string? FinishReason { get; private set; }

    public string? MatchedStop { get; private set; }

    public TokenUsage? Usage { get; private set; }

    public IReadOnlyList<StreamedToolCall> ToolCalls => _calls;

    /// <summary>Takes one chunk; returns how many pieces of generated output it carried (for partial billing).</summary>
    public int OnChunk(JsonElement chunk)
    {
        if (chunk.ValueKind != JsonValueKind.Object)
        {
            throw new ProviderOutputException("an OpenAI stream chunk is not an object");
        }

        if (chunk.TryGetProperty("error", out var error) && error.ValueKind != JsonValueKind.Null)
        {
            throw ProviderOutputException.BackendError(error.GetRawText());
        }

        var generated = 0;
        if (chunk.TryGetProperty("choices", out var choices) && choices.ValueKind == JsonValueKind.Array && choices.GetArrayLength() > 0
            && choices[0] is { ValueKind: JsonValueKind.Object } choice)
        {
            var delta = ChatJson.Object(choice, "delta");
            if (ChatJson.Reasoning(delta) is { Length: > 0 } thinking)
            {
                sink.Reasoning(thinking);
                generated++;
            }

            if (ChatJson.String(delta, "content") is { Length: > 0 } text)
            {
                sink.Text(text);
                generated++;
            }

            if (delta.ValueKind == JsonValueKind.Object && delta.TryGetProperty("tool_calls", out var calls) && calls.ValueKind == JsonValueKind.Array)
            {
                foreach (var call in calls.EnumerateArray())
                {
                    generated += OnToolCall(call);
                }
            }

            if (ChatJson.String(choice, "finish_reason") is { } finish)
            {
                FinishReason = finish;
            }

            if (ChatJson.String(choice, "stop_reason") is { } stop)
            {
                MatchedStop = stop;
            }
        }

        if (chunk.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object)
        {
            Usage = UsageScanner.FromOpenAiUsage(chunk);
        }

        return generated;
    }

    /// <summary>Starts the calls whose name never came (their arguments are not lost); call before writing the end.</summary>
    public void Flush()
    {
        foreach (var call in _calls)
        {
            if (!call.Started)
            {
                call.Name ??= "";
                Start(call);
            }
        }
    }

    private int OnToolCall(JsonElement delta)
    {
        if (delta.ValueKind != JsonValueKind.Object)
        {
            return 0;
        }

        var id = ChatJson.String(delta, "id");
        var call = Find(delta, id);
        if (id is { Length: > 0 } && call.Id is null)
        {
            call.Id = id;
        }

        var function = ChatJson.Object(delta, "function");
        if (ChatJson.String(function, "name") is { Length: > 0 } name && call.Name is null)
        {
            call.Name = name;
        }

        var piece = ChatJson.Arguments(function);
        if (!call.Started)
        {
            call.Pending.Append(piece);
            if (call.Pending.Length > MaxPendingArguments)
            {
                throw new ProviderOutputException("a tool call's arguments run on without its name");
            }

            if (call.Name is null)
            {
                return 0; // the start needs the name: wait for it
            }

            Start(call);
            return 1;
        }

        if (piece.Length == 0)
        {
            return 0;
        }

        sink.ToolArguments(call, piece);
        return 1;
    }

    private void Start(StreamedToolCall call)
    {
        call.Started = true;
        sink.ToolStarted(call);
        if (call.Pending.Length > 0)
        {
            var pending = call.Pending.ToString();
            call.Pending.Clear();
            sink.ToolArguments(call, pending);
        }
    }

    /// <summary>The call a delta belongs to: by its index, else by its id, else a new one when it has an id, else the last.</summary>
    private StreamedToolCall Find(JsonElement delta, string? id)
    {
        if (delta.TryGetProperty("index", out var i) && i.ValueKind == JsonValueKind.Number && i.TryGetInt32(out var index))
        {
            return _byIndex.TryGetValue(index, out var known) ? known : Add(index);
        }

        if (id is { Length: > 0 })
        {
            foreach (var known in _calls)
            {
                if (known.Id == id)
                {
                    return known;
                }
            }

            return Add(_calls.Count);
        }

        return _calls.Count > 0 ? _calls[^1] : Add(0);
    }

    private StreamedToolCall Add(int backendIndex)
    {
        if (_calls.Count == MaxToolCalls)
        {
            throw new ProviderOutputException($"the stream makes more than {MaxToolCalls} tool calls");
        }

        var call = new StreamedToolCall(backendIndex, _calls.Count);
        _calls.Add(call);
        // The first call under an index keeps it (a call found by id, or the last, may carry another's index).
        _byIndex.TryAdd(backendIndex, call);
        return call;
    }
}
