using Coinop.Core.Protocol;
using Coinop.Market.Inference.Anthropic;

namespace Coinop.Market.Inference;

/// <summary>An OpenAI chat stream rewritten as an Anthropic message stream by <see cref="AnthropicStreamTranslator"/>.</summary>
public sealed class AnthropicFromOpenAiSseRelay(ConsumerOutput output, AnthropicReply reply) : SseRelay(output)
{
    private readonly AnthropicStreamTranslator _translator = new(reply);
    private readonly ChunkParser _parser = new();
    private TokenUsage? _billed;

    protected override void OnEvent(ReadOnlySpan<byte> sseEvent)
    {
        var data = DataOf(sseEvent);
        if (data.IsEmpty || data.SequenceEqual("[DONE]"u8))
        {
            return;
        }

        using var chunk = _parser.Parse(data);
        OutputTokens += _translator.OnChunk(chunk.RootElement, Writer);
        Usage = _translator.Usage;
    }

    public override ValueTask FinishingAsync(TokenUsage usage, CancellationToken cancellationToken)
    {
        _billed = usage;
        return ValueTask.CompletedTask;
    }

    public override void Finish(BillingSettlement settlement)
    {
        _translator.Finish(Writer, _billed);
        WriteTrailer(settlement);

        _translator.Stop(Writer);
    }

    public override void WriteError(ApiError error) => AnthropicEvents.WriteError(Writer, error);

    protected override void Dispose(bool disposing)
    {
        _translator.Dispose();
        _parser.Dispose();
        base.Dispose(disposing);
    }
}
