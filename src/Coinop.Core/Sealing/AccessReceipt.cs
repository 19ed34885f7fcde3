using System.Text.Json;
using System.Text.Json.Serialization;
using NSec.Cryptography;

namespace Coinop.Core.Sealing;

/// <summary>
/// How a consumer reaches a workload's port: host, port, a fresh credential and when it stops being valid (unix ms).
/// The provider seals it to the consumer's X25519 key (<c>--seal-to</c>) so the market relays it without reading it.
/// </summary>
public sealed record AccessReceipt(
    string WorkloadId,
    long Epoch,
    string Host,
    int Port,
    string Credential,
    long ValidUntil)
{
    private const string Purpose = "access-receipt";

    /// <summary>Sealed bytes, base64 (what the market stores and relays).</summary>
    public string Seal(ReadOnlySpan<byte> consumerPublicKey) =>
        Convert.ToBase64String(SealedBox.Seal(Purpose, consumerPublicKey, JsonSerializer.SerializeToUtf8Bytes(this, SealingJsonContext.Default.AccessReceipt)));

    /// <summary>Opens a sealed receipt; null when it is not base64, not for this key, altered or not a receipt.</summary>
    public static AccessReceipt? Open(Key consumerPrivateKey, string sealedBase64)
    {
        byte[] sealedBytes;
        try
        {
            sealedBytes = Convert.FromBase64String(sealedBase64);
        }
        catch (FormatException)
        {
            return null;
        }

        var plaintext = SealedBox.Open(Purpose, consumerPrivateKey, sealedBytes);
        if (plaintext is null)
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize(plaintext, SealingJsonContext.Default.AccessReceipt);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(AccessReceipt))]
internal sealed partial class SealingJsonContext : JsonSerializerContext;
