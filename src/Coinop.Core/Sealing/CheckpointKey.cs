using System.Security.Cryptography;
using NSec.Cryptography;

namespace Coinop.Core.Sealing;

/// <summary>
/// The per-workload symmetric key K that encrypts checkpoints. The consumer's CLI creates it and seals one copy to
/// each provider allowed to run the workload; the purpose string names the workload, so a sealed key for one workload
/// never opens as the key of another. The market stores only these sealed copies and the encrypted checkpoints.
/// </summary>
public static class CheckpointKey
{
    public const int Size = 32;

    public static byte[] Create() => RandomNumberGenerator.GetBytes(Size);

    public static byte[] SealTo(ReadOnlySpan<byte> providerX25519PublicKey, string workloadId, ReadOnlySpan<byte> key)
    {
        if (key.Length != Size)
        {
            throw new ArgumentException($"A checkpoint key is {Size} bytes.", nameof(key));
        }

        return SealedBox.Seal(Purpose(workloadId), providerX25519PublicKey, key);
    }

    /// <summary>The key, or null when the box is not for this provider, this workload, or was altered.</summary>
    public static byte[]? Open(Key providerX25519PrivateKey, string workloadId, ReadOnlySpan<byte> sealedKey) =>
        SealedBox.Open(Purpose(workloadId), providerX25519PrivateKey, sealedKey) is { Length: Size } key ? key : null;

    private static string Purpose(string workloadId) => "checkpoint-key/" + workloadId;
}
