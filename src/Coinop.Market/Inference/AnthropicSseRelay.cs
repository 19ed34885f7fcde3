using System.Buffers;
using Coinop.Core.Protocol;

namespace Coinop.Market.Inference;

/// <summary>
/// An Anthropic stream from a native backend, relayed event by event, each under the name of its data's <c>type</c> (what
/// clients act on; a name that differs is a provider failure). Content events go out as they came. The provider's usage is
/// read for billing but never shown: <c>message_start</c> goes out with a usage of zeros and the provider's
/// <c>message_delta</c> is held, the market writing its own at the end with the stop it gave and the usage billed. An
/// <c>error</c> event is a provider failure (<see cref="ProviderOutputException.BackendError"/>), never relayed. Pings go out
/// as the market's own, <c>message_stop</c> is the market's to write, last, and events no client acts on are dropped; text
/// in what does not reach the consumer as it came is not counted.
/// </summary>
public sealed class AnthropicSseRelay(ConsumerOutput output) : SseRelay(output)
{
    private static ReadOnlySpan<byte> NoUsage => "{\"input_tokens\":0,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":0}"u8;

    private long? _input;
    private long? _output;
    private string? _stopReason;
    private string? _stopSequence;
    private TokenUsage? _billed;
    private ArrayBufferWriter<byte>? _edited;

    protected override void OnEvent(ReadOnlySpan<byte> sseEvent)
    {
        var name = NameOf(sseEvent);
        var data = DataOf(sseEvent);
        if (data.IsEmpty)
        {
            return; // an event without data is nothing an Anthropic client reads
        }

        if (!IsEventName(name))
        {
            throw new ProviderOutputException("an Anthropic stream event's name is not a name");
        }

        var facts = AnthropicClaim.Read(data);
        var type = facts.Type;
        if (type == AnthropicEventType.Conflicting)
        {
            throw new ProviderOutputException("an Anthropic stream event has two types");
        }

        // Clients pick what to parse by the name and act on the type: the two must agree. A nameless event is known by its type.
        if (!name.IsEmpty && AnthropicClaim.Named(name) is var named && (named != AnthropicEventType.Other || type is not (AnthropicEventType.Other or AnthropicEventType.None)) && named != type)
        {
            throw new ProviderOutputException("an Anthropic stream event's name is not its type");
        }

        switch (type)
        {
            case AnthropicEventType.Error:
                throw ProviderOutputException.BackendError(facts.Error!);

            case AnthropicEventType.MessageStart:
                if (!facts.HasMessage)
                {
                    throw new ProviderOutputException("an Anthropic message_start carries no message");
                }

                Claim(facts.MessageUsage, start: true);
                var edited = _edited ??= new ArrayBufferWriter<byte>(data.Length + 64);
                edited.ResetWrittenCount();
                AnthropicClaim.Rewrite(edited, data, NoUsage, inMessage: true);
                Recount(data, edited.WrittenSpan, streamEvent: true);
                Relay(type, edited.WrittenSpan);
                return;

            case AnthropicEventType.MessageDelta:
                // Held: the market's own goes out at the end, with the usage billed.
                Claim(facts.Usage, start: false);
                _stopReason = facts.StopReason ?? _stopReason;
                _stopSequence = facts.StopSequence ?? _stopSequence;
                Recount(data, default, streamEvent: true);
                return;

            case AnthropicEventType.ContentBlockStart or AnthropicEventType.ContentBlockDelta or AnthropicEventType.ContentBlockStop:
                Relay(type, data);
                return;

            case AnthropicEventType.Ping:
                Recount(data, default, streamEvent: true);
                Writer.Write("event: ping\ndata: {\"type\":\"ping\"}\n\n"u8);
                return;

            default:
                // message_stop (the market's to write, last), and what no client acts on.
                Recount(data, default, streamEvent: true);
                return;
        }
    }

    /// <summary>Event names are short words (<c>content_block_delta</c>): printable ASCII, so the line cannot be split or mangled.</summary>
    private static bool IsEventName(ReadOnlySpan<byte> name) => name.Length <= 64 && !name.ContainsAnyExceptInRange((byte)0x21, (byte)0x7e);

    private void Relay(AnthropicEventType type, ReadOnlySpan<byte> data)
    {
        if (CarriesText(data))
        {
            OutputTokens++; // a content block's start shows its text as much as a delta does
        }

        var writer = Writer;
        writer.Write("event: "u8);
        writer.Write(AnthropicClaim.NameOf(type));
        writer.Write("\n"u8);
        WriteData(data);
    }

    /// <summary>The provider's claim: input from <c>message_start</c> (or a later <c>message_delta</c> that gives it), output from the last that gives it.</summary>
    private void Claim(AnthropicClaim.Figures figures, bool start)
    {
        if (figures.Input is { } i && (start || i > 0))
        {
            _input = i;
        }

        if (figures.Output is { } o)
        {
            _output = o;
        }

        if (_input is not null || _output is not null)
        {
            Usage = new TokenUsage(_input ?? 0, _output ?? 0);
        }
    }

    public override ValueTask FinishingAsync(TokenUsage usage, CancellationToken cancellationToken)
    {
        _billed = usage;
        return ValueTask.CompletedTask;
    }

    public override void Finish(BillingSettlement settlement)
    {
        var billed = _billed ?? TokenUsage.Zero;
        AnthropicEvents.Write(Writer, "message_delta", json => AnthropicEvents.WriteMessageDelta(json, _stopReason, _stopSequence, billed));
        WriteTrailer(settlement);
        Writer.Write("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"u8);
    }

    public override void WriteError(ApiError error) => AnthropicEvents.WriteError(Writer, error);
}
