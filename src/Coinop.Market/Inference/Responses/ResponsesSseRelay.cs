using Coinop.Core.Protocol;

namespace Coinop.Market.Inference.Responses;

/// <summary>An OpenAI chat stream rewritten as the Responses event sequence by <see cref="ResponsesStreamTranslator"/>, stored when complete.</summary>
public sealed class ResponsesSseRelay(ConsumerOutput output, ResponsesTurn turn, ResponseDraft draft) : SseRelay(output)
{
    private readonly ResponsesStreamTranslator _translator = new(draft);
    private readonly ChunkParser _parser = new();

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

    /// <summary>The backend is done: every item is closed (their <c>.done</c> events go out with the end).</summary>
    public override bool Complete()
    {
        if (!base.Complete())
        {
            return false;
        }

        _translator.Finish(Writer);
        return true;
    }

    public override async ValueTask FinishingAsync(TokenUsage usage, CancellationToken cancellationToken)
    {
        draft.Complete(_translator.FinishReason, usage);
        await turn.SaveAsync(draft, cancellationToken);
    }

    public override void Finish(BillingSettlement settlement)
    {
        WriteTrailer(settlement);

        _translator.WriteEnd(Writer);
    }

    public override void WriteError(ApiError error) => _translator.WriteError(Writer, error);

    protected override void Dispose(bool disposing)
    {
        _translator.Dispose();
        _parser.Dispose();
        base.Dispose(disposing);
    }
}
