using System.Buffers;
using System.Text.Json;
using Coinop.Core.Protocol;
using Coinop.Market.Inference.Chat;

namespace Coinop.Market.Inference.Responses;

/// <summary>A whole chat completion as a Responses response, stored when complete.</summary>
public sealed class ResponsesAnswer(ResponsesTurn turn, ResponseDraft draft) : IAnswerTranslator
{
    private ChatAnswer? _answer;

    public bool TryTranslate(ReadOnlySpan<byte> chatCompletion, Utf8JsonWriter json, out TokenUsage usage)
    {
        usage = TokenUsage.Zero;
        if (!ChatAnswer.TryParse(chatCompletion, out var answer))
        {
            return false;
        }

        _answer = answer;
        usage = answer.Usage;
        draft.Fill(answer);
        draft.WriteResponse(json);
        return true;
    }

    public async ValueTask<ReadOnlyMemory<byte>?> FinishingAsync(TokenUsage usage, CancellationToken cancellationToken)
    {
        draft.Complete(_answer?.FinishReason, usage);
        await turn.SaveAsync(draft, cancellationToken);
        var body = new ArrayBufferWriter<byte>(1024);
        using (var json = new Utf8JsonWriter(body, TranslationJson.Options))
        {
            draft.WriteResponse(json);
        }

        return body.WrittenMemory;
    }
}
