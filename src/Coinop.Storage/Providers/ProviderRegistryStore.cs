using System.Data.Common;
using Dapper;

namespace Coinop.Storage.Providers;

/// <summary>A provider the market knows: its Ed25519 key, display name and when it was last seen.</summary>
public sealed record ProviderRecord(
    string Id,
    byte[] PublicKey,
    string Name,
    DateTimeOffset EnrolledAt,
    DateTimeOffset LastSeenAt,
    bool Online);

/// <summary>An enrollment code with its use count.</summary>
public sealed record EnrollmentCodeRecord(string Code, int MaxUses, int Uses, DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt);

/// <summary>The outcome of enrolling a new provider with a code.</summary>
public enum EnrollOutcome
{
    Enrolled,
    AlreadyKnown,
    CodeUnknown,
    CodeExpired,
    CodeUsedUp,
}

/// <summary>Provider identities and enrollment codes.</summary>
public interface IProviderRegistryStore
{
    Task<ProviderRecord?> FindAsync(string providerId, CancellationToken cancellationToken);

    Task<IReadOnlyList<ProviderRecord>> ListAsync(CancellationToken cancellationToken);

    /// <summary>Up to <paramref name="limit"/> providers whose id sorts after <paramref name="afterId"/> (all when null), in id order.</summary>
    Task<IReadOnlyList<ProviderRecord>> ListPageAsync(string? afterId, int limit, CancellationToken cancellationToken);

    /// <summary>Records a provider that authenticated (enrolling it when new, without a code) and marks it online.</summary>
    Task UpsertSeenAsync(ProviderRecord provider, CancellationToken cancellationToken);

    /// <summary>Enrolls a new provider by consuming one use of <paramref name="code"/>, atomically.</summary>
    Task<EnrollOutcome> EnrollWithCodeAsync(ProviderRecord provider, string code, DateTimeOffset now, CancellationToken cancellationToken);

    Task SetOnlineAsync(string providerId, bool online, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Marks every provider offline (a market starting up owns no sockets yet).</summary>
    Task<IReadOnlyList<string>> ResetOnlineAsync(DateTimeOffset now, CancellationToken cancellationToken);

    Task CreateEnrollmentCodeAsync(EnrollmentCodeRecord code, CancellationToken cancellationToken);

    Task<EnrollmentCodeRecord?> FindEnrollmentCodeAsync(string code, CancellationToken cancellationToken);
}

/// <summary>The SQL implementation, shared by both dialects.</summary>
public sealed class ProviderRegistryStore(Database database) : IProviderRegistryStore
{
    private const string Columns = "id AS Id, public_key AS PublicKey, name AS Name, enrolled_at AS EnrolledAt, last_seen_at AS LastSeenAt, online AS Online";

    public Task<ProviderRecord?> FindAsync(string providerId, CancellationToken cancellationToken) =>
        database.ReadAsync(async c =>
        {
            var row = await c.QuerySingleOrDefaultAsync<ProviderRow>(new CommandDefinition(
                $"SELECT {Columns} FROM providers WHERE id = @providerId", new { providerId }, cancellationToken: cancellationToken));
            return row?.ToRecord();
        }, cancellationToken);

    public Task<IReadOnlyList<ProviderRecord>> ListAsync(CancellationToken cancellationToken) =>
        database.ReadAsync<IReadOnlyList<ProviderRecord>>(async c =>
        {
            var rows = await c.QueryAsync<ProviderRow>(new CommandDefinition(
                $"SELECT {Columns} FROM providers ORDER BY name, id", cancellationToken: cancellationToken));
            return [.. rows.Select(r => r.ToRecord())];
        }, cancellationToken);

    public Task<IReadOnlyList<ProviderRecord>> ListPageAsync(string? afterId, int limit, CancellationToken cancellationToken) =>
        database.ReadAsync<IReadOnlyList<ProviderRecord>>(async c =>
        {
            var rows = await c.QueryAsync<ProviderRow>(new CommandDefinition(
                $"SELECT {Columns} FROM providers WHERE id > @afterId ORDER BY id LIMIT @limit", new { afterId = afterId ?? "", limit }, cancellationToken: cancellationToken));
            return [.. rows.Select(r => r.ToRecord())];
        }, cancellationToken);

    public Task UpsertSeenAsync(ProviderRecord provider, CancellationToken cancellationToken) =>
        database.WriteAsync((c, t) => UpsertAsync(c, t, provider, cancellationToken), cancellationToken);

