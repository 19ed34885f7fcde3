using System.Text.Json;
using Coinop.Core.Protocol;

namespace Coinop.Provider.Jobs;

/// <summary>
/// Finds the token usage in a backend's output as it streams past, without holding the output: the last
/// <c>usage</c> of an SSE stream (OpenAI's final usage chunk; Anthropic's <c>message_start</c> and
/// <c>message_delta</c>) or the <c>usage</c> object of a JSON body, read incrementally. OpenAI names the counts
/// <c>prompt_tokens</c>/<c>completion_tokens</c>, Anthropic <c>input_tokens</c>/<c>output_tokens</c>.
/// </summary>
public sealed class UsageScanner(bool serverSentEvents)
{
    // A single SSE line or JSON token longer than this is not worth holding to find a usage in it.
    private const int MaxPending = 1 << 20;

    private readonly Field[] _path = new Field[4];
    private byte[] _pending = [];
    private int _pendingLength;
    private bool _skippingLine;
    private bool _gaveUp;
    private JsonReaderState _state;
    private long? _input;
    private long? _output;

    private enum Field : byte
    {
        Other,
        Usage,
        Message,
        Input,
        Output,
    }

    public bool Found => _input is not null || _output is not null;

    public TokenUsage Usage => new(_input ?? 0, _output ?? 0);

    public void Feed(ReadOnlySpan<byte> data)
    {
        if (_gaveUp)
        {
            return;
        }

        if (serverSentEvents)
        {
            FeedEvents(data);
        }
        else
        {
            FeedJson(data);
        }
    }

    private void FeedEvents(ReadOnlySpan<byte> data)
    {
        while (!data.IsEmpty)
        {
            // A line ends with CR, LF or CRLF (as the market's relay reads SSE): a CRLF is a line and an empty one, which holds no data.
            var newline = data.IndexOfAny((byte)'\r', (byte)'\n');
            if (newline < 0)
            {
                Hold(data);
                return;
            }

            if (_skippingLine)
            {
                _skippingLine = false;
            }
            else if (_pendingLength > 0)
            {
                Hold(data[..newline]);
                if (!_skippingLine)
                {
                    Line(_pending.AsSpan(0, _pendingLength));
                }

                _skippingLine = false;
            }
            else
            {
                Line(data[..newline]);
            }

            _pendingLength = 0;
            data = data[(newline + 1)..];
        }
    }

    private void Line(ReadOnlySpan<byte> line)
    {
        if (!line.StartsWith("data:"u8))
        {
            return;
        }

        var payload = line[5..].TrimStart((byte)' ');
        if (!Coinop.Core.Inference.UsageProbe.MayHoldUsage(payload))
        {
            return;
        }

        Array.Clear(_path);
        var reader = new Utf8JsonReader(payload);
        try
        {
            while (reader.Read())
            {
                Visit(ref reader);
            }
        }
        catch (JsonException)
        {
            // Not JSON: an event this scanner does not understand.
        }
    }

    private void FeedJson(ReadOnlySpan<byte> data)
    {
        if (_pendingLength > 0)
        {
            Hold(data);
            if (_gaveUp)
            {
                return;
            }

            data = _pending.AsSpan(0, _pendingLength);
        }

        var reader = new Utf8JsonReader(data, isFinalBlock: false, _state);
        try
        {
            while (reader.Read())
            {
                Visit(ref reader);
            }
        }
        catch (JsonException)
        {
            _gaveUp = true;
            return;
        }

        _state = reader.CurrentState;
        var rest = data[(int)reader.BytesConsumed..];
        if (rest.Length > MaxPending)
        {
            _gaveUp = true;
            return;
        }

        Ensure(rest.Length);
        rest.CopyTo(_pending);
        _pendingLength = rest.Length;
    }

    private void Visit(ref Utf8JsonReader reader)
    {
        var depth = reader.CurrentDepth;
        if (reader.TokenType == JsonTokenType.PropertyName)
        {
            if (depth < _path.Length)
            {
                _path[depth] = Classify(ref reader);
            }

            return;
        }

        if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out var value) || value < 0)
        {
            return;
        }

        // {"usage":{…}} at the top, or Anthropic's {"message":{"usage":{…}}} in message_start.
        var field = depth == 2 && _path[1] == Field.Usage ? _path[2]
            : depth == 3 && _path[1] == Field.Message && _path[2] == Field.Usage ? _path[3]
            : Field.Other;
        if (field == Field.Input)
        {
            _input = value;
        }
        else if (field == Field.Output)
        {
            _output = value;
        }
    }

    private static Field Classify(ref Utf8JsonReader reader) =>
        reader.ValueTextEquals("usage"u8) ? Field.Usage
        : reader.ValueTextEquals("message"u8) ? Field.Message
        : reader.ValueTextEquals("prompt_tokens"u8) || reader.ValueTextEquals("input_tokens"u8) ? Field.Input
        : reader.ValueTextEquals("completion_tokens"u8) || reader.ValueTextEquals("output_tokens"u8) ? Field.Output
        : Field.Other;

    private void Hold(ReadOnlySpan<byte> data)
    {
        if (_skippingLine)
        {
            return;
        }

        if (_pendingLength + data.Length > MaxPending)
        {
            _pendingLength = 0;
            if (serverSentEvents)
            {
                _skippingLine = true;
            }
            else
            {
                _gaveUp = true;
            }

            return;
        }

        Ensure(_pendingLength + data.Length);
        data.CopyTo(_pending.AsSpan(_pendingLength));
        _pendingLength += data.Length;
    }

    private void Ensure(int size)
    {
        if (size > _pending.Length)
        {
            // Grown on first use: a JSON body read whole, the usual case, leaves nothing to hold.
            Array.Resize(ref _pending, Math.Max(Math.Max(size, 256), _pending.Length * 2));
        }
    }
}
