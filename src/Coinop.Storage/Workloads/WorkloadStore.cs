using System.Data.Common;
using System.Globalization;
using Coinop.Core.Text;
using Coinop.Core.Workloads;
using Dapper;

namespace Coinop.Storage.Workloads;

/// <summary>The SQL implementation of <see cref="IWorkloadStore"/>, shared by both dialects; rows map through <see cref="WorkloadRow"/>.</summary>
public sealed class WorkloadStore(Database database, TimeProvider time) : IWorkloadStore
{
    private const string TerminalStates = "('failed', 'completed', 'cancelled')";

    private const string Columns = """
        id AS Id, version AS Version, command AS Command, args AS Args, cpu_cores AS CpuCores, memory_mb AS MemoryMb,
        duration_ms AS DurationMs, port AS Port, restart AS Restart, standbys_wanted AS StandbysWanted, checkpointed AS Checkpointed,
        isolation AS Isolation, pinned_provider AS PinnedProvider, seal_to AS SealTo, rate_msat_per_second AS RateMsatPerSecond, paid_msat AS PaidMsat,
        state AS State, since AS Since, reason AS Reason, provider AS Provider, epoch AS Epoch, revoking_provider AS RevokingProvider,
        revoking_epoch AS RevokingEpoch, revoking_crashed AS RevokingCrashed, last_contact AS LastContact, attempts AS Attempts,
        paid_until AS PaidUntil, checkpoint_id AS CheckpointId, created_at AS CreatedAt
        """;

    public Task<bool> InsertAsync(Workload workload, WorkloadTerms terms, IReadOnlyDictionary<string, string> sealedKeys, IReadOnlyDictionary<string, decimal> rates,
        CancellationToken cancellationToken, WorkloadSaveHook? hook = null) =>
        database.WriteAsync(async (c, t) =>
        {
            var row = WorkloadRow.From(workload, terms, version: 1, time.GetUtcNow());
            var inserted = await c.ExecuteAsync(new CommandDefinition(
                """
                INSERT INTO workloads (id, version, command, args, cpu_cores, memory_mb, duration_ms, port, restart, standbys_wanted,
                    checkpointed, isolation, pinned_provider, seal_to, rate_msat_per_second, paid_msat, state, since, reason, provider, epoch,
                    revoking_provider, revoking_epoch, revoking_crashed, last_contact, attempts, paid_until, checkpoint_id, created_at, updated_at)
                VALUES (@Id, @Version, @Command, @Args, @CpuCores, @MemoryMb, @DurationMs, @Port, @Restart, @StandbysWanted,
                    @Checkpointed, @Isolation, @PinnedProvider, @SealTo, @RateMsatPerSecond, @PaidMsat, @State, @Since, @Reason, @Provider, @Epoch,
                    @RevokingProvider, @RevokingEpoch, @RevokingCrashed, @LastContact, @Attempts, @PaidUntil, @CheckpointId, @CreatedAt, @UpdatedAt)
                ON CONFLICT (id) DO NOTHING
                """, row, t, cancellationToken: cancellationToken));
            if (inserted == 0)
            {
                return false;
            }

            await AppendHistoryAsync(c, t, workload, from: 0, cancellationToken);
            await ReplaceStandbysAsync(c, t, workload, cancellationToken);
            foreach (var (provider, sealedKey) in sealedKeys)
            {
                await c.ExecuteAsync(new CommandDefinition(
                    "INSERT INTO workload_keys (workload_id, provider_id, sealed_key) VALUES (@id, @provider, @sealedKey)",
                    new { id = workload.Id, provider, sealedKey }, t, cancellationToken: cancellationToken));
            }

            await AddRatesAsync(c, t, workload.Id, rates, cancellationToken);
            if (hook is not null)
            {
                await hook(c, t, workload, cancellationToken);
            }

            return true;
        }, cancellationToken);

