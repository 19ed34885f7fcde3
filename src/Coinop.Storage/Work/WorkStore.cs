using System.Data.Common;
using System.Security.Cryptography;
using Coinop.Core.Work;
using Dapper;

namespace Coinop.Storage.Work;

/// <summary>The SQL implementation, shared by both dialects.</summary>
public sealed class WorkStore(Database database, TimeProvider time) : IWorkStore
{
    // Re-reads after losing a compare-and-set; only sustained writes to one row could exhaust this.
    private const int MaxConflicts = 64;

    private const string Columns = """
        id AS Id, kind AS Kind, disposition AS Disposition, fence AS Fence, version AS Version,
        lease_owner_id AS LeaseOwnerId, lease_incarnation_id AS LeaseIncarnationId, lease_token AS LeaseToken,
        lease_claimed_at AS LeaseClaimedAt, lease_expires_at AS LeaseExpiresAt,
        started_owner_id AS StartedOwnerId, started_incarnation_id AS StartedIncarnationId, started_at AS StartedAt,
        deadline AS Deadline, abandon_requested_by AS AbandonRequestedBy, abandon_requested_at AS AbandonRequestedAt,
        abandon_reason AS AbandonReason, terminal AS Terminal, terminal_at AS TerminalAt, terminal_reason AS TerminalReason,
        abandon_writer AS AbandonWriter, abandoned_owner_id AS AbandonedOwnerId, abandoned_incarnation_id AS AbandonedIncarnationId,
        abandon_evidence AS AbandonEvidence, progress AS Progress, created_at AS CreatedAt, updated_at AS UpdatedAt
        """;

