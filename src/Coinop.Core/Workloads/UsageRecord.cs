using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using NSec.Cryptography;

namespace Coinop.Core.Workloads;

/// <summary>
/// Resources one copy of a workload really used over a time window, as the provider measured them. The provider
/// signs the canonical bytes with its Ed25519 identity key, so the market can bill on them and a consumer can check
/// them later without trusting the market's copy.
/// </summary>
public sealed record UsageRecord(
    string WorkloadId,
    long Epoch,
    long WindowStart,
    long WindowEnd,
    double CpuCoreSeconds,
    double MemoryMibSeconds,
    long NetBytes,
    double WallSeconds)
{
    /// <summary>Prepended to the payload for signing only, so the signature can never be valid for another message kind.</summary>
    private static readonly byte[] SigningDomain = Encoding.ASCII.GetBytes("coinop/usage-record/v1\0");

    private static readonly JsonWriterOptions WriterOptions = new() { Indented = false, SkipValidation = false };

    /// <summary>
    /// The exact bytes that are signed: compact JSON with a fixed key order and numbers rounded to microunits, so the
    /// same record always yields the same bytes.
    /// </summary>
    public byte[] CanonicalBytes()
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer, WriterOptions))
        {
            w.WriteStartObject();
            w.WriteString("workload_id", WorkloadId);
            w.WriteNumber("epoch", Epoch);
            w.WriteNumber("window_start", WindowStart);
            w.WriteNumber("window_end", WindowEnd);
            w.WriteNumber("cpu_core_seconds", Round(CpuCoreSeconds));
            w.WriteNumber("memory_mib_seconds", Round(MemoryMibSeconds));
            w.WriteNumber("net_bytes", NetBytes);
            w.WriteNumber("wall_seconds", Round(WallSeconds));
            w.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Signs the canonical bytes with an Ed25519 key: <c>{payload, signature, public_key}</c>, all base64.</summary>
    public SignedUsageRecord Sign(Key ed25519)
    {
        if (ed25519.Algorithm is not Ed25519)
        {
            throw new ArgumentException("Usage records are signed with an Ed25519 key.", nameof(ed25519));
        }

        var payload = CanonicalBytes();
        var signature = SignatureAlgorithm.Ed25519.Sign(ed25519, Domain(payload));
        var publicKey = ed25519.PublicKey.Export(KeyBlobFormat.RawPublicKey);
        return new SignedUsageRecord(Convert.ToBase64String(payload), Convert.ToBase64String(signature), Convert.ToBase64String(publicKey));
    }

    /// <summary>
    /// Checks the signature over the exact payload bytes and parses them. Returns null (never throws) for bad base64,
    /// a wrong key size, a signature that does not verify or a payload that is not a well-formed record.
    /// </summary>
    public static UsageRecord? Verify(SignedUsageRecord signed)
    {
        byte[] payload, signature, publicKey;
        try
        {
            payload = Convert.FromBase64String(signed.Payload);
            signature = Convert.FromBase64String(signed.Signature);
            publicKey = Convert.FromBase64String(signed.PublicKey);
        }
        catch (FormatException)
        {
            return null;
        }
        catch (ArgumentNullException)
        {
            return null;
        }

        if (!PublicKey.TryImport(SignatureAlgorithm.Ed25519, publicKey, KeyBlobFormat.RawPublicKey, out var key) || key is null)
        {
            return null;
        }

        return SignatureAlgorithm.Ed25519.Verify(key, Domain(payload), signature) ? Parse(payload) : null;
    }

    private static UsageRecord? Parse(byte[] payload)
    {
        try
        {
            var r = JsonSerializer.Deserialize(payload, UsageJsonContext.Default.UsageRecordWire);
            // A window is a span of real time: unix ms from 1970 to the last date there is (a signer's other times break readers).
            return r is { WorkloadId.Length: > 0 } && r.WindowStart >= 0 && r.WindowEnd >= r.WindowStart && r.WindowEnd <= MaxUnixMs
                ? new UsageRecord(r.WorkloadId, r.Epoch, r.WindowStart, r.WindowEnd, r.CpuCoreSeconds, r.MemoryMibSeconds, r.NetBytes, r.WallSeconds)
                : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>The last millisecond a <see cref="DateTimeOffset"/> holds, as unix ms.</summary>
    public static readonly long MaxUnixMs = DateTimeOffset.MaxValue.ToUnixTimeMilliseconds();

    private static byte[] Domain(byte[] payload) => [.. SigningDomain, .. payload];

    private static double Round(double value) => double.IsFinite(value) ? Math.Round(value, 6) : 0;
}

/// <summary>A usage record as the market stores and serves it: base64 of the signed bytes, the signature and the raw public key.</summary>
public sealed record SignedUsageRecord(
    [property: JsonPropertyName("payload")] string Payload,
    [property: JsonPropertyName("signature")] string Signature,
    [property: JsonPropertyName("public_key")] string PublicKey);

/// <summary>The payload's wire shape; every field is required so a record missing one does not verify as zeros.</summary>
internal sealed record UsageRecordWire(
    [property: JsonRequired] string WorkloadId,
    [property: JsonRequired] long Epoch,
    [property: JsonRequired] long WindowStart,
    [property: JsonRequired] long WindowEnd,
    [property: JsonRequired] double CpuCoreSeconds,
    [property: JsonRequired] double MemoryMibSeconds,
    [property: JsonRequired] long NetBytes,
    [property: JsonRequired] double WallSeconds);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(UsageRecordWire))]
[JsonSerializable(typeof(SignedUsageRecord))]
internal sealed partial class UsageJsonContext : JsonSerializerContext;