    public Task<StoredWorkload?> SaveAsync(StoredWorkload before, Workload next, WorkloadTerms terms, IReadOnlyDictionary<string, decimal> rates,
        CancellationToken cancellationToken, WorkloadSaveHook? hook = null) =>
        database.WriteAsync<StoredWorkload?>(async (c, t) =>
        {
            if (next.Id != before.Workload.Id)
            {
                throw new ArgumentException("a save cannot change the workload id", nameof(next));
            }

            var row = WorkloadRow.From(next, terms, before.Version + 1, time.GetUtcNow());
            var parameters = new DynamicParameters(row);
            parameters.Add("ReadVersion", before.Version);
            var updated = await c.ExecuteAsync(new CommandDefinition(
                $"""
                UPDATE workloads SET version = @Version, paid_msat = @PaidMsat, state = @State, since = @Since, reason = @Reason,
                    provider = @Provider, epoch = @Epoch, revoking_provider = @RevokingProvider, revoking_epoch = @RevokingEpoch,
                    revoking_crashed = @RevokingCrashed, last_contact = @LastContact, attempts = @Attempts, paid_until = @PaidUntil,
                    checkpoint_id = @CheckpointId, updated_at = @UpdatedAt
                WHERE id = @Id AND version = @ReadVersion AND state NOT IN {TerminalStates}
                """, parameters, t, cancellationToken: cancellationToken));
            if (updated == 0)
            {
                return null;
            }

            await AppendHistoryAsync(c, t, next, before.Workload.History.Count, cancellationToken);
            if (!before.Workload.Standbys.SequenceEqual(next.Standbys))
            {
                await ReplaceStandbysAsync(c, t, next, cancellationToken);
            }

            var added = rates.Where(r => !before.Rates.ContainsKey(r.Key)).ToDictionary();
            await AddRatesAsync(c, t, next.Id, added, cancellationToken);
            if (hook is not null)
            {
                await hook(c, t, next, cancellationToken);
            }

            return new StoredWorkload(next, before.Version + 1, terms, before.Rates.Concat(added).ToDictionary());
        }, cancellationToken);

    public Task<StoredWorkload?> FindAsync(string id, CancellationToken cancellationToken) =>
        database.ReadAsync(async c =>
        {
            var rows = await c.QueryAsync<WorkloadRow>(new CommandDefinition(
                $"SELECT {Columns} FROM workloads WHERE id = @id", new { id }, cancellationToken: cancellationToken));
            return (await HydrateAsync(c, rows.ToList(), cancellationToken)).SingleOrDefault();
        }, cancellationToken);

    public Task<IReadOnlyList<StoredWorkload>> ListAsync(bool openOnly, int limit, CancellationToken cancellationToken) =>
        database.ReadAsync(async c =>
        {
            var rows = await c.QueryAsync<WorkloadRow>(new CommandDefinition(
                $"""
                SELECT {Columns} FROM workloads
                WHERE @openOnly = 0 OR state NOT IN {TerminalStates}
                ORDER BY created_at DESC, id LIMIT @limit
                """, new { openOnly = openOnly ? 1 : 0, limit }, cancellationToken: cancellationToken));
            return await HydrateAsync(c, rows.ToList(), cancellationToken);
        }, cancellationToken);

    public Task<IReadOnlyList<StoredWorkload>> ListOwnedAsync(string ownerHash, int limit, CancellationToken cancellationToken) =>
        database.ReadAsync(async c =>
        {
            var rows = await c.QueryAsync<WorkloadRow>(new CommandDefinition(
                $"""
                SELECT {Columns} FROM workloads
                WHERE id IN (SELECT workload_id FROM workload_owners WHERE owner_hash = @ownerHash)
                ORDER BY created_at DESC, id LIMIT @limit
                """, new { ownerHash, limit }, cancellationToken: cancellationToken));
            return await HydrateAsync(c, rows.ToList(), cancellationToken);
        }, cancellationToken);

    public Task<string?> OwnerHashAsync(string workloadId, CancellationToken cancellationToken) =>
        database.ReadAsync(c => c.QuerySingleOrDefaultAsync<string?>(new CommandDefinition(
            "SELECT owner_hash FROM workload_owners WHERE workload_id = @workloadId", new { workloadId }, cancellationToken: cancellationToken)), cancellationToken);

    /// <summary>Records the workload's owner inside the transaction that inserts it (a <see cref="WorkloadSaveHook"/>).</summary>
    public static WorkloadSaveHook OwnedBy(string ownerHash, WorkloadSaveHook? then = null) => async (c, t, saved, ct) =>
    {
        await c.ExecuteAsync(new CommandDefinition(
            "INSERT INTO workload_owners (workload_id, owner_hash) VALUES (@id, @ownerHash)", new { id = saved.Id, ownerHash }, t, cancellationToken: ct));
        if (then is not null)
        {
            await then(c, t, saved, ct);
        }
    };

    public Task<string?> SealedKeyAsync(string workloadId, string providerId, CancellationToken cancellationToken) =>
        database.ReadAsync(c => c.QuerySingleOrDefaultAsync<string?>(new CommandDefinition(
            "SELECT sealed_key FROM workload_keys WHERE workload_id = @workloadId AND provider_id = @providerId",
            new { workloadId, providerId }, cancellationToken: cancellationToken)), cancellationToken);

