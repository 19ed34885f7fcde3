using System.Collections.Frozen;
using Coinop.Core.Pricing;
using Coinop.Core.Protocol;

namespace Coinop.Market.Gateway;

/// <summary>
/// What a provider's capabilities message must be before the market routes by it: a bounded list of model offers with
/// non-negative prices, a concurrency of at least one, and, when it offers workloads, a finite capacity with prices
/// under <see cref="WorkloadPrice.MaxRate"/> and a sealing key of the right size. Every name (model, backend, agent
/// version, isolation, incarnation) is short clean text: the market shows and stores them, and PostgreSQL refuses NUL.
/// The provider is hostile until proven otherwise; a message that fails here is a protocol error that closes its link.
/// </summary>
internal static class CapabilitiesCheck
{
    private const int MaxModels = 1024;
    private const int MaxNameLength = 256;

    /// <summary>Null and the offers by model when <paramref name="capabilities"/> is valid; else what is wrong with it.</summary>
    public static string? Problem(CapabilitiesMessage capabilities, out FrozenDictionary<string, ModelOffer> offersByModel)
    {
        offersByModel = FrozenDictionary<string, ModelOffer>.Empty;
        if (capabilities.Models is null || capabilities.Models.Count > MaxModels || capabilities.MaxConcurrent < 1 || !IsName(capabilities.AgentVersion))
        {
            return "invalid capabilities";
        }

        var offers = new Dictionary<string, ModelOffer>(capabilities.Models.Count, StringComparer.Ordinal);
        foreach (var offer in capabilities.Models)
        {
            if (offer is null || !IsName(offer.Model) || !IsName(offer.Backend)
                || offer.InputMsatPerMtok < 0 || offer.OutputMsatPerMtok < 0 || offer.MaxConcurrent < 0)
            {
                return "invalid model offer";
            }

            offers[offer.Model] = offer;
        }

        if (capabilities.Workloads is { } workloads && Problem(workloads) is { } problem)
        {
            return problem;
        }

        offersByModel = offers.ToFrozenDictionary(StringComparer.Ordinal);
        return null;
    }

    private static string? Problem(WorkloadCapacity w) =>
        !double.IsFinite(w.CpuCores) || w.CpuCores <= 0 || w.MemoryMb <= 0 || w.CpuMsatPerCoreSecond is < 0 or > WorkloadPrice.MaxRate
        || w.MemoryMsatPerGbSecond is < 0 or > WorkloadPrice.MaxRate || !IsName(w.Isolation) || !IsName(w.Incarnation)
        || !IsBase64Of(w.SealingKey, 32) || !IsBase64Of(w.SealingKeySignature, 64)
            ? "invalid workload capacity"
            : null;

    /// <summary>A name the market shows and stores (a model, a backend, an incarnation): short, and clean text.</summary>
    private static bool IsName(string? text) => text is { Length: > 0 and <= MaxNameLength } && ProviderText.IsClean(text);

    private static bool IsBase64Of(string? text, int bytes) =>
        text is not null && System.Buffers.Text.Base64.IsValid(text, out var decoded) && decoded == bytes;
}
