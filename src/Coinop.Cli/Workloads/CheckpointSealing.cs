using Coinop.Cli.Shared;
using Coinop.Core.Identity;
using Coinop.Core.Sealing;
using Coinop.Market.Gateway;

namespace Coinop.Cli.Workloads;

/// <summary>Seals a checkpointed workload's key to the providers that may run it.</summary>
internal static class CheckpointSealing
{
    /// <summary>
    /// Seals the checkpoint key to every online provider offering workloads whose sealing key is bound to its identity
    /// (signature checked against the identity key, whose hash must be the provider id), so the market cannot slip in a
    /// key of its own; the market then places the workload only on these providers.
    /// </summary>
    internal static async Task<Dictionary<string, string>> SealToProvidersAsync(WorkloadClient client, string workloadId, byte[] key, CancellationToken ct)
    {
        var providers = await client.GetAsync("api/providers", GatewayJsonContext.Default.ProviderViewArray, ct);
        var sealedKeys = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in providers)
        {
            if (p is not { Online: true, PublicKey: { } identity, Workloads: { SealingKey: { } sealing, SealingKeySignature: { } signature } })
            {
                continue;
            }

            var identityKey = Convert.FromBase64String(identity);
            var sealingKey = Convert.FromBase64String(sealing);
            if (identityKey.Length == 32 && ProviderAuth.ProviderIdFor(identityKey) == p.Id
                && ProviderSealingKey.VerifyBinding(identityKey, sealingKey, Convert.FromBase64String(signature)))
            {
                sealedKeys[p.Id] = Convert.ToBase64String(CheckpointKey.SealTo(sealingKey, workloadId, key));
            }
            else
            {
                Console.Error.WriteLine($"coinop: provider {p.Id} publishes a sealing key that is not bound to its identity; skipped");
            }
        }

        return sealedKeys.Count > 0 ? sealedKeys : throw new CliException("no online provider offers workloads with a verifiable sealing key");
    }
}
