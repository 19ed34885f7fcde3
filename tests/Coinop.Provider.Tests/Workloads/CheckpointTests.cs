using Coinop.Core.Sealing;
using Coinop.Provider.Workloads.Checkpoints;
using Coinop.TestKit;

namespace Coinop.Provider.Tests.Workloads;

public class CheckpointTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_state_directory_round_trips_through_an_encrypted_checkpoint()
    {
        using var dir = new TempDirectory();
        var state = Directory.CreateDirectory(Path.Combine(dir.Path, "state")).FullName;
        await File.WriteAllTextAsync(Path.Combine(state, "counter"), "41", Ct);
        Directory.CreateDirectory(Path.Combine(state, "db", "wal"));
        var big = new byte[300_000];
        new Random(7).NextBytes(big);
        await File.WriteAllBytesAsync(Path.Combine(state, "db", "wal", "segment"), big, Ct);
        File.CreateSymbolicLink(Path.Combine(state, "latest"), "db/wal/segment");
        var key = CheckpointKey.Create();

        var checkpoint = await CreateAsync(state, key);

        var restored = Path.Combine(dir.Path, "restored");
        await RestoreAsync(checkpoint, key, restored);
        Assert.Equal("41", await File.ReadAllTextAsync(Path.Combine(restored, "counter"), Ct));
        Assert.Equal(big, await File.ReadAllBytesAsync(Path.Combine(restored, "db", "wal", "segment"), Ct));
        Assert.Equal("db/wal/segment", new FileInfo(Path.Combine(restored, "latest")).LinkTarget);
    }

    [Fact]
    public async Task A_wrong_key_a_changed_byte_or_truncation_restores_nothing()
    {
        using var dir = new TempDirectory();
        var state = Directory.CreateDirectory(Path.Combine(dir.Path, "state")).FullName;
        await File.WriteAllBytesAsync(Path.Combine(state, "data"), new byte[200_000], Ct);
        var key = CheckpointKey.Create();
        var checkpoint = await CreateAsync(state, key);

        async Task AssertRefusedAsync(byte[] bytes, byte[] withKey)
        {
            var target = Path.Combine(dir.Path, "r-" + Guid.NewGuid().ToString("N"));
            await Assert.ThrowsAsync<CheckpointException>(() => RestoreAsync(bytes, withKey, target));
            Assert.False(Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any());
        }

        await AssertRefusedAsync(checkpoint, CheckpointKey.Create());
        foreach (var offset in new[] { 3, 20, 45, checkpoint.Length / 2, checkpoint.Length - 1 })
        {
            var changed = (byte[])checkpoint.Clone();
            changed[offset] ^= 0x40;
            await AssertRefusedAsync(changed, key);
        }

        // Cutting whole trailing chunks off must fail too: the last chunk is marked as such.
        await AssertRefusedAsync(checkpoint[..(checkpoint.Length / 2)], key);
        await AssertRefusedAsync(checkpoint[..40], key);
        await AssertRefusedAsync([], key);
    }

    [Fact]
    public async Task Restore_refuses_a_non_empty_target()
    {
        using var dir = new TempDirectory();
        var state = Directory.CreateDirectory(Path.Combine(dir.Path, "state")).FullName;
        var key = CheckpointKey.Create();
        var checkpoint = await CreateAsync(state, key);
        var target = Directory.CreateDirectory(Path.Combine(dir.Path, "target")).FullName;
        await File.WriteAllTextAsync(Path.Combine(target, "existing"), "x", Ct);
        await Assert.ThrowsAsync<CheckpointException>(() => RestoreAsync(checkpoint, key, target));
    }

    /// <summary>A checkpoint of <paramref name="state"/> as bytes (no size cap).</summary>
    internal static async Task<byte[]> CreateAsync(string state, byte[] key)
    {
        using var output = new MemoryStream();
        var summary = await Checkpoint.WriteAsync(state, key, output, long.MaxValue, Ct);
        Assert.Equal(output.Length, summary.Length);
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(output.ToArray())), summary.Sha256);
        return output.ToArray();
    }

    /// <summary>Restores into <paramref name="target"/>, made empty first when missing.</summary>
    internal static Task RestoreAsync(byte[] checkpoint, byte[] key, string target, long maxBytes = long.MaxValue)
    {
        Directory.CreateDirectory(target);
        return Checkpoint.RestoreAsync(new MemoryStream(checkpoint), key, target, maxBytes, null, null, Ct);
    }
}
