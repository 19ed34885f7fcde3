using System.Text.Json;
using System.Text.Json.Serialization;

namespace Coinop.Core.Protocol;

/// <summary>Source-generated JSON for the provider protocol (snake_case, no reflection on the hot path).</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    AllowOutOfOrderMetadataProperties = true,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(ProtocolMessage))]
public sealed partial class ProtocolJsonContext : JsonSerializerContext;

/// <summary>Encodes and decodes control frames.</summary>
public static class ProtocolJson
{
    public static byte[] Serialize(ProtocolMessage message) =>
        JsonSerializer.SerializeToUtf8Bytes(message, ProtocolJsonContext.Default.ProtocolMessage);

    /// <summary>Parses a text frame; returns null (never throws) when the frame is not a known message.</summary>
    public static ProtocolMessage? TryDeserialize(ReadOnlySpan<byte> utf8)
    {
        try
        {
            return JsonSerializer.Deserialize(utf8, ProtocolJsonContext.Default.ProtocolMessage);
        }
        catch (JsonException)
        {
            return null;
        }
        catch (NotSupportedException)
        {
            return null;
        }
    }
}
