using System.Buffers;
using System.Text.Json;
using Coinop.Core.Protocol;

namespace Coinop.Market.Inference;

/// <summary>
/// An Anthropic stream from a native backend: relayed event by event (its name and data line), usage read on the way,
/// <c>message_stop</c> held for the trailer.
/// </summary>
public sealed class AnthropicSseRelay(ConsumerOutput output) : SseRelay(output)
{
    private long _input;
    private long _output;

    protected override void OnEvent(ReadOnlySpan<byte> sseEvent)
    {
        var name = NameOf(sseEvent);
        var data = DataOf(sseEvent);
        if (data.IsEmpty || name.SequenceEqual("message_stop"u8))
        {
            // An event without data is nothing an Anthropic client reads; message_stop is the market's to write, last.
            return;
        }

        if (!IsEventName(name))
        {
            throw new ProviderOutputException("an Anthropic stream event's name is not a name");
        }

        if (name.SequenceEqual("message_start"u8) || name.SequenceEqual("message_delta"u8))
        {
            ReadUsage(data);
        }
        else if (name.SequenceEqual("content_block_delta"u8) && CarriesText(data))
        {
            OutputTokens++;
        }

        if (!name.IsEmpty)
        {
            var writer = Writer;
            writer.Write("event: "u8);
            writer.Write(name);
            writer.Write("\n"u8);
        }

        WriteData(data);
    }

    /// <summary>Event names are short words (<c>content_block_delta</c>): printable ASCII, so the line cannot be split or mangled.</summary>
    private static bool IsEventName(ReadOnlySpan<byte> name) => name.Length <= 64 && !name.ContainsAnyExceptInRange((byte)0x21, (byte)0x7e);

    public override void Finish(BillingSettlement settlement)
    {
        WriteTrailer(settlement);
        Writer.Write("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"u8);
    }

    public override void WriteError(ApiError error) => AnthropicEvents.WriteError(Writer, error);

    private void ReadUsage(ReadOnlySpan<byte> data)
    {
        try
        {
            using var document = JsonDocument.Parse(data.ToArray());
            var root = document.RootElement;
            if (root.TryGetProperty("message", out var message) && message.ValueKind == JsonValueKind.Object)
            {
                root = message;
            }

            if (root.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object)
            {
                if (usage.TryGetProperty("input_tokens", out var i) && i.TryGetInt64(out var input) && input > 0)
                {
                    _input = input;
                }

                if (usage.TryGetProperty("output_tokens", out var o) && o.TryGetInt64(out var output))
                {
                    _output = Math.Max(_output, output);
                }

                Usage = new TokenUsage(_input, _output);
            }
        }
        catch (JsonException)
        {
            throw new ProviderOutputException("an Anthropic stream event is not JSON");
        }
        catch (InvalidOperationException)
        {
            throw new ProviderOutputException("an Anthropic stream event has an unexpected shape");
        }
    }
}
