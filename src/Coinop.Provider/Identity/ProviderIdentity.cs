using Coinop.Core.Identity;
using Coinop.Core.Sealing;
using NSec.Cryptography;

namespace Coinop.Provider.Identity;

/// <summary>
/// The provider's Ed25519 key, created on first run in <c>&lt;data&gt;/identity.key</c> (PKCS#8 PEM, mode 0600)
/// and loaded on later runs, so a restarted provider keeps its id.
/// </summary>
public sealed class ProviderIdentity : IDisposable
{
    public const string FileName = "identity.key";

    private static readonly SignatureAlgorithm Algorithm = SignatureAlgorithm.Ed25519;
    private readonly Key _key;

    private ProviderIdentity(Key key, string path)
    {
        _key = key;
        Path = path;
        PublicKey = key.PublicKey.Export(KeyBlobFormat.RawPublicKey);
        ProviderId = ProviderAuth.ProviderIdFor(PublicKey);
    }

    public string Path { get; }

    /// <summary>The raw 32-byte public key.</summary>
    public byte[] PublicKey { get; }

    public string ProviderId { get; }

    /// <summary>Loads the key from the data directory, creating it (and the directory) on first use.</summary>
    public static ProviderIdentity LoadOrCreate(string dataDir)
    {
        Directory.CreateDirectory(dataDir);
        var path = System.IO.Path.Combine(dataDir, FileName);
        return File.Exists(path) ? Load(path) : Create(path);
    }

    /// <summary>The Ed25519 identity key itself: it signs usage records (owned by this identity; do not dispose).</summary>
    public Key SigningKey => _key;

    /// <summary>
    /// The X25519 key checkpoint keys are sealed to, derived from the identity seed (no second secret to keep), and the
    /// identity's signature binding its public half to this provider (see <see cref="ProviderSealingKey"/>).
    /// </summary>
    public (Key SealingKey, byte[] Binding) CreateSealingKey()
    {
        var seed = _key.Export(KeyBlobFormat.RawPrivateKey);
        try
        {
            var sealing = ProviderSealingKey.Derive(seed);
            return (sealing, ProviderSealingKey.SignBinding(_key, sealing.PublicKey.Export(KeyBlobFormat.RawPublicKey)));
        }
        finally
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(seed);
        }
    }

    /// <summary>Signs the handshake payload for a challenge (see <see cref="ProviderAuth.SigningPayload"/>).</summary>
    public byte[] SignChallenge(string marketId, ReadOnlySpan<byte> nonce) =>
        Algorithm.Sign(_key, ProviderAuth.SigningPayload(marketId, nonce));

    public void Dispose() => _key.Dispose();

    private static ProviderIdentity Load(string path)
    {
        var blob = File.ReadAllBytes(path);
        if (!Key.TryImport(Algorithm, blob, KeyBlobFormat.PkixPrivateKeyText, out var key, Exportable()) || key is null)
        {
            throw new IOException($"{path} is not an Ed25519 private key; move it away to create a new identity (the provider id will change)");
        }

        return new ProviderIdentity(key, path);
    }

    private static ProviderIdentity Create(string path)
    {
        var key = Key.Create(Algorithm, Exportable());
        var pem = key.Export(KeyBlobFormat.PkixPrivateKeyText);

        // The file is created with mode 0600 before any secret byte is written, then moved into place whole so a
        // crash never leaves a half-written key under the real name.
        var temp = path + ".tmp";
        File.Delete(temp);
        var create = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            create.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var file = new FileStream(temp, create))
        {
            file.Write(pem);
            file.Flush(flushToDisk: true);
        }

        File.Move(temp, path, overwrite: false);
        return new ProviderIdentity(key, path);
    }

    private static KeyCreationParameters Exportable() => new() { ExportPolicy = KeyExportPolicies.AllowPlaintextExport };
}
