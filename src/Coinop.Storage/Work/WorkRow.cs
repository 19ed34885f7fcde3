using Coinop.Core.Text;
using Coinop.Core.Work;

namespace Coinop.Storage.Work;

/// <summary>A <c>work_items</c> row as Dapper reads and writes it (times in Unix milliseconds), and its mapping to and from a <see cref="WorkItem"/>.</summary>
internal sealed class WorkRow
{
    public string Id { get; set; } = "";
    public string Kind { get; set; } = "";
    public string Disposition { get; set; } = "";
    public long Fence { get; set; }
    public long Version { get; set; }
    public string? LeaseOwnerId { get; set; }
    public string? LeaseIncarnationId { get; set; }
    public string? LeaseToken { get; set; }
    public long? LeaseClaimedAt { get; set; }
    public long? LeaseExpiresAt { get; set; }
    public string? StartedOwnerId { get; set; }
    public string? StartedIncarnationId { get; set; }
    public long? StartedAt { get; set; }
    public long? Deadline { get; set; }
    public string? AbandonRequestedBy { get; set; }
    public long? AbandonRequestedAt { get; set; }
    public string? AbandonReason { get; set; }
    public string? Terminal { get; set; }
    public long? TerminalAt { get; set; }
    public string? TerminalReason { get; set; }
    public string? AbandonWriter { get; set; }
    public string? AbandonedOwnerId { get; set; }
    public string? AbandonedIncarnationId { get; set; }
    public string? AbandonEvidence { get; set; }
    public string? Progress { get; set; }
    public long CreatedAt { get; set; }
    public long UpdatedAt { get; set; }

    public static WorkRow From(WorkItem item, long version, DateTimeOffset now) => new()
    {
        Id = item.Id,
        Kind = item.Kind,
        Disposition = WireEnum.Name(item.Disposition),
        Fence = item.Fence,
        Version = version,
        LeaseOwnerId = item.Lease?.Owner.OwnerId,
        LeaseIncarnationId = item.Lease?.Owner.IncarnationId,
        LeaseToken = item.Lease?.Token,
        LeaseClaimedAt = item.Lease?.ClaimedAt.ToUnixTimeMilliseconds(),
        LeaseExpiresAt = item.Lease?.ExpiresAt.ToUnixTimeMilliseconds(),
        StartedOwnerId = item.Started?.Owner.OwnerId,
        StartedIncarnationId = item.Started?.Owner.IncarnationId,
        StartedAt = item.Started?.At.ToUnixTimeMilliseconds(),
        Deadline = item.Deadline?.ToUnixTimeMilliseconds(),
        AbandonRequestedBy = item.AbandonRequest?.RequestedBy,
        AbandonRequestedAt = item.AbandonRequest?.At.ToUnixTimeMilliseconds(),
        AbandonReason = item.AbandonRequest?.Reason,
        Terminal = item.Terminal is { } terminal ? WireEnum.Name(terminal.Kind) : null,
        TerminalAt = item.Terminal?.At.ToUnixTimeMilliseconds(),
        TerminalReason = item.Terminal?.Reason,
        AbandonWriter = item.Terminal?.Abandon is { } abandon ? WireEnum.Name(abandon.Writer) : null,
        AbandonedOwnerId = item.Terminal?.Abandon?.Owner?.OwnerId,
        AbandonedIncarnationId = item.Terminal?.Abandon?.Owner?.IncarnationId,
        AbandonEvidence = item.Terminal?.Abandon?.Evidence,
        Progress = item.Progress,
        CreatedAt = item.CreatedAt.ToUnixTimeMilliseconds(),
        UpdatedAt = now.ToUnixTimeMilliseconds(),
    };

    public WorkItem ToItem() => new(
        Id,
        Kind,
        WireEnum.Parse<RecoveryDisposition>(Disposition),
        Fence,
        LeaseOwnerId is null
            ? null
            : new WorkLease(new LeaseOwner(LeaseOwnerId, LeaseIncarnationId!), LeaseToken!, Fence, Time(LeaseClaimedAt!.Value), Time(LeaseExpiresAt!.Value)),
        StartedOwnerId is null ? null : new WorkStarted(new LeaseOwner(StartedOwnerId, StartedIncarnationId!), Time(StartedAt!.Value)),
        Deadline is { } deadline ? Time(deadline) : null,
        AbandonRequestedBy is null ? null : new AbandonRequest(AbandonRequestedBy, Time(AbandonRequestedAt!.Value), AbandonReason),
        Terminal is null
            ? null
            : new WorkTerminal(WireEnum.Parse<WorkTerminalKind>(Terminal), Time(TerminalAt!.Value), TerminalReason,
                AbandonWriter is null
                    ? null
                    : new AbandonEvidence(WireEnum.Parse<Coinop.Core.Work.AbandonWriter>(AbandonWriter),
                        AbandonedOwnerId is null ? null : new LeaseOwner(AbandonedOwnerId, AbandonedIncarnationId!), AbandonEvidence ?? "")),
        Progress,
        Time(CreatedAt));

    private static DateTimeOffset Time(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);
}
