using System.Text.Json;
using Coinop.Core.Protocol;
using Coinop.Market.Inference.Anthropic;

namespace Coinop.Market.Inference;

/// <summary>An OpenAI chat stream rewritten as an Anthropic message stream by <see cref="AnthropicStreamTranslator"/>.</summary>
public sealed class AnthropicFromOpenAiSseRelay(ConsumerOutput output, AnthropicReply reply) : TranslatedSseRelay(output)
{
    private readonly AnthropicStreamTranslator _translator = new(reply);
    private TokenUsage? _billed;

    protected override void OnChunk(JsonElement chunk)
    {
        OutputTokens += _translator.OnChunk(chunk, Writer);
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
        base.Dispose(disposing);
    }
}
