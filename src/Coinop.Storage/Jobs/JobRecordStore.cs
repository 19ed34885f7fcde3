using System.Buffers;
using System.Text;
using Dapper;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Coinop.Storage.Jobs;

/// <summary>How an inference job ended.</summary>
public enum JobOutcome
{
    Completed,
    Failed,
    Cancelled,
}

/// <summary>The record of one inference job: times are unix ms, cost is null when the market serves for free.</summary>
public sealed record JobRecord(
    Guid Id,
    string Model,
    string WireFormat,
    string Route,
    string? ProviderId,
    int Attempts,
    DateTimeOffset CreatedAt,
    DateTimeOffset? FirstByteAt,
    DateTimeOffset FinishedAt,
    long InputTokens,
    long OutputTokens,
    JobOutcome Outcome,
    string? ErrorCode,
    long? CostMsat);

/// <summary>The market's record of every inference job.</summary>
public interface IJobRecordStore
{
    /// <summary>Inserts records in one transaction; a record already stored (a retried batch) is kept as it was.</summary>
    Task AddAsync(IReadOnlyList<JobRecord> records, CancellationToken cancellationToken);

    Task<JobRecord?> FindAsync(Guid id, CancellationToken cancellationToken);

    /// <summary>The newest records first.</summary>
    Task<IReadOnlyList<JobRecord>> ListRecentAsync(int limit, CancellationToken cancellationToken);
}

/// <summary>The SQL implementation, shared by both dialects.</summary>
public sealed class JobRecordStore(Database database) : IJobRecordStore
{
    private const string Columns =
        "id AS Id, model AS Model, wire_format AS WireFormat, route AS Route, provider_id AS ProviderId, attempts AS Attempts, " +
        "created_at AS CreatedAt, first_byte_at AS FirstByteAt, finished_at AS FinishedAt, input_tokens AS InputTokens, " +
        "output_tokens AS OutputTokens, outcome AS Outcome, error_code AS ErrorCode, cost_msat AS CostMsat";

    private const string InsertSql =
        "INSERT INTO jobs (id, model, wire_format, route, provider_id, attempts, created_at, first_byte_at, finished_at, " +
        "input_tokens, output_tokens, outcome, error_code, cost_msat) VALUES (@id, @model, @wire_format, @route, @provider_id, " +
        "@attempts, @created_at, @first_byte_at, @finished_at, @input_tokens, @output_tokens, @outcome, @error_code, @cost_msat) " +
        "ON CONFLICT (id) DO NOTHING";

    public Task AddAsync(IReadOnlyList<JobRecord> records, CancellationToken cancellationToken)
    {
        if (records.Count == 0)
        {
            return Task.CompletedTask;
        }

        return database.WriteAsync(async (c, t) =>
        {
            if (c is SqliteConnection sqlite)
            {
                InsertRows(sqlite, records);
                return;
            }

            // The database's kept statement, values set per row: Dapper re-made and re-bound 14 parameters per row by
            // their bare names, which SQLite resolved by trying each prefix in turn; at thousands of requests/s that was
            // most of what recording a job cost.
            using var insert = database.Statement(c, t, InsertSql);
            foreach (var r in records)
            {
                await insert
                    .Set("@id", r.Id.ToString("N"))
                    .Set("@model", r.Model)
                    .Set("@wire_format", r.WireFormat)
                    .Set("@route", r.Route)
                    .Set("@provider_id", r.ProviderId)
                    .Set("@attempts", (long)r.Attempts)
                    .Set("@created_at", r.CreatedAt.ToUnixTimeMilliseconds())
                    .Set("@first_byte_at", r.FirstByteAt?.ToUnixTimeMilliseconds())
                    .Set("@finished_at", r.FinishedAt.ToUnixTimeMilliseconds())
                    .Set("@input_tokens", r.InputTokens)
                    .Set("@output_tokens", r.OutputTokens)
                    .Set("@outcome", OutcomeName(r.Outcome))
                    .Set("@error_code", r.ErrorCode)
                    .Set("@cost_msat", r.CostMsat)
                    .ExecuteAsync(cancellationToken);
            }
        }, cancellationToken);
    }

