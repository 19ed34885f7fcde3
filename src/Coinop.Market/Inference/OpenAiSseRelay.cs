using System.Buffers;

namespace Coinop.Market.Inference;

/// <summary>
/// An OpenAI stream, relayed event by event (each as its one data line, whatever else the backend framed it with). The
/// market always asks the backend for the usage chunk; it reads usage from it and strips it again when the consumer did
/// not ask. The backend's <c>[DONE]</c> is dropped and the market's own ends the stream, after billing's trailer.
/// </summary>
public sealed class OpenAiSseRelay(ConsumerOutput output, bool consumerWantsUsage) : SseRelay(output)
{
    protected override void OnEvent(ReadOnlySpan<byte> sseEvent)
    {
        var data = DataOf(sseEvent);
        if (data.IsEmpty || data.SequenceEqual("[DONE]"u8))
        {
            // Comments and data-less fields carry nothing a chat client reads; the market writes the one [DONE] itself.
            return;
        }

        if (Coinop.Core.Inference.UsageProbe.MayHoldUsage(data) && UsageScanner.TryRead(data, anthropic: false, out var usage, out var emptyChoices))
        {
            Usage = usage;
            if (!consumerWantsUsage && emptyChoices)
            {
                return;
            }
        }

        if (CarriesText(data))
        {
            OutputTokens++;
        }

        WriteData(data);
    }

    public override void Finish(BillingSettlement settlement)
    {
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
