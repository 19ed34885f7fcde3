using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Coinop.Core.Identity;
using NSec.Cryptography;

namespace Coinop.Core.Sealing;

/// <summary>
/// How a consumer reaches a workload's port: host, port, a fresh credential and when it stops being valid (unix ms).
/// The provider signs it with its Ed25519 identity key (<see cref="ProviderKey"/>, <see cref="Signature"/>: the consumer
/// checks that the provider the market names issued it) and seals it to the consumer's X25519 key (<c>--seal-to</c>), so
/// the market relays it without reading it.
/// </summary>
public sealed record AccessReceipt(
    string WorkloadId,
    long Epoch,
    string Host,
    int Port,
    string Credential,
    long ValidUntil,
    string? ProviderKey = null,
    string? Signature = null)
{
    private const string Purpose = "access-receipt";

    /// <summary>Prepended to the signed bytes, so the signature can never be valid for another message kind.</summary>
    private static readonly byte[] SigningDomain = Encoding.ASCII.GetBytes("coinop/access-receipt/v1\0");

    /// <summary>The receipt signed with the provider's Ed25519 identity key.</summary>
    public AccessReceipt SignedWith(Key ed25519)
    {
        if (ed25519.Algorithm is not Ed25519)
        {
            throw new ArgumentException("Access receipts are signed with an Ed25519 key.", nameof(ed25519));
        }

        var signature = SignatureAlgorithm.Ed25519.Sign(ed25519, [.. SigningDomain, .. CanonicalBytes()]);
        return this with
        {
            ProviderKey = Convert.ToBase64String(ed25519.PublicKey.Export(KeyBlobFormat.RawPublicKey)),
            Signature = Convert.ToBase64String(signature),
        };
    }

    /// <summary>The id of the provider whose key signed this receipt; null when unsigned or the signature does not verify.</summary>
    public string? SignerId()
    {
        if (ProviderKey is null || Signature is null)
        {
            return null;
        }

        byte[] key, signature;
        try
        {
            key = Convert.FromBase64String(ProviderKey);
            signature = Convert.FromBase64String(Signature);
        }
        catch (FormatException)
        {
            return null;
        }

        return PublicKey.TryImport(SignatureAlgorithm.Ed25519, key, KeyBlobFormat.RawPublicKey, out var publicKey) && publicKey is not null
            && SignatureAlgorithm.Ed25519.Verify(publicKey, [.. SigningDomain, .. CanonicalBytes()], signature)
            ? ProviderAuth.ProviderIdFor(key)
            : null;
    }

    /// <summary>The signed bytes: compact JSON of the receipt's fields (not the signature) in a fixed order.</summary>
    public byte[] CanonicalBytes()
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("workload_id", WorkloadId);
            w.WriteNumber("epoch", Epoch);
            w.WriteString("host", Host);
            w.WriteNumber("port", Port);
            w.WriteString("credential", Credential);
            w.WriteNumber("valid_until", ValidUntil);
            w.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

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