    /// <summary>
    /// SQLite: the rows go straight to SQLite's own statement, bound by position. Through Microsoft.Data.Sqlite each row
    /// looked its 14 parameters up by name (an encoded copy of each name and a scan of the statement's names), boxed
    /// the numbers, encoded each text anew and made a data reader: more than the b-tree inserts themselves, and at
    /// saturation the job records were a sixth of the market's CPU. Runs in the caller's transaction on its connection.
    /// </summary>
    private static void InsertRows(SqliteConnection connection, IReadOnlyList<JobRecord> records)
    {
        var db = connection.Handle!;
        Check(raw.sqlite3_prepare_v2(db, PositionalInsertSql, out var insert), db);
        using (insert)
        {
            Span<byte> id = stackalloc byte[32];
            foreach (var r in records)
            {
                r.Id.TryFormat(id, out _, "N");
                Check(raw.sqlite3_bind_text(insert, 1, id), db);
                BindText(insert, 2, r.Model, db);
                BindText(insert, 3, r.WireFormat, db);
                BindText(insert, 4, r.Route, db);
                BindText(insert, 5, r.ProviderId, db);
                Check(raw.sqlite3_bind_int64(insert, 6, r.Attempts), db);
                Check(raw.sqlite3_bind_int64(insert, 7, r.CreatedAt.ToUnixTimeMilliseconds()), db);
                BindInt64(insert, 8, r.FirstByteAt?.ToUnixTimeMilliseconds(), db);
                Check(raw.sqlite3_bind_int64(insert, 9, r.FinishedAt.ToUnixTimeMilliseconds()), db);
                Check(raw.sqlite3_bind_int64(insert, 10, r.InputTokens), db);
                Check(raw.sqlite3_bind_int64(insert, 11, r.OutputTokens), db);
                BindText(insert, 12, OutcomeName(r.Outcome), db);
                BindText(insert, 13, r.ErrorCode, db);
                BindInt64(insert, 14, r.CostMsat, db);
                var rc = raw.sqlite3_step(insert);
                raw.sqlite3_reset(insert);
                if (rc != raw.SQLITE_DONE)
                {
                    SqliteException.ThrowExceptionForRC(rc, db);
                }
            }
        }
    }

    private const string PositionalInsertSql =
        "INSERT INTO jobs (id, model, wire_format, route, provider_id, attempts, created_at, first_byte_at, finished_at, " +
        "input_tokens, output_tokens, outcome, error_code, cost_msat) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) " +
        "ON CONFLICT (id) DO NOTHING";

    private static void BindText(sqlite3_stmt statement, int index, string? value, sqlite3 db)
    {
        if (value is null)
        {
            Check(raw.sqlite3_bind_null(statement, index), db);
            return;
        }

        // SQLite copies the text (SQLITE_TRANSIENT), so a short one is encoded on the stack.
        var most = Encoding.UTF8.GetMaxByteCount(value.Length);
        byte[]? rented = null;
        var buffer = most <= 256 ? stackalloc byte[256] : (rented = ArrayPool<byte>.Shared.Rent(most));
        try
        {
            var length = Encoding.UTF8.GetBytes(value, buffer);
            Check(raw.sqlite3_bind_text(statement, index, buffer[..length]), db);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    private static void BindInt64(sqlite3_stmt statement, int index, long? value, sqlite3 db) =>
        Check(value is { } v ? raw.sqlite3_bind_int64(statement, index, v) : raw.sqlite3_bind_null(statement, index), db);

    private static void Check(int rc, sqlite3 db)
    {
        if (rc != raw.SQLITE_OK)
        {
            SqliteException.ThrowExceptionForRC(rc, db);
        }
    }

    public Task<JobRecord?> FindAsync(Guid id, CancellationToken cancellationToken) =>
        database.ReadAsync(async c =>
        {
            var row = await c.QuerySingleOrDefaultAsync<JobRow>(new CommandDefinition(
                $"SELECT {Columns} FROM jobs WHERE id = @id", new { id = id.ToString("N") }, cancellationToken: cancellationToken));
            return row?.ToRecord();
        }, cancellationToken);

    public Task<IReadOnlyList<JobRecord>> ListRecentAsync(int limit, CancellationToken cancellationToken) =>
        database.ReadAsync<IReadOnlyList<JobRecord>>(async c =>
        {
            var rows = await c.QueryAsync<JobRow>(new CommandDefinition(
                $"SELECT {Columns} FROM jobs ORDER BY created_at DESC, id LIMIT @limit", new { limit }, cancellationToken: cancellationToken));
            return [.. rows.Select(r => r.ToRecord())];
        }, cancellationToken);

    private static string OutcomeName(JobOutcome outcome) => outcome switch
    {
        JobOutcome.Completed => "completed",
        JobOutcome.Failed => "failed",
        JobOutcome.Cancelled => "cancelled",
        _ => outcome.ToString().ToLowerInvariant(),
    };

    private sealed class JobRow
    {
        public string Id { get; set; } = "";
        public string Model { get; set; } = "";
        public string WireFormat { get; set; } = "";
        public string Route { get; set; } = "";
        public string? ProviderId { get; set; }
        public long Attempts { get; set; }
        public long CreatedAt { get; set; }
        public long? FirstByteAt { get; set; }
        public long FinishedAt { get; set; }
        public long InputTokens { get; set; }
        public long OutputTokens { get; set; }
        public string Outcome { get; set; } = "";
        public string? ErrorCode { get; set; }
        public long? CostMsat { get; set; }

        public JobRecord ToRecord() => new(
            Guid.ParseExact(Id, "N"), Model, WireFormat, Route, ProviderId, (int)Attempts,
            DateTimeOffset.FromUnixTimeMilliseconds(CreatedAt),
            FirstByteAt is { } f ? DateTimeOffset.FromUnixTimeMilliseconds(f) : null,
            DateTimeOffset.FromUnixTimeMilliseconds(FinishedAt),
            InputTokens, OutputTokens,
            Enum.Parse<JobOutcome>(Outcome, ignoreCase: true),
            ErrorCode, CostMsat);
    }
}
