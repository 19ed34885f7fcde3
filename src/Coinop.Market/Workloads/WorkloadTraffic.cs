using System.Collections.Concurrent;
using System.Security.Cryptography;
using Coinop.Core.Identity;
using Coinop.Core.Protocol;
using Coinop.Core.Workloads;
using Coinop.Market.Gateway;
using Coinop.Storage.Workloads;
using Microsoft.Extensions.Logging;

namespace Coinop.Market.Workloads;

/// <summary>
/// The market's end of the workload protocol on every provider session: checks what providers send (ids, sizes, usage
/// signatures made with the provider's own identity key, checkpoint sizes and hashes), reassembles checkpoint uploads,
/// routes output of current copies to the log feed, and queues everything else for the <see cref="WorkloadSupervisor"/>.
/// Runs on the sessions' reader loops: it never blocks.
/// </summary>
public sealed partial class WorkloadTraffic(WorkloadSupervisor supervisor, WorkloadLogFeed logs, TimeProvider time, ILogger<WorkloadTraffic> logger) : IProviderWorkloads
{
    private const int MaxCopiesPerHeartbeat = 10_000;
    private const int MaxSealedReceipt = 4096;
    private const int MaxReason = 512;

    /// <summary>How far past the market's clock a usage window may end: a provider's clock may run ahead, not by a day.</summary>
    private static readonly TimeSpan MaxUsageAhead = TimeSpan.FromMinutes(1);

    private readonly ConcurrentDictionary<(ProviderSession Session, Guid Workload), Upload> _uploads = new();

    public string? OnCapabilities(ProviderSession session) => Queue(session, new ProviderUpCommand(session));

    public string? OnMessage(ProviderSession session, ProtocolMessage message)
    {
        var provider = session.ProviderId;
        switch (message)
        {
            case WorkloadHeartbeat h:
                if (h.Copies is null || h.Standbys is null || h.Copies.Count + h.Standbys.Count > MaxCopiesPerHeartbeat
                    || string.IsNullOrEmpty(h.Incarnation) || h.Incarnation.Length > 128
                    || h.Copies.Any(c => c is null || !WorkloadIds.TryParse(c.WorkloadId, out _)) || h.Standbys.Any(s => !WorkloadIds.TryParse(s, out _)))
                {
                    return "invalid workload heartbeat";
                }

                return Queue(session, new HeartbeatCommand(session, h));
            case WorkloadExited e when WorkloadIds.TryParse(e.WorkloadId, out _):
                return Queue(session, new ReportCommand(e.WorkloadId, new WorkloadInput.CopyExited(provider, e.Epoch, e.ExitCode)));
            case WorkloadLost l when WorkloadIds.TryParse(l.WorkloadId, out _) && l.Reason is { Length: > 0 and <= MaxReason }:
                // The reason is stored and shown: an agent's error text may carry newlines, never NUL (PostgreSQL refuses it).
                return Queue(session, new ReportCommand(l.WorkloadId, new WorkloadInput.CopyLost(provider, l.Epoch, ProviderText.Clean(l.Reason))));
            case WorkloadUsage u when u.Record is not null:
                // Signed by the provider's own identity key (its id is that key's hash), for this workload and epoch, for time that has passed.
                var record = UsageRecord.Verify(u.Record);
                if (record is null || record.WorkloadId != u.WorkloadId || record.Epoch != u.Epoch
                    || ProviderIdOf(u.Record.PublicKey) != provider || !WorkloadIds.TryParse(u.WorkloadId, out _)
                    || record.WindowEnd > (time.GetUtcNow() + MaxUsageAhead).ToUnixTimeMilliseconds())
                {
                    LogBadUsage(logger, provider, u.WorkloadId ?? "");
                    return null;
                }

                return Queue(session, new UsageCommand(provider, record, u.Record));
            case WorkloadReceipt r when WorkloadIds.TryParse(r.WorkloadId, out _) && r.Sealed is { Length: > 0 and <= MaxSealedReceipt }
                                        && System.Buffers.Text.Base64.IsValid(r.Sealed):
                return Queue(session, new ReceiptCommand(provider, r.WorkloadId, r.Epoch, r.Sealed));
            case WorkloadCheckpoint c when WorkloadIds.TryParse(c.WorkloadId, out var workload):
                return FinishUpload(session, workload, c);
            default:
                return "invalid workload message";
        }
    }

