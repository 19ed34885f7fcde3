using System.Buffers;
using System.Text.Json;
using Coinop.Core.Protocol;

namespace Coinop.Market.Inference;

/// <summary>An Anthropic stream from a native backend: relayed as it is, usage read on the way, <c>message_stop</c> held for the trailer.</summary>
public sealed class AnthropicSseRelay(ConsumerOutput output) : SseRelay(output)
{
    private long _input;
    private long _output;

    protected override void OnEvent(ReadOnlySpan<byte> sseEvent)
    {
        var name = NameOf(sseEvent);
        if (name.SequenceEqual("message_stop"u8))
        {
            return;
        }

        if (name.SequenceEqual("message_start"u8) || name.SequenceEqual("message_delta"u8))
        {
            ReadUsage(DataOf(sseEvent));
        }
        else if (name.SequenceEqual("content_block_delta"u8) && CarriesText(DataOf(sseEvent)))
        {
            OutputTokens++;
        }

        Writer.Write(sseEvent);
    }

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
