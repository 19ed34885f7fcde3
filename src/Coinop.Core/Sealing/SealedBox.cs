using System.Text;
using NSec.Cryptography;

namespace Coinop.Core.Sealing;

/// <summary>
/// Anonymous sealed boxes: bytes encrypted to a recipient's X25519 public key with a fresh ephemeral key, so only the
/// holder of the recipient's private key can open them, and the sender keeps nothing that could open them later.
/// Layout: <c>version (1) ‖ ephemeral public key (32) ‖ ChaCha20-Poly1305 ciphertext and tag</c>.
/// The key is HKDF-SHA256 over the X25519 shared secret, salted with both public keys and bound to a
/// purpose string, so a box sealed for one purpose (an access receipt, a checkpoint key) never
/// opens as another. The key is used once, so the nonce is zero.
/// </summary>
public static class SealedBox
{
    public const byte Version = 1;
    public const int PublicKeySize = 32;
    public const int Overhead = 1 + PublicKeySize + 16;

    private static readonly AeadAlgorithm Aead = AeadAlgorithm.ChaCha20Poly1305;
    private static readonly KeyAgreementAlgorithm Agreement = KeyAgreementAlgorithm.X25519;

    public static byte[] Seal(string purpose, ReadOnlySpan<byte> recipientPublicKey, ReadOnlySpan<byte> plaintext)
    {
        var recipient = ImportPublicKey(recipientPublicKey)
            ?? throw new ArgumentException("The recipient key is not a valid 32-byte X25519 public key.", nameof(recipientPublicKey));
        using var ephemeral = Key.Create(Agreement);
        var ephemeralPublic = ephemeral.PublicKey.Export(KeyBlobFormat.RawPublicKey);
        using var key = DeriveKey(purpose, ephemeral, recipient, ephemeralPublic, recipientPublicKey)
            ?? throw new ArgumentException("The recipient key is a low-order point.", nameof(recipientPublicKey));

        var sealedBytes = new byte[Overhead + plaintext.Length];
        sealedBytes[0] = Version;
        ephemeralPublic.CopyTo(sealedBytes, 1);
        Aead.Encrypt(key, Nonce(), Header(sealedBytes), plaintext, sealedBytes.AsSpan(1 + PublicKeySize));
        return sealedBytes;
    }

    /// <summary>Opens a box; null when it is malformed, was sealed to another key or purpose, or was altered.</summary>
    public static byte[]? Open(string purpose, Key recipientPrivateKey, ReadOnlySpan<byte> sealedBytes)
    {
        if (recipientPrivateKey.Algorithm is not X25519 || sealedBytes.Length < Overhead || sealedBytes[0] != Version)
        {
            return null;
        }

        var ephemeral = ImportPublicKey(sealedBytes.Slice(1, PublicKeySize));
        if (ephemeral is null)
        {
            return null;
        }

        var recipientPublic = recipientPrivateKey.PublicKey.Export(KeyBlobFormat.RawPublicKey);
        using var key = DeriveKey(purpose, recipientPrivateKey, ephemeral, sealedBytes.Slice(1, PublicKeySize), recipientPublic);
        if (key is null)
        {
            return null;
        }

        var plaintext = new byte[sealedBytes.Length - Overhead];
        return Aead.Decrypt(key, Nonce(), sealedBytes[..(1 + PublicKeySize)], sealedBytes[(1 + PublicKeySize)..], plaintext)
            ? plaintext
            : null;
    }

    /// <summary>A fresh X25519 key pair whose private half can be saved (the consumer keeps it to open receipts and keys).</summary>
    public static Key CreateKey() =>
        Key.Create(Agreement, new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport });

    public static Key ImportPrivateKey(ReadOnlySpan<byte> raw32) =>
        Key.Import(Agreement, raw32, KeyBlobFormat.RawPrivateKey, new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport });

    public static byte[] ExportPublicKey(Key key) => key.PublicKey.Export(KeyBlobFormat.RawPublicKey);

    private static PublicKey? ImportPublicKey(ReadOnlySpan<byte> raw) =>
        raw.Length == PublicKeySize && PublicKey.TryImport(Agreement, raw, KeyBlobFormat.RawPublicKey, out var key) ? key : null;

    private static Key? DeriveKey(string purpose, Key mine, PublicKey theirs, ReadOnlySpan<byte> ephemeralPublic, ReadOnlySpan<byte> recipientPublic)
    {
        using var shared = Agreement.Agree(mine, theirs);
        if (shared is null)
        {
            return null;
        }

        byte[] salt = [.. ephemeralPublic, .. recipientPublic];
        var info = Encoding.UTF8.GetBytes("coinop/sealed-box/v1/" + purpose);
        return KeyDerivationAlgorithm.HkdfSha256.DeriveKey(shared, salt, info, Aead);
    }

    private static ReadOnlySpan<byte> Header(byte[] sealedBytes) => sealedBytes.AsSpan(0, 1 + PublicKeySize);

    private static byte[] Nonce() => new byte[Aead.NonceSize];
}
