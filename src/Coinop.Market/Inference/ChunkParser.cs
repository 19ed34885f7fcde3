using System.Buffers;
using System.Text.Json;

namespace Coinop.Market.Inference;

/// <summary>Parses stream chunks as JSON through one reused buffer (a chunk's document is disposed before the next).</summary>
public sealed class ChunkParser : IDisposable
{
    private byte[] _buffer = [];

    public JsonDocument Parse(ReadOnlySpan<byte> data)
    {
        if (_buffer.Length < data.Length)
        {
            if (_buffer.Length > 0)
            {
                ArrayPool<byte>.Shared.Return(_buffer);
            }

            _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(data.Length, 1024));
        }

        data.CopyTo(_buffer);
        try
        {
            return JsonDocument.Parse(_buffer.AsMemory(0, data.Length));
        }
        catch (JsonException)
        {
            throw new ProviderOutputException("an OpenAI stream chunk is not JSON");
        }
    }

    public void Dispose()
    {
        if (_buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = [];
        }
    }
}
