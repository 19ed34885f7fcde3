namespace Coinop.Market.Gateway;

/// <summary>
/// A process-wide count of offer changes (a provider's capabilities applied, locally or as another node published them):
/// indexes built from the routing snapshot (<c>Inference.OfferIndex</c>) are rebuilt when it moves. Changes are rare,
/// so one counter for every market in the process costs at most a few extra rebuilds.
/// </summary>
public static class OfferChanges
{
    private static long _version;

    public static long Version => Interlocked.Read(ref _version);

    /// <summary>Called after the new offers are visible.</summary>
    public static void Changed() => Interlocked.Increment(ref _version);
}
