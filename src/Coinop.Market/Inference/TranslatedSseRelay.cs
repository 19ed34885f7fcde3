using System.Text.Json;

namespace Coinop.Market.Inference;

/// <summary>An OpenAI chat stream rewritten chunk by chunk as another API's events; each chunk's JSON is parsed once.</summary>
public abstract class TranslatedSseRelay(ConsumerOutput output) : SseRelay(output)
{
    private readonly ChunkParser _parser = new();

    protected sealed override void OnEvent(ReadOnlySpan<byte> sseEvent)
    {
        var data = DataOf(sseEvent);
        if (data.IsEmpty || data.SequenceEqual("[DONE]"u8))
        {
            return;
        }

        using var chunk = _parser.Parse(data);
        OnChunk(chunk.RootElement);
    }

    /// <summary>One chat chunk: write its translation, count the output tokens and take the usage it carries.</summary>
    protected abstract void OnChunk(JsonElement chunk);

    protected override void Dispose(bool disposing)
    {
        _parser.Dispose();
        base.Dispose(disposing);
    }
}