    public Task<EnrollOutcome> EnrollWithCodeAsync(ProviderRecord provider, string code, DateTimeOffset now, CancellationToken cancellationToken) =>
        database.WriteAsync(async (c, t) =>
        {
            var known = await c.ExecuteScalarAsync<string?>(new CommandDefinition(
                "SELECT id FROM providers WHERE id = @Id", new { provider.Id }, t, cancellationToken: cancellationToken));
            if (known is not null)
            {
                await UpsertAsync(c, t, provider, cancellationToken);
                return EnrollOutcome.AlreadyKnown;
            }

            var row = await c.QuerySingleOrDefaultAsync<CodeRow>(new CommandDefinition(
                "SELECT code AS Code, max_uses AS MaxUses, uses AS Uses, created_at AS CreatedAt, expires_at AS ExpiresAt FROM enrollment_codes WHERE code = @code",
                new { code }, t, cancellationToken: cancellationToken));
            if (row is null)
            {
                return EnrollOutcome.CodeUnknown;
            }

            if (row.ExpiresAt is { } expires && now.ToUnixTimeMilliseconds() >= expires)
            {
                return EnrollOutcome.CodeExpired;
            }

            // The use is counted by a conditional update, so two providers racing for the last use cannot both win.
            var updated = await c.ExecuteAsync(new CommandDefinition(
                "UPDATE enrollment_codes SET uses = uses + 1 WHERE code = @code AND uses < max_uses",
                new { code }, t, cancellationToken: cancellationToken));
            if (updated == 0)
            {
                return EnrollOutcome.CodeUsedUp;
            }

            await UpsertAsync(c, t, provider, cancellationToken);
            return EnrollOutcome.Enrolled;
        }, cancellationToken);

    public Task SetOnlineAsync(string providerId, bool online, DateTimeOffset now, CancellationToken cancellationToken) =>
        database.WriteAsync((c, t) => c.ExecuteAsync(new CommandDefinition(
            "UPDATE providers SET online = @online, last_seen_at = @now WHERE id = @providerId",
            new { providerId, online = online ? 1 : 0, now = now.ToUnixTimeMilliseconds() }, t, cancellationToken: cancellationToken)),
            cancellationToken);

    public Task<IReadOnlyList<string>> ResetOnlineAsync(DateTimeOffset now, CancellationToken cancellationToken) =>
        database.WriteAsync<IReadOnlyList<string>>(async (c, t) =>
        {
            var ids = (await c.QueryAsync<string>(new CommandDefinition(
                "SELECT id FROM providers WHERE online = 1", transaction: t, cancellationToken: cancellationToken))).ToList();
            await c.ExecuteAsync(new CommandDefinition(
                "UPDATE providers SET online = 0 WHERE online = 1", transaction: t, cancellationToken: cancellationToken));
            return ids;
        }, cancellationToken);

    public Task CreateEnrollmentCodeAsync(EnrollmentCodeRecord code, CancellationToken cancellationToken) =>
        database.WriteAsync((c, t) => c.ExecuteAsync(new CommandDefinition(
            "INSERT INTO enrollment_codes (code, max_uses, uses, created_at, expires_at) VALUES (@Code, @MaxUses, @Uses, @CreatedAt, @ExpiresAt)",
            new
            {
                code.Code,
                code.MaxUses,
                code.Uses,
                CreatedAt = code.CreatedAt.ToUnixTimeMilliseconds(),
                ExpiresAt = code.ExpiresAt?.ToUnixTimeMilliseconds(),
            }, t, cancellationToken: cancellationToken)), cancellationToken);

    public Task<EnrollmentCodeRecord?> FindEnrollmentCodeAsync(string code, CancellationToken cancellationToken) =>
        database.ReadAsync(async c =>
        {
            var row = await c.QuerySingleOrDefaultAsync<CodeRow>(new CommandDefinition(
                "SELECT code AS Code, max_uses AS MaxUses, uses AS Uses, created_at AS CreatedAt, expires_at AS ExpiresAt FROM enrollment_codes WHERE code = @code",
                new { code }, cancellationToken: cancellationToken));
            return row is null
                ? null
                : new EnrollmentCodeRecord(row.Code, (int)row.MaxUses, (int)row.Uses, DateTimeOffset.FromUnixTimeMilliseconds(row.CreatedAt),
                    row.ExpiresAt is { } e ? DateTimeOffset.FromUnixTimeMilliseconds(e) : null);
        }, cancellationToken);

    private static Task<int> UpsertAsync(DbConnection c, DbTransaction t, ProviderRecord p, CancellationToken cancellationToken) =>
        c.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO providers (id, public_key, name, enrolled_at, last_seen_at, online)
            VALUES (@Id, @PublicKey, @Name, @EnrolledAt, @LastSeenAt, @Online)
            ON CONFLICT (id) DO UPDATE SET name = excluded.name, last_seen_at = excluded.last_seen_at, online = excluded.online
            """,
            new
            {
                p.Id,
                p.PublicKey,
                p.Name,
                EnrolledAt = p.EnrolledAt.ToUnixTimeMilliseconds(),
                LastSeenAt = p.LastSeenAt.ToUnixTimeMilliseconds(),
                Online = p.Online ? 1 : 0,
            }, t, cancellationToken: cancellationToken));

    private sealed class ProviderRow
    {
        public string Id { get; set; } = "";
        public byte[] PublicKey { get; set; } = [];
        public string Name { get; set; } = "";
        public long EnrolledAt { get; set; }
        public long LastSeenAt { get; set; }
        public long Online { get; set; }

        public ProviderRecord ToRecord() => new(Id, PublicKey, Name,
            DateTimeOffset.FromUnixTimeMilliseconds(EnrolledAt), DateTimeOffset.FromUnixTimeMilliseconds(LastSeenAt), Online != 0);
    }

    private sealed class CodeRow
    {
        public string Code { get; set; } = "";
        public long MaxUses { get; set; }
        public long Uses { get; set; }
        public long CreatedAt { get; set; }
        public long? ExpiresAt { get; set; }
    }
}
