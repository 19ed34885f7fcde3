using System.Buffers;
using System.IO.Pipelines;
using System.Text;

namespace Coinop.Market.Inference;

/// <summary>
/// A server-sent-events stream cut into whole events (a blank line ends one) however the bytes arrived, so
/// each relay edits whole events. A partial event waits in a small pooled buffer, bounded by a maximum size.
/// </summary>
public abstract class SseRelay(ConsumerOutput output) : ResponseRelay(output)
{
    public const string ContentType = "text/event-stream; charset=utf-8";
    private const int MaxEventBytes = 1024 * 1024;
    private byte[] _pending = [];
    private int _pendingLength;

    protected PipeWriter Writer => Output.Begin(ContentType);

    public override void Accept(ReadOnlySpan<byte> bytes)
    {
        if (_pendingLength == 0)
        {
            var used = Split(bytes);
            Keep(bytes[used..]);
            return;
        }

        Keep(bytes);
        var consumed = Split(_pending.AsSpan(0, _pendingLength));
        _pending.AsSpan(consumed, _pendingLength - consumed).CopyTo(_pending);
        _pendingLength -= consumed;
    }

    /// <summary>A last event the backend did not end with a blank line still counts.</summary>
    public override bool Complete()
    {
        if (!_pending.AsSpan(0, _pendingLength).Trim(" \t\r\n"u8).IsEmpty)
        {
            Accept("\n\n"u8);
        }

        return true;
    }

    /// <summary>One whole event, with its terminating blank line.</summary>
    protected abstract void OnEvent(ReadOnlySpan<byte> sseEvent);

    /// <summary>The value of the event's first <c>data:</c> line (empty when there is none).</summary>
    protected static ReadOnlySpan<byte> DataOf(ReadOnlySpan<byte> sseEvent) => Field(sseEvent, "data:"u8);

    /// <summary>The value of the event's <c>event:</c> line (empty when there is none).</summary>
    protected static ReadOnlySpan<byte> NameOf(ReadOnlySpan<byte> sseEvent) => Field(sseEvent, "event:"u8);

    /// <summary>True when a stream event's JSON carries generated text: a non-empty <c>content</c> or <c>text</c> string (a byte scan, not a parse).</summary>
    protected static bool CarriesText(ReadOnlySpan<byte> json) => HasNonEmptyString(json, "\"content\""u8) || HasNonEmptyString(json, "\"text\""u8);

    /// <summary>Billing's trailer (the change, as an SSE comment), if it has one.</summary>
    protected void WriteTrailer(BillingSettlement settlement)
    {
        if (settlement.StreamTrailer is { } trailer)
        {
            WriteComment(trailer);
        }
    }

    private void WriteComment(string text)
    {
        var writer = Writer;
        writer.Write(": "u8);
        writer.Write(Encoding.UTF8.GetBytes(text.ReplaceLineEndings(" ")));
        writer.Write("\n\n"u8);
    }

    private int Split(ReadOnlySpan<byte> data)
    {
        int start = 0, scan = 0;
        while (true)
        {
            var nl = data[scan..].IndexOf((byte)'\n');
            if (nl < 0)
            {
                return start;
            }

            nl += scan;
            if (nl + 1 < data.Length && data[nl + 1] == '\n')
            {
                Event(data[start..(nl + 2)]);
                start = scan = nl + 2;
            }
            else if (nl + 2 < data.Length && data[nl + 1] == '\r' && data[nl + 2] == '\n')
            {
                Event(data[start..(nl + 3)]);
                start = scan = nl + 3;
            }
            else if (nl + 1 >= data.Length || (data[nl + 1] == '\r' && nl + 2 >= data.Length))
            {
                return start; // cannot tell yet whether the event ends here
            }
            else
            {
                scan = nl + 1;
            }
        }
    }

    /// <summary>
    /// Every event is metered and checked here, whatever the relay then does with it: its data is <c>[DONE]</c> or one JSON
    /// object of valid Unicode on one line (a CR inside would end the line for the consumer's parser), else the provider's
    /// output is unusable. Relays write only the fields they read, so nothing else of the provider's framing reaches the consumer.
    /// </summary>
    private void Event(ReadOnlySpan<byte> sseEvent)
    {
        var data = DataOf(sseEvent);
        if (!data.IsEmpty && !data.SequenceEqual("[DONE]"u8) && (!CountGenerated(data, streamEvent: true) || data.Contains((byte)'\r')))
        {
            throw new ProviderOutputException("a stream event's data is not one JSON object of valid Unicode");
        }

        OnEvent(sseEvent);
    }

    /// <summary>Writes one event of the consumer's stream: <c>data: DATA</c> and the blank line.</summary>
    protected void WriteData(ReadOnlySpan<byte> data)
    {
        var writer = Writer;
        writer.Write("data: "u8);
        writer.Write(data);
        writer.Write("\n\n"u8);
    }

    private void Keep(ReadOnlySpan<byte> rest)
    {
        if (rest.IsEmpty)
        {
            return;
        }

        var needed = _pendingLength + rest.Length;
        if (needed > MaxEventBytes)
        {
            throw new ProviderOutputException("a stream event exceeds 1 MiB");
        }

        if (needed > _pending.Length)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(needed, 4096));
            _pending.AsSpan(0, _pendingLength).CopyTo(bigger);
            if (_pending.Length > 0)
            {
                ArrayPool<byte>.Shared.Return(_pending);
            }

            _pending = bigger;
        }

        rest.CopyTo(_pending.AsSpan(_pendingLength));
        _pendingLength = needed;
    }

    private static bool HasNonEmptyString(ReadOnlySpan<byte> json, ReadOnlySpan<byte> key)
    {
        while (json.IndexOf(key) is var at && at >= 0)
        {
            json = json[(at + key.Length)..];
            if (json.TrimStart(" \t\r\n"u8) is [(byte)':', .. var value] && value.TrimStart(" \t\r\n"u8) is [(byte)'"', var first, ..] && first != (byte)'"')
            {
                return true;
            }
        }

        return false;
    }

    private static ReadOnlySpan<byte> Field(ReadOnlySpan<byte> sseEvent, ReadOnlySpan<byte> prefix)
    {
        while (!sseEvent.IsEmpty)
        {
            var end = sseEvent.IndexOf((byte)'\n');
            var line = end < 0 ? sseEvent : sseEvent[..end];
            if (line.StartsWith(prefix))
            {
                var value = line[prefix.Length..];
                if (value is [(byte)' ', ..])
                {
                    value = value[1..];
                }

                return value is [.., (byte)'\r'] ? value[..^1] : value;
            }

            if (end < 0)
            {
                break;
            }

            sseEvent = sseEvent[(end + 1)..];
        }

        return default;
    }

    protected override void Dispose(bool disposing)
    {
        if (_pending.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_pending);
            _pending = [];
        }

        base.Dispose(disposing);
    }
}
