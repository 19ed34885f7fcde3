using System.Security.Cryptography;
using System.Text;
using NSec.Cryptography;

namespace Coinop.Core.Sealing;

/// <summary>
/// A provider's X25519 key for receiving sealed data (checkpoint keys). It is derived from the provider's Ed25519
/// identity seed with HKDF-SHA256 under its own label rather than kept as a second secret: one file to back up, and
/// the two keys are independent as far as anyone without the seed can tell. Because an X25519 key cannot be checked
/// against an Ed25519 key by itself, the provider signs a binding (<see cref="SignBinding"/>) that a consumer verifies
/// against the provider's identity before sealing anything to it; the market relays the binding and cannot swap in a
/// key of its own.
/// </summary>
public static class ProviderSealingKey
{
    private static readonly byte[] DerivationLabel = Encoding.ASCII.GetBytes("coinop/provider-x25519-from-ed25519/v1");
    private static readonly byte[] BindingDomain = Encoding.ASCII.GetBytes("coinop/provider-sealing-key/v1\0");

    /// <summary>The provider's X25519 private key, from its 32-byte Ed25519 private key seed.</summary>
    public static Key Derive(ReadOnlySpan<byte> ed25519Seed)
    {
        if (ed25519Seed.Length != 32)
        {
            throw new ArgumentException("An Ed25519 seed is 32 bytes.", nameof(ed25519Seed));
        }

        Span<byte> raw = stackalloc byte[32];
        HKDF.DeriveKey(HashAlgorithmName.SHA256, ed25519Seed, raw, salt: [], info: DerivationLabel);
        try
        {
            return Key.Import(KeyAgreementAlgorithm.X25519, raw, KeyBlobFormat.RawPrivateKey);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(raw);
        }
    }

    /// <summary>The identity key's signature over the X25519 public key (base64 travels with the key in capabilities).</summary>
    public static byte[] SignBinding(Key ed25519Identity, ReadOnlySpan<byte> x25519PublicKey) =>
        SignatureAlgorithm.Ed25519.Sign(ed25519Identity, [.. BindingDomain, .. x25519PublicKey]);

    /// <summary>True when <paramref name="signature"/> binds <paramref name="x25519PublicKey"/> to the provider's Ed25519 key.</summary>
    public static bool VerifyBinding(ReadOnlySpan<byte> ed25519PublicKey, ReadOnlySpan<byte> x25519PublicKey, ReadOnlySpan<byte> signature) =>
        x25519PublicKey.Length == SealedBox.PublicKeySize
        && PublicKey.TryImport(SignatureAlgorithm.Ed25519, ed25519PublicKey, KeyBlobFormat.RawPublicKey, out var identity)
        && identity is not null
        && SignatureAlgorithm.Ed25519.Verify(identity, [.. BindingDomain, .. x25519PublicKey], signature);
}
