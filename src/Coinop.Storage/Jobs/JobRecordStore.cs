using Dapper;

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
