using Coinop.Core.Identity;
using Coinop.Provider.Identity;
using Coinop.TestKit;
using NSec.Cryptography;

namespace Coinop.Provider.Tests.Units;

public class ProviderIdentityTests
{
    [Fact]
    public void Is_created_with_mode_0600_and_keeps_its_id_across_restarts()
    {
        using var dir = new TempDirectory();
        string id;
        using (var first = ProviderIdentity.LoadOrCreate(dir.Path))
        {
            id = first.ProviderId;
            Assert.Equal(ProviderAuth.ProviderIdFor(first.PublicKey), id);
        }

        var path = Path.Combine(dir.Path, ProviderIdentity.FileName);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Contains("PRIVATE KEY", File.ReadAllText(path), StringComparison.Ordinal);
        Assert.False(File.Exists(path + ".tmp"));

        using var second = ProviderIdentity.LoadOrCreate(dir.Path);
        Assert.Equal(id, second.ProviderId);
    }

    [Fact]
    public void Signs_the_domain_separated_payload_for_the_market_and_nonce()
    {
        using var dir = new TempDirectory();
        using var identity = ProviderIdentity.LoadOrCreate(dir.Path);
        var nonce = new byte[32];
        nonce[0] = 7;
        var signature = identity.SignChallenge("market-a", nonce);
        var key = PublicKey.Import(SignatureAlgorithm.Ed25519, identity.PublicKey, KeyBlobFormat.RawPublicKey);

        Assert.True(SignatureAlgorithm.Ed25519.Verify(key, ProviderAuth.SigningPayload("market-a", nonce), signature));
        // Useless for another market, another nonce, or the bare nonce.
        Assert.False(SignatureAlgorithm.Ed25519.Verify(key, ProviderAuth.SigningPayload("market-b", nonce), signature));
        Assert.False(SignatureAlgorithm.Ed25519.Verify(key, ProviderAuth.SigningPayload("market-a", new byte[32]), signature));
        Assert.False(SignatureAlgorithm.Ed25519.Verify(key, nonce, signature));
    }

    [Fact]
    public void A_damaged_key_file_is_reported_not_replaced()
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, ProviderIdentity.FileName);
        File.WriteAllText(path, "garbage");
        var error = Assert.Throws<IOException>(() => ProviderIdentity.LoadOrCreate(dir.Path));
        Assert.Contains("not an Ed25519 private key", error.Message, StringComparison.Ordinal);
        Assert.Equal("garbage", File.ReadAllText(path));
    }
}
