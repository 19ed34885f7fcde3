using Coinop.Core.Protocol;

namespace Coinop.Provider.Workloads;

/// <summary>The market link as the workload agent uses it: control messages and binary chunks.</summary>
internal interface IWorkloadLink
{
    ValueTask<bool> SendAsync(ProtocolMessage message, CancellationToken cancellationToken);

    /// <summary>Sends <c>[kind][id][epoch](lead)data</c>; a <paramref name="droppable"/> chunk is dropped rather than waited for when the link is busy.</summary>
    ValueTask<bool> SendChunkAsync(byte kind, Guid id, long epoch, byte? lead, ReadOnlyMemory<byte> data, bool droppable, CancellationToken cancellationToken);
}