    public Task<WorkDecision> RegisterAsync(WorkRegistration registration, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, t) =>
        {
            var now = Now();
            var decision = WorkKernel.Register(registration, now);
            if (!decision.Accepted)
            {
                return decision;
            }

            var row = WorkRow.From(decision.Item!, version: 1, now);
            var inserted = await c.ExecuteAsync(new CommandDefinition(
                """
                INSERT INTO work_items (id, kind, disposition, fence, version, deadline, created_at, updated_at)
                VALUES (@Id, @Kind, @Disposition, @Fence, @Version, @Deadline, @CreatedAt, @UpdatedAt)
                ON CONFLICT (id) DO NOTHING
                """, row, t, cancellationToken: cancellationToken));
            if (inserted == 0)
            {
                return WorkDecision.Refuse(await ReadAsync(c, t, registration.Id, cancellationToken) is { } existing ? existing.ToItem() : null,
                    WorkRefusal.AlreadyRegistered);
            }

            await AppendAsync(c, t, decision.Item!, decision.Transition!, now, cancellationToken);
            return decision;
        }, cancellationToken);

    public Task<WorkDecision> ClaimAsync(string id, LeaseOwner owner, LeaseTimings timings, CancellationToken cancellationToken) =>
        DecideAsync(id, (item, now) => WorkKernel.Claim(item, owner, NewToken(), timings, now), cancellationToken);

    public Task<WorkDecision> GrantAsync(string id, long expectedFence, LeaseOwner owner, LeaseTimings timings, CancellationToken cancellationToken) =>
        DecideAsync(id, (item, now) => WorkKernel.Grant(item, expectedFence, owner, NewToken(), timings, now), cancellationToken);

    public Task<WorkDecision> RenewAsync(string id, LeaseProof proof, LeaseTimings timings, CancellationToken cancellationToken) =>
        DecideAsync(id, (item, now) => WorkKernel.Renew(item, proof, timings, now), cancellationToken);

    public Task<WorkDecision> RecordStartedAsync(string id, LeaseProof proof, CancellationToken cancellationToken) =>
        DecideAsync(id, (item, now) => WorkKernel.RecordStarted(item, proof, now), cancellationToken);

    public Task<WorkDecision> WriteProgressAsync(string id, LeaseProof proof, string progress, CancellationToken cancellationToken) =>
        DecideAsync(id, (item, now) => WorkKernel.Write(item, proof, WorkEventKinds.Progress, progress, now), cancellationToken);

    public Task<WorkDecision> WriteUsageAsync(string id, LeaseProof proof, string usage, CancellationToken cancellationToken) =>
        DecideAsync(id, (item, now) => WorkKernel.Write(item, proof, WorkEventKinds.Usage, usage, now), cancellationToken);

    public Task<WorkDecision> CompleteAsync(string id, LeaseProof proof, WorkTerminalKind kind, string? reason, CancellationToken cancellationToken) =>
        DecideAsync(id, (item, now) => WorkKernel.Complete(item, proof, kind, reason, now), cancellationToken);

    public Task<WorkDecision> FinishAsync(string id, WorkTerminalKind kind, string? reason, CancellationToken cancellationToken) =>
        DecideAsync(id, (item, now) => WorkKernel.Finish(item, kind, reason, now), cancellationToken);

    public Task<WorkDecision> RequestAbandonAsync(string id, string requestedBy, string? reason, CancellationToken cancellationToken) =>
        DecideAsync(id, (item, now) => WorkKernel.RequestAbandon(item, new AbandonRequest(requestedBy, now, reason)), cancellationToken);

    public Task<WorkDecision> RevokeAsync(string id, long expectedFence, string reason, CancellationToken cancellationToken) =>
        DecideAsync(id, (item, _) => WorkKernel.Revoke(item, expectedFence, reason), cancellationToken);

    public async Task<WorkSweepReport> SweepAsync(IReadOnlyCollection<DeathEvidence> deaths, int limit, CancellationToken cancellationToken)
    {
        var now = Now();
        var parameters = new DynamicParameters(new { now = now.ToUnixTimeMilliseconds(), limit });
        // Death evidence names few owners; one parameter each keeps the SQL the same on both dialects.
        var deadOwners = deaths.Select(d => d.Owner.OwnerId).Distinct().Select((owner, i) =>
        {
            parameters.Add($"dead{i}", owner);
            return $"@dead{i}";
        }).ToList();
        var byDeadOwner = deadOwners.Count == 0
            ? ""
            : $"OR lease_owner_id IN ({string.Join(", ", deadOwners)}) OR started_owner_id IN ({string.Join(", ", deadOwners)})";
        // Only rows the sweep could change: a lapsed lease, a passed deadline, a pending abandon request, a dead owner.
        var ids = await database.ReadAsync(c => c.QueryAsync<string>(new CommandDefinition(
            $"""
            SELECT id FROM work_items
            WHERE terminal IS NULL
              AND (lease_expires_at <= @now OR deadline <= @now OR abandon_requested_at IS NOT NULL {byDeadOwner})
            ORDER BY id
            LIMIT @limit
            """, parameters, cancellationToken: cancellationToken)), cancellationToken);

        List<string> terminalised = [], released = [], lapsed = [];
        foreach (var id in ids)
        {
            var decision = await DecideAsync(id, (item, at) => WorkKernel.Sweep(item, deaths, at), cancellationToken);
            switch (decision)
            {
                case { Changed: true, Item.IsTerminal: true }:
                    terminalised.Add(id);
                    break;
                case { Changed: true }:
                    released.Add(id);
                    break;
                case { Item: { Disposition: RecoveryDisposition.OwnerBound, Started: not null, Lease: { } lease } } when !lease.IsLiveAt(now):
                    lapsed.Add(id);
                    break;
            }
        }

        return new WorkSweepReport(terminalised, released, lapsed);
    }

    public async Task<OwnerDrainReport> DrainOwnerAsync(LeaseOwner owner, CancellationToken cancellationToken)
    {
        var ids = await database.ReadAsync(c => c.QueryAsync<string>(new CommandDefinition(
            """
            SELECT id FROM work_items
            WHERE terminal IS NULL AND (lease_owner_id = @ownerId OR started_owner_id = @ownerId)
            ORDER BY id
            """, new { ownerId = owner.OwnerId }, cancellationToken: cancellationToken)), cancellationToken);

        List<string> abandoned = [], released = [], deferred = [];
        foreach (var id in ids)
        {
            var decision = await DecideAsync(id, (item, now) => WorkKernel.DrainOwner(item, owner, now), cancellationToken);
            (decision switch
            {
                { Refusal: WorkRefusal.Busy } => deferred,
                { Changed: true, Item.IsTerminal: true } => abandoned,
                { Changed: true } => released,
                _ => null,
            })?.Add(id);
        }

        return new OwnerDrainReport(abandoned, released, deferred);
    }

    public Task<ObservedWork?> ObserveAsync(string id, CancellationToken cancellationToken) =>
        database.ReadAsync(async c => await ReadAsync(c, null, id, cancellationToken) is { } row ? WorkKernel.Observe(row.ToItem(), Now()) : null,
            cancellationToken);

    public Task<IReadOnlyList<ObservedWork>> ListOpenAsync(string? kind, int limit, CancellationToken cancellationToken) =>
        database.ReadAsync<IReadOnlyList<ObservedWork>>(async c =>
        {
            var rows = await c.QueryAsync<WorkRow>(new CommandDefinition(
                $"SELECT {Columns} FROM work_items WHERE terminal IS NULL AND (@kind IS NULL OR kind = @kind) ORDER BY created_at, id LIMIT @limit",
                new { kind, limit }, cancellationToken: cancellationToken));
            var now = Now();
            return [.. rows.Select(r => WorkKernel.Observe(r.ToItem(), now))];
        }, cancellationToken);

    public Task<IReadOnlyList<WorkEvent>> HistoryAsync(string id, CancellationToken cancellationToken) =>
        database.ReadAsync<IReadOnlyList<WorkEvent>>(async c =>
        {
            var rows = await c.QueryAsync<EventRow>(new CommandDefinition(
                """
                SELECT seq AS Seq, work_id AS WorkId, occurred_at AS OccurredAt, kind AS Kind, fence AS Fence, writer AS Writer,
                       owner_id AS OwnerId, incarnation_id AS IncarnationId, detail AS Detail
                FROM work_events WHERE work_id = @id ORDER BY seq
                """, new { id }, cancellationToken: cancellationToken));
            return [.. rows.Select(r => new WorkEvent(r.Seq, r.WorkId, DateTimeOffset.FromUnixTimeMilliseconds(r.OccurredAt), r.Kind, r.Fence,
                r.Writer, r.OwnerId is null ? null : new LeaseOwner(r.OwnerId, r.IncarnationId ?? ""), r.Detail))];
        }, cancellationToken);

    /// <summary>Read, decide, compare-and-set; on a lost race read again and decide on what the winner wrote.</summary>
    private Task<WorkDecision> DecideAsync(string id, Func<WorkItem, DateTimeOffset, WorkDecision> decide, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, t) =>
        {
            for (var conflicts = 0; ; conflicts++)
            {
                var row = await ReadAsync(c, t, id, cancellationToken);
                if (row is null)
                {
                    return WorkDecision.Refuse(null, WorkRefusal.NotFound);
                }

                var now = Now();
                var decision = decide(row.ToItem(), now);
                if (!decision.Changed)
                {
                    return decision;
                }

                var next = WorkRow.From(decision.Item!, row.Version + 1, now);
                var parameters = new DynamicParameters(next);
                parameters.Add("ReadVersion", row.Version);
                parameters.Add("ReadFence", row.Fence);
                var updated = await c.ExecuteAsync(new CommandDefinition(
                    """
                    UPDATE work_items SET
                        fence = @Fence, version = @Version,
                        lease_owner_id = @LeaseOwnerId, lease_incarnation_id = @LeaseIncarnationId, lease_token = @LeaseToken,
                        lease_claimed_at = @LeaseClaimedAt, lease_expires_at = @LeaseExpiresAt,
                        started_owner_id = @StartedOwnerId, started_incarnation_id = @StartedIncarnationId, started_at = @StartedAt,
                        abandon_requested_by = @AbandonRequestedBy, abandon_requested_at = @AbandonRequestedAt, abandon_reason = @AbandonReason,
                        terminal = @Terminal, terminal_at = @TerminalAt, terminal_reason = @TerminalReason,
                        abandon_writer = @AbandonWriter, abandoned_owner_id = @AbandonedOwnerId,
                        abandoned_incarnation_id = @AbandonedIncarnationId, abandon_evidence = @AbandonEvidence,
                        progress = @Progress, updated_at = @UpdatedAt
                    WHERE id = @Id AND version = @ReadVersion AND fence = @ReadFence AND terminal IS NULL
                    """, parameters, t, cancellationToken: cancellationToken));
                if (updated == 1)
                {
                    if (decision.Transition is { } transition)
                    {
                        await AppendAsync(c, t, decision.Item!, transition, now, cancellationToken);
                    }

                    return decision;
                }

                if (conflicts == MaxConflicts)
                {
                    throw new InvalidOperationException($"work item {id} kept changing under {MaxConflicts} attempts to update it");
                }
            }
        }, cancellationToken);

    private static Task<WorkRow?> ReadAsync(DbConnection c, DbTransaction? t, string id, CancellationToken cancellationToken) =>
        c.QuerySingleOrDefaultAsync<WorkRow>(new CommandDefinition(
            $"SELECT {Columns} FROM work_items WHERE id = @id", new { id }, t, cancellationToken: cancellationToken));

    private static Task AppendAsync(DbConnection c, DbTransaction t, WorkItem item, WorkTransition transition, DateTimeOffset now, CancellationToken cancellationToken) =>
        c.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO work_events (work_id, occurred_at, kind, fence, writer, owner_id, incarnation_id, detail)
            VALUES (@WorkId, @OccurredAt, @Kind, @Fence, @Writer, @OwnerId, @IncarnationId, @Detail)
            """,
            new
            {
                WorkId = item.Id,
                OccurredAt = now.ToUnixTimeMilliseconds(),
                transition.Kind,
                item.Fence,
                transition.Writer,
                OwnerId = transition.Owner?.OwnerId,
                IncarnationId = transition.Owner?.IncarnationId,
                transition.Detail,
            }, t, cancellationToken: cancellationToken));

    /// <summary>Whole milliseconds, the store's resolution, so a decision and the row it becomes agree exactly.</summary>
    private DateTimeOffset Now() => DateTimeOffset.FromUnixTimeMilliseconds(time.GetUtcNow().ToUnixTimeMilliseconds());

    private static string NewToken() => RandomNumberGenerator.GetHexString(32, lowercase: true);

    private sealed class EventRow
    {
        public long Seq { get; set; }
        public string WorkId { get; set; } = "";
        public long OccurredAt { get; set; }
        public string Kind { get; set; } = "";
        public long Fence { get; set; }
        public string Writer { get; set; } = "";
        public string? OwnerId { get; set; }
        public string? IncarnationId { get; set; }
        public string? Detail { get; set; }
    }
}
