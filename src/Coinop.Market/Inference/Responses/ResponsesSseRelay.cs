using System.Text.Json;
using Coinop.Core.Protocol;

namespace Coinop.Market.Inference.Responses;

/// <summary>An OpenAI chat stream rewritten as the Responses event sequence by <see cref="ResponsesStreamTranslator"/>, stored when complete.</summary>
/// <remarks>The draft keeps at most <paramref name="maxKeptChars"/> of text, the bound of a whole answer.</remarks>
public sealed class ResponsesSseRelay(ConsumerOutput output, ResponsesTurn turn, ResponseDraft draft, long maxKeptChars = long.MaxValue) : TranslatedSseRelay(output)
{
    private readonly ResponsesStreamTranslator _translator = new(draft, maxKeptChars);

    protected override void OnChunk(JsonElement chunk)
    {
        OutputTokens += _translator.OnChunk(chunk, Writer);
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
        base.Dispose(disposing);
    }
}
