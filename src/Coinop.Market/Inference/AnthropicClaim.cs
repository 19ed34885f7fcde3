using System.Buffers;
using System.Text.Json;
using Coinop.Core.Protocol;

namespace Coinop.Market.Inference;

/// <summary>The kinds of Anthropic stream events, by the <c>type</c> in their data (what clients act on).</summary>
public enum AnthropicEventType : byte
{
    /// <summary>No <c>type</c> string: nothing a client acts on.</summary>
    None,

    /// <summary>A type no Anthropic client acts on.</summary>
    Other,

    /// <summary>Two <c>type</c> keys: clients differ on which counts, so the event is unusable.</summary>
    Conflicting,
    MessageStart,
    ContentBlockStart,
    ContentBlockDelta,
    ContentBlockStop,
    MessageDelta,
    MessageStop,
    Ping,
    Error,
}

/// <summary>
/// What a native Anthropic answer or stream event claims besides its output: its <c>type</c> (an <c>error</c> is a provider
/// failure), its <c>usage</c> (the provider's figures, read for billing and never shown as they are) and a
/// <c>message_delta</c>'s stop. Keys are read as clients read them: escapes decoded (<c>"\u0075sage"</c> is <c>usage</c>),
/// the last of duplicate keys winning.
/// </summary>
public static class AnthropicClaim
{
    private static readonly JsonReaderOptions Options = new() { MaxDepth = 256 };

    /// <summary>A usage object's figures, each when it is an integer.</summary>
    public readonly record struct Figures(long? Input, long? Output)
    {
        /// <summary>The provider's claim, when it made one (a figure it left out or spelled as no integer counts as 0).</summary>
        public TokenUsage? Usage => Input is null && Output is null ? null : new TokenUsage(Input ?? 0, Output ?? 0);
    }

    /// <summary>The facts of one answer or event (well formed: the relay checked it).</summary>
    /// <param name="Usage">The top-level <c>usage</c>'s figures (what a whole answer or a <c>message_delta</c> claims).</param>
    /// <param name="MessageUsage">The figures of the <c>usage</c> inside a top-level <c>message</c> (what a <c>message_start</c> claims).</param>
    /// <param name="Error">The raw JSON of a non-null top-level <c>error</c>, or of the whole document when its type is <c>error</c>.</param>
    /// <param name="HasMessage">A top-level <c>message</c> object (what a <c>message_start</c> carries).</param>
    /// <param name="StopReason">A <c>message_delta</c>'s <c>delta.stop_reason</c>, when a string.</param>
    /// <param name="StopSequence">Its <c>delta.stop_sequence</c>, when a string.</param>
    public readonly record struct Facts(
        AnthropicEventType Type, Figures Usage, Figures MessageUsage, string? Error, bool HasMessage, string? StopReason, string? StopSequence);

