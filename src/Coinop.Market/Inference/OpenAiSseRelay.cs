using System.Buffers;
using Coinop.Core.Protocol;

namespace Coinop.Market.Inference;

/// <summary>
/// An OpenAI stream, relayed event by event (each as its one data line, whatever else the backend framed it with). The
/// market always asks the backend for the usage chunk and reads the provider's claim from it, but the consumer sees only
/// the usage billed: the backend's usage chunk is withheld (its text not billed) and, when the consumer asked for usage,
/// the market writes its own after the output; usage riding on a chunk of output goes out as <c>null</c>. An
/// <c>error</c> object in the stream is a provider failure (<see cref="ProviderOutputException.BackendError"/>), never
/// relayed. The backend's <c>[DONE]</c> is dropped and the market's own ends the stream, after billing's trailer.
/// </summary>
public sealed class OpenAiSseRelay(ConsumerOutput output, bool consumerWantsUsage) : SseRelay(output)
{
    private byte[]? _shape; // the backend's usage chunk, else its first chunk: the id and model the market's usage chunk takes
    private TokenUsage? _billed;
    private ArrayBufferWriter<byte>? _edited;

    protected override void OnEvent(ReadOnlySpan<byte> sseEvent)
    {
        var data = DataOf(sseEvent);
        if (data.IsEmpty || data.SequenceEqual("[DONE]"u8))
        {
            // Comments and data-less fields carry nothing a chat client reads; the market writes the one [DONE] itself.
            return;
        }

        if (UsageClaim.MayClaim(data) && UsageClaim.Read(data) is var claim && (claim.Error is not null || claim.HasUsage))
        {
            if (claim.Error is { } error)
            {
                throw ProviderOutputException.BackendError(error);
            }

            if (claim.Usage is { } usage)
            {
                Usage = usage;
            }

            if (claim.NoChoices)
            {
                Recount(data, default, streamEvent: true);
                if (consumerWantsUsage)
                {
                    _shape = data.ToArray();
                }

                return;
            }

            var edited = _edited ??= new ArrayBufferWriter<byte>(data.Length + 16);
            edited.ResetWrittenCount();
            UsageClaim.Replace(edited, data, billed: null);
            Recount(data, edited.WrittenSpan, streamEvent: true);
            Relay(edited.WrittenSpan);
            return;
        }

        Relay(data);
    }

    private void Relay(ReadOnlySpan<byte> data)
    {
        if (consumerWantsUsage && _shape is null)
        {
            _shape = data.ToArray();
        }

        if (CarriesText(data))
        {
            OutputTokens++;
        }

        WriteData(data);
    }

    public override ValueTask FinishingAsync(TokenUsage usage, CancellationToken cancellationToken)
    {
        _billed = usage;
        return ValueTask.CompletedTask;
    }

    public override void Finish(BillingSettlement settlement)
    {
        if (consumerWantsUsage && _billed is { } billed)
        {
            var writer = Writer;
            writer.Write("data: "u8);
            UsageClaim.WriteUsageChunk(writer, _shape, billed);
            writer.Write("\n\n"u8);
        }

        WriteTrailer(settlement);
        Writer.Write("data: [DONE]\n\n"u8);
    }

    public override void WriteError(ApiError error)
    {
        var writer = Writer;
        writer.Write("data: "u8);
        error.WriteJson(writer, ErrorShape.OpenAi);
        writer.Write("\n\n"u8);
    }
}