    public Task<IReadOnlyList<string>> KeyHoldersAsync(string workloadId, CancellationToken cancellationToken) =>
        database.ReadAsync<IReadOnlyList<string>>(async c => [.. await c.QueryAsync<string>(new CommandDefinition(
            "SELECT provider_id FROM workload_keys WHERE workload_id = @workloadId ORDER BY provider_id",
            new { workloadId }, cancellationToken: cancellationToken))], cancellationToken);

    private static async Task AppendHistoryAsync(DbConnection c, DbTransaction t, Workload workload, int from, CancellationToken cancellationToken)
    {
        for (var i = from; i < workload.History.Count; i++)
        {
            var entry = workload.History[i];
            await c.ExecuteAsync(new CommandDefinition(
                "INSERT INTO workload_history (workload_id, seq, state, provider, at) VALUES (@id, @seq, @state, @provider, @at)",
                new { id = workload.Id, seq = i, state = WireEnum.Name(entry.State), provider = entry.Provider, at = entry.At.ToUnixTimeMilliseconds() },
                t, cancellationToken: cancellationToken));
        }
    }

    /// <summary>A provider keeps the rate it was first placed at for this workload.</summary>
    private static async Task AddRatesAsync(DbConnection c, DbTransaction t, string workloadId, IReadOnlyDictionary<string, decimal> rates, CancellationToken cancellationToken)
    {
        foreach (var (provider, rate) in rates)
        {
            await c.ExecuteAsync(new CommandDefinition(
                """
                INSERT INTO workload_rates (workload_id, provider_id, msat_per_second) VALUES (@workloadId, @provider, @rate)
                ON CONFLICT (workload_id, provider_id) DO NOTHING
                """,
                new { workloadId, provider, rate = rate.ToString(CultureInfo.InvariantCulture) }, t, cancellationToken: cancellationToken));
        }
    }

    private static async Task ReplaceStandbysAsync(DbConnection c, DbTransaction t, Workload workload, CancellationToken cancellationToken)
    {
        await c.ExecuteAsync(new CommandDefinition("DELETE FROM workload_standbys WHERE workload_id = @id", new { id = workload.Id }, t,
            cancellationToken: cancellationToken));
        foreach (var standby in workload.Standbys)
        {
            await c.ExecuteAsync(new CommandDefinition(
                "INSERT INTO workload_standbys (workload_id, provider_id, last_heard) VALUES (@id, @provider, @heard)",
                new { id = workload.Id, provider = standby.Provider, heard = standby.LastHeard.ToUnixTimeMilliseconds() }, t,
                cancellationToken: cancellationToken));
        }
    }

    private static async Task<IReadOnlyList<StoredWorkload>> HydrateAsync(DbConnection c, List<WorkloadRow> rows, CancellationToken cancellationToken)
    {
        if (rows.Count == 0)
        {
            return [];
        }

        // One parameter per id keeps the SQL the same on both dialects; lists are bounded by the caller's limit.
        var parameters = new DynamicParameters();
        var names = rows.Select((r, i) =>
        {
            parameters.Add($"id{i}", r.Id);
            return $"@id{i}";
        }).ToList();
        var inList = string.Join(", ", names);
        var history = (await c.QueryAsync<WorkloadHistoryRow>(new CommandDefinition(
                $"SELECT workload_id AS WorkloadId, state AS State, provider AS Provider, at AS At FROM workload_history WHERE workload_id IN ({inList}) ORDER BY workload_id, seq",
                parameters, cancellationToken: cancellationToken)))
            .ToLookup(h => h.WorkloadId);
        var standbys = (await c.QueryAsync<WorkloadStandbyRow>(new CommandDefinition(
                $"SELECT workload_id AS WorkloadId, provider_id AS ProviderId, last_heard AS LastHeard FROM workload_standbys WHERE workload_id IN ({inList}) ORDER BY workload_id, provider_id",
                parameters, cancellationToken: cancellationToken)))
            .ToLookup(s => s.WorkloadId);
        var rates = (await c.QueryAsync<WorkloadRateRow>(new CommandDefinition(
                $"SELECT workload_id AS WorkloadId, provider_id AS ProviderId, msat_per_second AS MsatPerSecond FROM workload_rates WHERE workload_id IN ({inList})",
                parameters, cancellationToken: cancellationToken)))
            .ToLookup(r => r.WorkloadId);
        return [.. rows.Select(r => r.ToStored(history[r.Id], standbys[r.Id], rates[r.Id]))];
    }
}
