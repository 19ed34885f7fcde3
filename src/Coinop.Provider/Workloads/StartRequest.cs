using System.Buffers.Text;
using System.Security.Cryptography;
using Coinop.Core.Protocol;
using Coinop.Core.Sealing;
using NSec.Cryptography;

namespace Coinop.Provider.Workloads;

/// <summary>A <c>workload_start</c> checked and opened: the copy request, its checkpoint key and the checkpoint to restore.</summary>
internal sealed record StartRequest(CopySpec Spec, byte[]? Checkpoint, byte[]? Key)
{
    /// <summary>The start ready to run, or null and the <paramref name="problem"/> that stops it (the market hears it as a failed start).</summary>
    public static StartRequest? Prepare(WorkloadStart start, Key sealingKey, bool draining, out string? problem)
    {
        var id = start.WorkloadId;
        problem = null;
        byte[]? key = null, checkpoint = null;
        if (draining)
        {
            problem = "the provider is draining";
        }
        else if (start.Spec is null || start.Timings is null || start.Timings.StopAfterMs <= 0)
        {
            problem = "the start lacks a spec or timings";
        }
        else if (start.SealedCheckpointKey is { } sealedKey)
        {
            key = Base64Bytes(sealedKey) is { } box ? CheckpointKey.Open(sealingKey, id, box) : null;
            problem = key is null ? "the checkpoint key is not sealed to this provider" : null;
        }

        if (problem is null && start.Checkpoint is { } encoded)
        {
            checkpoint = Base64Bytes(encoded);
            problem = checkpoint is null ? "the checkpoint is not base64" : key is null ? "a checkpoint came without its key" : null;
        }

        if (problem is null && start.SealTo is not null && Base64Bytes(start.SealTo) is not { Length: SealedBox.PublicKeySize })
        {
            problem = "seal_to is not an X25519 public key";
        }

        if (problem is not null)
        {
            return null;
        }

        var s = start.Spec!;
        var spec = new CopySpec(id, start.Epoch, s.Command, s.Args ?? [], new Dictionary<string, string>(), s.CpuCores, s.MemoryMb, s.Port,
            WantsStateDir: s.Checkpointed, AccessCredential: s.Port is null ? null : Convert.ToBase64String(RandomNumberGenerator.GetBytes(24)));
        problem = spec.Validate();
        return problem is null ? new StartRequest(spec, checkpoint, key) : null;
    }

    private static byte[]? Base64Bytes(string text)
    {
        var bytes = new byte[Base64.GetMaxDecodedFromUtf8Length(text.Length)];
        return Convert.TryFromBase64String(text, bytes, out var written) ? bytes[..written] : null;
    }
}
