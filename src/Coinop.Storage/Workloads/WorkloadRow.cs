using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Coinop.Core.Text;
using Coinop.Core.Workloads;

namespace Coinop.Storage.Workloads;

/// <summary>
/// A <c>workloads</c> row as Dapper reads and writes it (times in Unix milliseconds, rates as invariant decimal text),
/// and its mapping to and from a <see cref="Workload"/> with its terms.
/// </summary>
internal sealed class WorkloadRow
{
    public string Id { get; set; } = "";
    public long Version { get; set; }
    public string Command { get; set; } = "";
    public string Args { get; set; } = "[]";
    public double CpuCores { get; set; }
    public long MemoryMb { get; set; }
    public long DurationMs { get; set; }
    public int? Port { get; set; }
    public string Restart { get; set; } = "";
    public int StandbysWanted { get; set; }
    public int Checkpointed { get; set; }
    public string Isolation { get; set; } = "sandbox";
    public string? PinnedProvider { get; set; }
    public string? SealTo { get; set; }
    public string RateMsatPerSecond { get; set; } = "0";
    public long PaidMsat { get; set; }
    public string State { get; set; } = "";
    public long Since { get; set; }
    public string? Reason { get; set; }
    public string? Provider { get; set; }
    public long Epoch { get; set; }
    public string? RevokingProvider { get; set; }
    public long? RevokingEpoch { get; set; }
    public int? RevokingCrashed { get; set; }
    public long LastContact { get; set; }
    public int Attempts { get; set; }
    public long PaidUntil { get; set; }
    public string? CheckpointId { get; set; }
    public long CreatedAt { get; set; }
    public long UpdatedAt { get; set; }

    public static WorkloadRow From(Workload w, WorkloadTerms terms, long version, DateTimeOffset now) => new()
    {
        Id = w.Id,
        Version = version,
        Command = w.Spec.Command,
        Args = JsonSerializer.Serialize(w.Spec.Args.ToArray(), WorkloadStoreJson.Default.StringArray),
        CpuCores = w.Spec.CpuCores,
        MemoryMb = w.Spec.MemoryMb,
        DurationMs = (long)w.Spec.Duration.TotalMilliseconds,
        Port = w.Spec.Port,
        Restart = w.Spec.Restart.ToString(),
        StandbysWanted = w.Spec.Standbys,
        Checkpointed = w.Spec.Checkpointed ? 1 : 0,
        Isolation = WireEnum.Name(w.Spec.Isolation),
        PinnedProvider = terms.PinnedProvider,
        SealTo = terms.SealTo,
        RateMsatPerSecond = terms.RateMsatPerSecond.ToString(CultureInfo.InvariantCulture),
        PaidMsat = terms.PaidMsat,
        State = WireEnum.Name(w.State),
        Since = w.Since.ToUnixTimeMilliseconds(),
        Reason = w.Reason,
        Provider = w.Provider,
        Epoch = w.Epoch,
        RevokingProvider = w.Revoking?.Provider,
        RevokingEpoch = w.Revoking?.Epoch,
        RevokingCrashed = w.Revoking is { } r ? (r.Crashed ? 1 : 0) : null,
        LastContact = w.LastContact.ToUnixTimeMilliseconds(),
        Attempts = w.Attempts,
        PaidUntil = w.PaidUntil.ToUnixTimeMilliseconds(),
        CheckpointId = w.Checkpoint,
        CreatedAt = w.CreatedAt.ToUnixTimeMilliseconds(),
        UpdatedAt = now.ToUnixTimeMilliseconds(),
    };

    public StoredWorkload ToStored(IEnumerable<WorkloadHistoryRow> history, IEnumerable<WorkloadStandbyRow> standbys, IEnumerable<WorkloadRateRow> rates)
    {
        if (!RestartPolicy.TryParse(Restart, out var restart, out var error))
        {
            throw new InvalidOperationException($"workload {Id} has a bad restart policy in the store: {error}");
        }

        var spec = new WorkloadSpec(Command, JsonSerializer.Deserialize(Args, WorkloadStoreJson.Default.StringArray) ?? [], CpuCores, MemoryMb,
            TimeSpan.FromMilliseconds(DurationMs), Port, restart, StandbysWanted, Checkpointed != 0, WireEnum.Parse<WorkloadIsolation>(Isolation));
        var workload = new Workload(Id, spec, WireEnum.Parse<WorkloadState>(State), Time(Since), Reason, Provider, Epoch,
            RevokingProvider is null ? null : new PendingRevoke(RevokingProvider, RevokingEpoch!.Value, RevokingCrashed == 1),
            Time(LastContact),
            [.. standbys.Select(s => new WorkloadStandby(s.ProviderId, Time(s.LastHeard)))],
            Attempts, Time(PaidUntil), CheckpointId,
            [.. history.Select(h => new WorkloadHistoryEntry(WireEnum.Parse<WorkloadState>(h.State), h.Provider, Time(h.At)))],
            Time(CreatedAt));
        var terms = new WorkloadTerms(PinnedProvider, SealTo, Rate(RateMsatPerSecond), PaidMsat);
        return new StoredWorkload(workload, Version, terms, rates.ToDictionary(r => r.ProviderId, r => Rate(r.MsatPerSecond), StringComparer.Ordinal));
    }

    private static DateTimeOffset Time(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);

    private static decimal Rate(string text) => decimal.Parse(text, NumberStyles.Number, CultureInfo.InvariantCulture);
}

/// <summary>A <c>workload_history</c> row.</summary>
internal sealed class WorkloadHistoryRow
{
    public string WorkloadId { get; set; } = "";
    public string State { get; set; } = "";
    public string? Provider { get; set; }
    public long At { get; set; }
}

/// <summary>A <c>workload_standbys</c> row.</summary>
internal sealed class WorkloadStandbyRow
{
    public string WorkloadId { get; set; } = "";
    public string ProviderId { get; set; } = "";
    public long LastHeard { get; set; }
}

/// <summary>A <c>workload_rates</c> row.</summary>
internal sealed class WorkloadRateRow
{
    public string WorkloadId { get; set; } = "";
    public string ProviderId { get; set; } = "";
    public string MsatPerSecond { get; set; } = "0";
}

[JsonSerializable(typeof(string[]))]
internal sealed partial class WorkloadStoreJson : JsonSerializerContext;
