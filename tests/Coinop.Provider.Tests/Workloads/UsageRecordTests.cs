using System.Text;
using System.Text.Json;
using Coinop.Core.Workloads;
using NSec.Cryptography;

namespace Coinop.Provider.Tests.Workloads;

public class UsageRecordTests
{
    private static readonly UsageRecord Record = new("w1", 4, 1_700_000_000_000, 1_700_000_030_000, 12.5, 7680.25, 4096, 30.0);

    [Fact]
    public void The_payload_is_canonical_snake_case_json()
    {
        Assert.Equal(
            """{"workload_id":"w1","epoch":4,"window_start":1700000000000,"window_end":1700000030000,"cpu_core_seconds":12.5,"memory_mib_seconds":7680.25,"net_bytes":4096,"wall_seconds":30}""",
            Encoding.UTF8.GetString(Record.CanonicalBytes()));
        Assert.Equal(Record.CanonicalBytes(), Record.CanonicalBytes());
    }

    [Fact]
    public void A_signed_record_verifies_and_fails_when_any_payload_byte_changes()
    {
        using var key = Key.Create(SignatureAlgorithm.Ed25519);
        var signed = Record.Sign(key);
        Assert.Equal(Record, UsageRecord.Verify(signed));
        Assert.Equal(key.PublicKey.Export(KeyBlobFormat.RawPublicKey), Convert.FromBase64String(signed.PublicKey));

        var payload = Convert.FromBase64String(signed.Payload);
        for (var i = 0; i < payload.Length; i++)
        {
            var changed = (byte[])payload.Clone();
            changed[i] ^= 0x01;
            Assert.Null(UsageRecord.Verify(signed with { Payload = Convert.ToBase64String(changed) }));
        }

        using var other = Key.Create(SignatureAlgorithm.Ed25519);
        Assert.Null(UsageRecord.Verify(signed with { PublicKey = Convert.ToBase64String(other.PublicKey.Export(KeyBlobFormat.RawPublicKey)) }));
        Assert.Null(UsageRecord.Verify(signed with { Signature = "!!" }));
    }

    [Fact]
    public void A_signed_record_serializes_as_payload_signature_public_key()
    {
        using var key = Key.Create(SignatureAlgorithm.Ed25519);
        var json = JsonSerializer.Serialize(Record.Sign(key));
        using var doc = JsonDocument.Parse(json);
        Assert.Equal(["payload", "signature", "public_key"], doc.RootElement.EnumerateObject().Select(p => p.Name));
    }

    [Fact]
    public void A_validly_signed_payload_missing_a_field_does_not_verify()
    {
        // Signed correctly but incomplete: must not read as zero usage.
        using var key = Key.Create(SignatureAlgorithm.Ed25519);
        var payload = """{"workload_id":"w1","epoch":4,"window_start":1,"window_end":2}"""u8.ToArray();
        var signature = SignatureAlgorithm.Ed25519.Sign(key, [.. "coinop/usage-record/v1\0"u8.ToArray(), .. payload]);
        var signed = new SignedUsageRecord(Convert.ToBase64String(payload), Convert.ToBase64String(signature), Convert.ToBase64String(key.PublicKey.Export(KeyBlobFormat.RawPublicKey)));
        Assert.Null(UsageRecord.Verify(signed));
    }
}
