using Coinop.Core.Protocol;
using Coinop.Core.Workloads;
using Coinop.Provider.Workloads.Sandboxes;
using Microsoft.Extensions.Logging;

namespace Coinop.Provider.Workloads;

/// <summary>
/// Sends what copies produce to the market while a link is up: their output (dropped rather than queued when no market
/// listens or the link is busy) and their checkpoints (every interval, whole or not at all). The market keeps either only
/// from the copy allowed to run.
/// </summary>
internal sealed class CopyUploads(WorkloadHost host, Func<IWorkloadLink?> currentLink, TimeProvider time, ILogger logger)
{
    private const int MaxChunk = 64 * 1024 - 1;

    /// <summary>Relays every copy's output as log chunks until <paramref name="ct"/> ends.</summary>
    public async Task OutputLoopAsync(CancellationToken ct)
    {
        try
        {
            await foreach (var log in host.Logs.ReadAllAsync(ct))
            {
                if (currentLink() is not { } link || !WorkloadIds.TryParse(log.WorkloadId, out var id))
                {
                    continue; // output produced while no market listens is not kept
                }

                var lead = log.Stream == OutputStream.Stdout ? (byte)1 : (byte)2;
                for (var offset = 0; offset < log.Data.Length; offset += MaxChunk)
                {
                    var slice = log.Data.Slice(offset, Math.Min(MaxChunk, log.Data.Length - offset));
                    await link.SendChunkAsync(ChunkFrame.KindWorkloadLog, id, log.Epoch, lead, slice, droppable: true, ct);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// Uploads the copy's state every interval while it runs (until <paramref name="stopping"/> or <paramref name="copyEnded"/>)
    /// and a link is up; a failed attempt is logged and counted and the next one follows (<see cref="Checkpoints.CheckpointLoop"/>).
    /// </summary>
    public async Task CheckpointLoopAsync(string workloadId, long epoch, byte[] key, TimeSpan interval, CancellationToken stopping, CancellationToken copyEnded)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stopping, copyEnded);
        await new Checkpoints.CheckpointLoop(host, currentLink, time, logger).RunAsync(workloadId, epoch, key, interval, linked.Token).ConfigureAwait(false);
    }
}
