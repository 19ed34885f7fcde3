using System.Buffers;
using System.Text.Json;
using Coinop.Core.Protocol;
using Coinop.Market.Inference.Chat;

namespace Coinop.Market.Inference.Anthropic;

/// <summary>A whole chat completion as an Anthropic message.</summary>
public sealed class AnthropicAnswer(AnthropicReply reply) : IAnswerTranslator
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
        ChatToAnthropic.WriteMessage(answer, reply, json);
        return true;
    }

    public ValueTask<ReadOnlyMemory<byte>?> FinishingAsync(TokenUsage usage, CancellationToken cancellationToken)
    {
        if (_answer is null || _answer.Usage == usage)
        {
            return ValueTask.FromResult<ReadOnlyMemory<byte>?>(null);
        }

        // The backend reported no usage in its answer: the message carries what was billed.
        var body = new ArrayBufferWriter<byte>(1024);
        using (var json = new Utf8JsonWriter(body, TranslationJson.Options))
        {
            ChatToAnthropic.WriteMessage(_answer with { Usage = usage }, reply, json);
        }

        return ValueTask.FromResult<ReadOnlyMemory<byte>?>(body.WrittenMemory);
    }
}
