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
    private bool _skipLineFeed; // the last bytes ended an event with a CR: an LF first in the next is that CRLF's end

    protected PipeWriter Writer => Output.Begin(ContentType);

    public override void Accept(ReadOnlySpan<byte> bytes)
    {
        if (_skipLineFeed)
        {
            _skipLineFeed = false;
            if (bytes is [(byte)'\n', ..])
            {
                bytes = bytes[1..];
            }
        }

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

    /// <summary>
    /// Cuts whole events out of <paramref name="data"/>: lines end with CRLF, LF or CR (the SSE spec allows all three),
    /// and a blank line ends an event. Returns how much was used; the rest waits for more bytes.
    /// </summary>
    private int Split(ReadOnlySpan<byte> data)
    {
        int start = 0, line = 0;
        while (true)
        {
            var end = data[line..].IndexOfAny((byte)'\r', (byte)'\n');
            if (end < 0)
            {
                return start;
            }

            end += line;
            var blank = end == line;
            int next;
            if (data[end] == '\n')
            {
                next = end + 1;
            }
            else if (end + 1 < data.Length)
            {
                next = data[end + 1] == '\n' ? end + 2 : end + 1;
            }
            else if (blank)
            {
                // A CR ends this blank line whatever follows; an LF that follows belongs to it (a CRLF cut in two).
                next = end + 1;
                _skipLineFeed = true;
            }
            else
            {
                return start; // a CR last: the LF of a CRLF may come next, which would not be a blank line of its own
            }

            if (blank)
            {
                Event(data[start..next]);
                start = next;
            }

            line = next;
        }
    }

    /// <summary>
    /// Every event is metered and checked here, whatever the relay then does with it: its data is <c>[DONE]</c> or one JSON
    /// object of valid Unicode (on its one line: a CR or LF ends it), else the provider's output is unusable. Relays write
    /// only the fields they read, each line ended by LF, so nothing else of the provider's framing reaches the consumer.
    /// </summary>
    private void Event(ReadOnlySpan<byte> sseEvent)
    {
        var data = DataOf(sseEvent);
        if (!data.IsEmpty && !data.SequenceEqual("[DONE]"u8) && !CountGenerated(data, streamEvent: true))
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
            // A line ends at CR or LF (a CRLF's LF then starts an empty line, which names no field).
            var end = sseEvent.IndexOfAny((byte)'\r', (byte)'\n');
            var line = end < 0 ? sseEvent : sseEvent[..end];
            if (line.StartsWith(prefix))
            {
                var value = line[prefix.Length..];
                return value is [(byte)' ', ..] ? value[1..] : value;
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