    public string? OnChunk(ProviderSession session, byte kind, Guid workloadId, long epoch, ReadOnlySpan<byte> payload)
    {
        var id = WorkloadIds.Format(workloadId);
        if (kind == ChunkFrame.KindWorkloadLog && (payload.Length < 1 || payload[0] is not (1 or 2)))
        {
            return "bad workload log frame";
        }

        // Output and checkpoint data of a copy that is not (or no longer) the current one are dropped: only the copy
        // allowed to run speaks. For checkpoints this also bounds what a provider can make the market buffer: one
        // upload per copy it really runs, not one per workload id it makes up.
        if (!supervisor.IsCurrentCopy(id, session.ProviderId, epoch))
        {
            return null;
        }

        if (kind == ChunkFrame.KindWorkloadLog)
        {
            if (payload.Length > 1 && !logs.TryAdd(new WorkloadLogChunk(id, epoch, payload[0] == 1 ? "stdout" : "stderr", time.GetUtcNow(), payload[1..].ToArray())))
            {
                LogOutputDropped(logger, id);
            }

            return null;
        }

        var upload = _uploads.GetOrAdd((session, workloadId), _ => new Upload());
        if (upload.Epoch != epoch)
        {
            upload.Restart(epoch);
        }

        if (!upload.Overflowed && upload.Data.Length + payload.Length > supervisor.MaxCheckpointBytes)
        {
            upload.Overflowed = true;
            upload.Data.SetLength(0);
        }

        if (!upload.Overflowed)
        {
            upload.Data.Write(payload);
        }

        return null;
    }

    public void OnDisconnected(ProviderSession session)
    {
        foreach (var key in _uploads.Keys.Where(k => k.Session == session))
        {
            _uploads.TryRemove(key, out _);
        }

        supervisor.Post(new ProviderGoneCommand(session));
    }

    private string? FinishUpload(ProviderSession session, Guid workload, WorkloadCheckpoint end)
    {
        _uploads.TryRemove((session, workload), out var upload);
        var data = upload is { Overflowed: false } && upload.Epoch == end.Epoch ? upload.Data.ToArray() : null;
        if (data is null || data.LongLength != end.Size
            || !string.Equals(Convert.ToHexStringLower(SHA256.HashData(data)), end.Sha256, StringComparison.OrdinalIgnoreCase))
        {
            LogBadCheckpoint(logger, session.ProviderId, end.WorkloadId, end.Size, supervisor.MaxCheckpointBytes);
            return null;
        }

        return Queue(session, new CheckpointCommand(session.ProviderId, end.WorkloadId, end.Epoch, data, end.Sha256.ToLowerInvariant()));
    }

    /// <summary>Queues a command for the supervisor, or closes a session whose provider floods the queue (nothing it queued is obeyed).</summary>
    private string? Queue(ProviderSession session, Command command)
    {
        if (supervisor.TryPost(session.ProviderId, session.LinkEpoch, command))
        {
            return null;
        }

        LogFlooded(logger, session.ProviderId);
        return "too many workload messages queued";
    }

    private static string? ProviderIdOf(string publicKeyBase64)
    {
        Span<byte> key = stackalloc byte[35];
        return Convert.TryFromBase64String(publicKeyBase64, key, out var written) && written == 32 ? ProviderAuth.ProviderIdFor(key[..32]) : null;
    }

    /// <summary>A checkpoint upload in progress on one session.</summary>
    private sealed class Upload
    {
        public long Epoch { get; private set; } = -1;

        public MemoryStream Data { get; } = new();

        public bool Overflowed { get; set; }

        public void Restart(long epoch)
        {
            Epoch = epoch;
            Data.SetLength(0);
            Overflowed = false;
        }
    }
}
