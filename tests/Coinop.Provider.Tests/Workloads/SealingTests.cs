using System.Text;
using Coinop.Core.Sealing;
using NSec.Cryptography;

namespace Coinop.Provider.Tests.Workloads;

public class SealingTests
{
    [Fact]
    public void A_sealed_box_opens_only_with_the_recipients_key_and_purpose()
    {
        using var recipient = SealedBox.CreateKey();
        using var other = SealedBox.CreateKey();
        var sealedBytes = SealedBox.Seal("test", SealedBox.ExportPublicKey(recipient), "secret bytes"u8);

        Assert.Equal("secret bytes", Encoding.UTF8.GetString(SealedBox.Open("test", recipient, sealedBytes)!));
        Assert.Null(SealedBox.Open("test", other, sealedBytes));
        Assert.Null(SealedBox.Open("another-purpose", recipient, sealedBytes));

        // Two seals of the same bytes differ (fresh ephemeral key each time).
        Assert.NotEqual(sealedBytes, SealedBox.Seal("test", SealedBox.ExportPublicKey(recipient), "secret bytes"u8));
    }

    [Fact]
    public void Any_changed_byte_or_truncation_makes_a_sealed_box_fail_to_open()
    {
        using var recipient = SealedBox.CreateKey();
        var sealedBytes = SealedBox.Seal("test", SealedBox.ExportPublicKey(recipient), "tamper-evident"u8);
        for (var i = 0; i < sealedBytes.Length; i++)
        {
            var copy = (byte[])sealedBytes.Clone();
            copy[i] ^= 0x01;
            Assert.Null(SealedBox.Open("test", recipient, copy));
        }

        Assert.Null(SealedBox.Open("test", recipient, sealedBytes.AsSpan()[..^1]));
        Assert.Null(SealedBox.Open("test", recipient, []));
    }

    [Fact]
    public void Sealing_to_a_malformed_key_is_a_clear_error()
    {
        Assert.Throws<ArgumentException>(() => SealedBox.Seal("test", new byte[31], "x"u8));
    }

    [Fact]
    public void An_access_receipt_round_trips_sealed_to_the_consumer()
    {
        using var consumer = SealedBox.CreateKey();
        using var stranger = SealedBox.CreateKey();
        var receipt = new AccessReceipt("w1", 3, "203.0.113.7", 40123, "cred-123", 1_900_000_000_000);
        var sealedReceipt = receipt.Seal(SealedBox.ExportPublicKey(consumer));

        Assert.Equal(receipt, AccessReceipt.Open(consumer, sealedReceipt));
        Assert.Null(AccessReceipt.Open(stranger, sealedReceipt));
        Assert.Null(AccessReceipt.Open(consumer, "not base64!"));
        Assert.DoesNotContain("cred-123", Encoding.UTF8.GetString(Convert.FromBase64String(sealedReceipt)), StringComparison.Ordinal);
    }

    [Fact]
    public void A_providers_sealing_key_is_derived_from_its_identity_and_bound_by_its_signature()
    {
        var seed = new byte[32];
        seed[0] = 42;
        using var identity = Key.Import(SignatureAlgorithm.Ed25519, seed, KeyBlobFormat.RawPrivateKey);
        using var a = ProviderSealingKey.Derive(seed);
        using var b = ProviderSealingKey.Derive(seed);
        var publicKey = SealedBox.ExportPublicKey(a);
        Assert.Equal(publicKey, SealedBox.ExportPublicKey(b));

        var identityPublic = identity.PublicKey.Export(KeyBlobFormat.RawPublicKey);
        var binding = ProviderSealingKey.SignBinding(identity, publicKey);
        Assert.True(ProviderSealingKey.VerifyBinding(identityPublic, publicKey, binding));

        using var impostor = SealedBox.CreateKey();
        Assert.False(ProviderSealingKey.VerifyBinding(identityPublic, SealedBox.ExportPublicKey(impostor), binding));
        binding[5] ^= 1;
        Assert.False(ProviderSealingKey.VerifyBinding(identityPublic, publicKey, binding));
    }

    [Fact]
    public void A_checkpoint_key_sealed_for_one_workload_does_not_open_for_another()
    {
        using var provider = SealedBox.CreateKey();
        var key = CheckpointKey.Create();
        var sealedKey = CheckpointKey.SealTo(SealedBox.ExportPublicKey(provider), "w1", key);

        Assert.Equal(key, CheckpointKey.Open(provider, "w1", sealedKey));
        Assert.Null(CheckpointKey.Open(provider, "w2", sealedKey));
    }
}
