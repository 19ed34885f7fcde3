using Coinop.Core.Workloads;
using CsCheck;

namespace Coinop.Core.Tests.Workloads;

/// <summary>The ownership rule: a workload answers to the key it was submitted with and to no other.</summary>
public class WorkloadOwnerKeyProperties
{
    private static readonly Gen<string> Keys = Gen.OneOf(
        Gen.Const(0).Select(_ => WorkloadOwnerKey.New()),
        Gen.Char["ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"].Array[22, 256].Select(c => new string(c)));

    [Fact]
    public void A_workload_admits_exactly_the_key_it_was_submitted_with()
    {
        Gen.Select(Keys, Keys).Sample((owner, other) =>
        {
            Assert.True(WorkloadOwnerKey.IsWellFormed(owner));
            var hash = WorkloadOwnerKey.Hash(owner);
            Assert.Equal(OwnerCheck.Owner, WorkloadOwnerKey.Check(hash, owner));
            Assert.Equal(owner == other ? OwnerCheck.Owner : OwnerCheck.NotOwner, WorkloadOwnerKey.Check(hash, other));
            Assert.Equal(OwnerCheck.Unowned, WorkloadOwnerKey.Check(null, other));
        }, iter: 2000);
    }

    [Fact]
    public void A_missing_short_or_unprintable_key_is_no_key_at_all()
    {
        var hash = WorkloadOwnerKey.Hash(WorkloadOwnerKey.New());
        Gen.String.Where(s => !WorkloadOwnerKey.IsWellFormed(s)).Sample(s => Assert.Equal(OwnerCheck.NoKey, WorkloadOwnerKey.Check(hash, s)), iter: 2000);
        foreach (var bad in new[] { null, "", "owner_short", new string('a', 21), new string('a', 257), "owner_" + new string('a', 30) + " ", "owner_" + new string('a', 30) + "\n" })
        {
            Assert.False(WorkloadOwnerKey.IsWellFormed(bad));
            Assert.Equal(OwnerCheck.NoKey, WorkloadOwnerKey.Check(hash, bad));
        }
    }

    [Fact]
    public void Made_keys_hold_32_random_bytes_and_differ()
    {
        var keys = Enumerable.Range(0, 1000).Select(_ => WorkloadOwnerKey.New()).ToList();
        Assert.All(keys, k => Assert.Equal(WorkloadOwnerKey.Prefix.Length + 43, k.Length));
        Assert.Equal(keys.Count, keys.Distinct().Count());
        Assert.Equal(64, WorkloadOwnerKey.Hash(keys[0]).Length);
    }
}
