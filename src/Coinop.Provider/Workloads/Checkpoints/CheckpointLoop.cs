using Coinop.Core.Protocol;
using Coinop.Core.Workloads;
using Microsoft.Extensions.Logging;

namespace Coinop.Provider.Workloads.Checkpoints;

/// <summary>
/// Uploads a copy's state every interval while it runs and a market link is up; the market keeps only the current
/// epoch's. A checkpoint that fails (a folder the copy made unreadable, a state over the size cap, a link that broke
/// mid-upload) is logged and counted, and the next interval tries again: only the copy's end or the agent's stop ends
/// the loop. The archive goes from a temp file to the link in chunks, never whole in memory.
/// </summary>
internal sealed partial class CheckpointLoop(WorkloadHost host, Func<IWorkloadLink?> currentLink, TimeProvider time, ILogger logger)
{
    private const int MaxChunk = 64 * 1024 - 1;

    public async Task RunAsync(string workloadId, long epoch, byte[] key, TimeSpan interval, CancellationToken cancellationToken)
    {
        if (!WorkloadIds.TryParse(workloadId, out var id))
        {
            return; // checkpoint chunks carry the id as a GUID; the market names every workload so
        }

        var buffer = new byte[MaxChunk];
        try
        {
            while (true)
            {
                await Task.Delay(interval, time, cancellationToken).ConfigureAwait(false);
                try
                {
                    if (!await UploadAsync(workloadId, id, epoch, key, buffer, cancellationToken).ConfigureAwait(false))
                    {
                        return; // the copy is gone
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                {
                    var outcome = ex is CheckpointTooLargeException ? "too_large" : "failed";
                    host.Metrics?.Checkpoint(outcome);
                    LogFailed(logger, workloadId, epoch, ex);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>One checkpoint; false when the copy is no longer running here.</summary>
    private async Task<bool> UploadAsync(string workloadId, Guid id, long epoch, byte[] key, byte[] buffer, CancellationToken cancellationToken)
    {
        await using var archive = await host.CheckpointAsync(workloadId, epoch, key, cancellationToken).ConfigureAwait(false);
        if (archive is null)
        {
            return false;
        }

        if (currentLink() is not { } link)
        {
            host.Metrics?.Checkpoint("no_link");
            return true;
        }

        int n;
        while ((n = await archive.Content.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
        {
            if (!await link.SendChunkAsync(ChunkFrame.KindCheckpointChunk, id, epoch, null, buffer.AsMemory(0, n), droppable: false, cancellationToken).ConfigureAwait(false))
            {
                host.Metrics?.Checkpoint("link_lost");
                return true;
            }
        }

        await link.SendAsync(new WorkloadCheckpoint(workloadId, epoch, archive.Length, archive.Summary.Sha256), cancellationToken).ConfigureAwait(false);
        host.Metrics?.Checkpoint("sent");
        LogSent(logger, workloadId, epoch, archive.Length);
        return true;
    }
}