    /// <summary>Reads the top level of <paramref name="json"/>, and the <c>usage</c> of its <c>message</c>.</summary>
    public static Facts Read(ReadOnlySpan<byte> json)
    {
        var type = AnthropicEventType.None;
        var types = 0;
        long? input = null, output = null, messageInput = null, messageOutput = null;
        string? error = null, stopReason = null, stopSequence = null;
        var hasMessage = false;
        var reader = new Utf8JsonReader(json, Options);
        reader.Read();
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("type"u8))
            {
                reader.Read();
                types++;
                type = reader.TokenType == JsonTokenType.String ? TypeOf(ref reader) : AnthropicEventType.None;
            }
            else if (reader.ValueTextEquals("usage"u8))
            {
                reader.Read();
                (input, output) = (null, null); // the last of duplicate keys is the one clients keep
                if (reader.TokenType == JsonTokenType.StartObject)
                {
                    ReadUsage(ref reader, ref input, ref output);
                }
                else
                {
                    reader.Skip();
                }
            }
            else if (reader.ValueTextEquals("message"u8))
            {
                reader.Read();
                hasMessage = reader.TokenType == JsonTokenType.StartObject;
                (messageInput, messageOutput) = (null, null);
                if (!hasMessage)
                {
                    reader.Skip();
                    continue;
                }

                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    var usage = reader.ValueTextEquals("usage"u8);
                    reader.Read();
                    if (usage)
                    {
                        (messageInput, messageOutput) = (null, null);
                    }

                    if (usage && reader.TokenType == JsonTokenType.StartObject)
                    {
                        ReadUsage(ref reader, ref messageInput, ref messageOutput);
                    }
                    else
                    {
                        reader.Skip();
                    }
                }
            }
            else if (reader.ValueTextEquals("delta"u8))
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartObject)
                {
                    reader.Skip();
                    continue;
                }

                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    var reason = reader.ValueTextEquals("stop_reason"u8);
                    var sequence = !reason && reader.ValueTextEquals("stop_sequence"u8);
                    reader.Read();
                    if ((reason || sequence) && reader.TokenType is JsonTokenType.String or JsonTokenType.Null)
                    {
                        var value = reader.GetString(); // valid Unicode: the relay checked every string
                        if (reason)
                        {
                            stopReason = value;
                        }
                        else
                        {
                            stopSequence = value;
                        }
                    }
                    else
                    {
                        reader.Skip();
                    }
                }
            }
            else if (reader.ValueTextEquals("error"u8))
            {
                reader.Read();
                var start = (int)reader.TokenStartIndex;
                reader.Skip();
                error = reader.TokenType == JsonTokenType.Null ? null : System.Text.Encoding.UTF8.GetString(json[start..(int)reader.BytesConsumed]);
            }
            else
            {
                reader.Read();
                reader.Skip();
            }
        }

        if (types > 1)
        {
            type = AnthropicEventType.Conflicting;
        }

        if (type == AnthropicEventType.Error && error is null)
        {
            error = System.Text.Encoding.UTF8.GetString(json);
        }

        return new Facts(type, new Figures(input, output), new Figures(messageInput, messageOutput), error, hasMessage, stopReason, stopSequence);
    }

    /// <summary>The event name a client knows <paramref name="type"/> by (empty for none).</summary>
    public static ReadOnlySpan<byte> NameOf(AnthropicEventType type) => type switch
    {
        AnthropicEventType.MessageStart => "message_start"u8,
        AnthropicEventType.ContentBlockStart => "content_block_start"u8,
        AnthropicEventType.ContentBlockDelta => "content_block_delta"u8,
        AnthropicEventType.ContentBlockStop => "content_block_stop"u8,
        AnthropicEventType.MessageDelta => "message_delta"u8,
        AnthropicEventType.MessageStop => "message_stop"u8,
        AnthropicEventType.Ping => "ping"u8,
        AnthropicEventType.Error => "error"u8,
        _ => default,
    };

    /// <summary>The type an event name names (<see cref="AnthropicEventType.Other"/> for a name no client acts on).</summary>
    public static AnthropicEventType Named(ReadOnlySpan<byte> name)
    {
        for (var type = AnthropicEventType.MessageStart; type <= AnthropicEventType.Error; type++)
        {
            if (name.SequenceEqual(NameOf(type)))
            {
                return type;
            }
        }

        return AnthropicEventType.Other;
    }

    /// <summary>
    /// Writes <paramref name="json"/> with every top-level <c>usage</c> value replaced by <paramref name="usage"/> (the
    /// market's), and, when <paramref name="inMessage"/>, every <c>usage</c> of the top-level <c>message</c> too. The object
    /// a client reads usage from (<c>message</c>, or the top level) gets one if it had none. All else goes out byte for byte.
    /// </summary>
    public static void Rewrite(IBufferWriter<byte> output, ReadOnlySpan<byte> json, ReadOnlySpan<byte> usage, bool inMessage)
    {
        var reader = new Utf8JsonReader(json, Options);
        reader.Read();
        var copied = RewriteObject(output, json, ref reader, usage, 0, inMessage);
        output.Write(json[copied..]);
    }

    /// <summary>
    /// Replaces the usage values of the object the reader is at the start of (and, when <paramref name="inMessage"/>, of
    /// its <c>message</c> object instead of adding one here); returns how far the input is copied.
    /// </summary>
    private static int RewriteObject(IBufferWriter<byte> output, ReadOnlySpan<byte> json, ref Utf8JsonReader reader, ReadOnlySpan<byte> usage, int copied, bool inMessage)
    {
        var replaced = false;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var isUsage = reader.ValueTextEquals("usage"u8);
            var isMessage = inMessage && !isUsage && reader.ValueTextEquals("message"u8);
            reader.Read();
            if (isMessage && reader.TokenType == JsonTokenType.StartObject)
            {
                copied = RewriteObject(output, json, ref reader, usage, copied, inMessage: false);
                continue;
            }

            var start = (int)reader.TokenStartIndex;
            reader.Skip();
            if (isUsage)
            {
                output.Write(json[copied..start]);
                output.Write(usage);
                copied = (int)reader.BytesConsumed;
                replaced = true;
            }
        }

        // The object a client reads usage from gets one if it had none: the message's, when there is a message to read.
        return replaced || inMessage ? copied : AddUsage(output, json, (int)reader.TokenStartIndex, copied, usage);
    }

    /// <summary>The usage an Anthropic client is shown: <paramref name="usage"/>'s figures, no cache reads or writes.</summary>
    public static void WriteUsage(IBufferWriter<byte> output, TokenUsage usage)
    {
        using var json = new Utf8JsonWriter(output);
        json.WriteStartObject();
        json.WriteNumber("input_tokens", usage.InputTokens);
        json.WriteNumber("cache_creation_input_tokens", 0);
        json.WriteNumber("cache_read_input_tokens", 0);
        json.WriteNumber("output_tokens", usage.OutputTokens);
        json.WriteEndObject();
    }

    /// <summary>Writes a <c>usage</c> member before the closing brace at <paramref name="end"/>.</summary>
    private static int AddUsage(IBufferWriter<byte> output, ReadOnlySpan<byte> json, int end, int copied, ReadOnlySpan<byte> usage)
    {
        output.Write(json[copied..end]);
        var empty = json[..end].TrimEnd(" \t\r\n"u8) is [.., (byte)'{'];
        output.Write(empty ? "\"usage\":"u8 : ",\"usage\":"u8);
        output.Write(usage);
        return end;
    }

    private static AnthropicEventType TypeOf(ref Utf8JsonReader reader) =>
        reader.ValueTextEquals("content_block_delta"u8) ? AnthropicEventType.ContentBlockDelta
        : reader.ValueTextEquals("content_block_start"u8) ? AnthropicEventType.ContentBlockStart
        : reader.ValueTextEquals("content_block_stop"u8) ? AnthropicEventType.ContentBlockStop
        : reader.ValueTextEquals("message_start"u8) ? AnthropicEventType.MessageStart
        : reader.ValueTextEquals("message_delta"u8) ? AnthropicEventType.MessageDelta
        : reader.ValueTextEquals("message_stop"u8) ? AnthropicEventType.MessageStop
        : reader.ValueTextEquals("ping"u8) ? AnthropicEventType.Ping
        : reader.ValueTextEquals("error"u8) ? AnthropicEventType.Error
        : AnthropicEventType.Other;

    private static void ReadUsage(ref Utf8JsonReader reader, ref long? input, ref long? output)
    {
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var isInput = reader.ValueTextEquals("input_tokens"u8);
            var isOutput = !isInput && reader.ValueTextEquals("output_tokens"u8);
            reader.Read();
            if (isInput || isOutput)
            {
                long? figure = reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var n) ? n : null;
                if (isInput)
                {
                    input = figure;
                }
                else
                {
                    output = figure;
                }
            }

            reader.Skip();
        }
    }
}
