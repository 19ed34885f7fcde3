namespace Coinop.Market.Gateway;

/// <summary>How many requests wait for a provider's slot, per model (shown in <c>GET /api/providers</c> load).</summary>
public interface IModelQueueDepths
{
    int DepthOf(string model);
}
