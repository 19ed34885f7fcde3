using Coinop.Core.Protocol;

namespace Coinop.Market.Gateway;

/// <summary>
/// Where a provider session hands workload traffic: called on the session's reader loop, so implementations only
/// validate and queue, never block. A returned string is a protocol error that closes the socket.
/// </summary>
public interface IProviderWorkloads
{
    /// <summary>The provider sent (new) capabilities; it may run workloads now. A returned string is a protocol error.</summary>
    string? OnCapabilities(ProviderSession session);

    /// <summary>A <c>workload_*</c> control message from the provider.</summary>
    string? OnMessage(ProviderSession session, ProtocolMessage message);

    /// <summary>A workload log or checkpoint chunk (<see cref="ChunkFrame.KindWorkloadLog"/>, <see cref="ChunkFrame.KindCheckpointChunk"/>).</summary>
    string? OnChunk(ProviderSession session, byte kind, Guid workloadId, long epoch, ReadOnlySpan<byte> payload);

    /// <summary>The session ended (the provider may come back on a new one).</summary>
    void OnDisconnected(ProviderSession session);
}
