using Coinop.Core.Protocol;
using Coinop.Core.Workloads;
using Coinop.Market.Tests.TestProviders;
using Coinop.TestKit;
using Npgsql;

namespace Coinop.Market.Tests.Workloads;

/// <summary>
/// Holds a PostgreSQL market's workload supervisor on one command: a usage record from <c>provider</c> waits for a table
/// the test has locked, so whatever is queued after it stays queued (no race with how fast the supervisor works) until
/// <see cref="ReleaseAsync"/>.
/// </summary>
internal sealed class SupervisorHold : IAsyncDisposable
{
    private readonly NpgsqlConnection _locker;
    private readonly NpgsqlTransaction _hold;

    private SupervisorHold(NpgsqlConnection locker, NpgsqlTransaction hold) => (_locker, _hold) = (locker, hold);

    public static async Task<SupervisorHold> StartAsync(string connection, TestProvider provider, CancellationToken ct)
    {
        var locker = new NpgsqlConnection(connection);
        await locker.OpenAsync(ct);
        var hold = await locker.BeginTransactionAsync(ct);
        await using (var lockTable = new NpgsqlCommand("LOCK TABLE workload_usage IN ACCESS EXCLUSIVE MODE", locker, hold))
        {
            await lockTable.ExecuteNonQueryAsync(ct);
        }

        var workload = WorkloadIds.New();
        await provider.SendAsync(new WorkloadUsage(workload, 1, new UsageRecord(workload, 1, 0, 10_000, 1, 1, 0, 10).Sign(provider.Key)), ct);
        await Eventually.WaitAsync(() => BlockedInsertsAsync(connection, ct), n => n > 0, "the supervisor waiting on the locked table", cancellationToken: ct);
        return new SupervisorHold(locker, hold);
    }

    public Task ReleaseAsync(CancellationToken ct) => _hold.RollbackAsync(ct);

    public async ValueTask DisposeAsync()
    {
        await _hold.DisposeAsync();
        await _locker.DisposeAsync();
    }

    private static async Task<long> BlockedInsertsAsync(string connection, CancellationToken ct)
    {
        await using var c = new NpgsqlConnection(connection);
        await c.OpenAsync(ct);
        await using var query = new NpgsqlCommand(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO workload_usage%'", c);
        return (long)(await query.ExecuteScalarAsync(ct))!;
    }
}
