using Coinop.Storage.Providers;

namespace Coinop.Storage.Tests.Providers;

public class ProviderRegistryStoreTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);

    private static ProviderRecord Provider(string id) => new(id, Guid.NewGuid().ToByteArray(), "name-" + id, Now, Now, true);

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task A_code_admits_as_many_new_providers_as_it_has_uses(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = await Stores.CreateAsync(dialect, ct);
        var registry = new ProviderRegistryStore(store.Database);
        await registry.CreateEnrollmentCodeAsync(new EnrollmentCodeRecord("CODE", 2, 0, Now, Now.AddHours(1)), ct);

        Assert.Equal(EnrollOutcome.Enrolled, await registry.EnrollWithCodeAsync(Provider("a"), "CODE", Now, ct));
        Assert.Equal(EnrollOutcome.AlreadyKnown, await registry.EnrollWithCodeAsync(Provider("a"), "CODE", Now, ct));
        Assert.Equal(EnrollOutcome.Enrolled, await registry.EnrollWithCodeAsync(Provider("b"), "CODE", Now, ct));
        Assert.Equal(EnrollOutcome.CodeUsedUp, await registry.EnrollWithCodeAsync(Provider("c"), "CODE", Now, ct));
        Assert.Equal(EnrollOutcome.CodeUnknown, await registry.EnrollWithCodeAsync(Provider("c"), "NOPE", Now, ct));
        Assert.Equal(2, (await registry.FindEnrollmentCodeAsync("CODE", ct))!.Uses);
        Assert.Null(await registry.FindAsync("c", ct));
    }

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task An_expired_code_admits_nobody(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = await Stores.CreateAsync(dialect, ct);
        var registry = new ProviderRegistryStore(store.Database);
        await registry.CreateEnrollmentCodeAsync(new EnrollmentCodeRecord("OLD", 5, 0, Now, Now.AddMinutes(1)), ct);
        Assert.Equal(EnrollOutcome.CodeExpired, await registry.EnrollWithCodeAsync(Provider("a"), "OLD", Now.AddMinutes(1), ct));
    }

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task Concurrent_enrollments_never_exceed_the_uses(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = await Stores.CreateAsync(dialect, ct);
        var registry = new ProviderRegistryStore(store.Database);
        await registry.CreateEnrollmentCodeAsync(new EnrollmentCodeRecord("RACE", 3, 0, Now, null), ct);

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 12).Select(i =>
            Task.Run(() => registry.EnrollWithCodeAsync(Provider("p" + i), "RACE", Now, ct), ct)));

        Assert.Equal(3, outcomes.Count(o => o == EnrollOutcome.Enrolled));
        Assert.Equal(9, outcomes.Count(o => o == EnrollOutcome.CodeUsedUp));
        Assert.Equal(3, (await registry.ListAsync(ct)).Count);
    }

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task Pages_in_id_order_cover_every_provider_once(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = await Stores.CreateAsync(dialect, ct);
        var registry = new ProviderRegistryStore(store.Database);
        var ids = new[] { "pq2", "pa7", "pz3", "pb2", "pm5" };
        foreach (var id in ids)
        {
            await registry.UpsertSeenAsync(Provider(id), ct);
        }

        var seen = new List<string>();
        string? cursor = null;
        while (true)
        {
            var page = await registry.ListPageAsync(cursor, 2, ct);
            seen.AddRange(page.Select(p => p.Id));
            if (page.Count < 2)
            {
                break;
            }

            cursor = page[^1].Id;
        }

        Assert.Equal(ids.Order(StringComparer.Ordinal), seen);
        Assert.Empty(await registry.ListPageAsync("pz3", 10, ct));
    }

    [Theory]
    [MemberData(nameof(Stores.Dialects), MemberType = typeof(Stores))]
    public async Task Reset_marks_every_provider_offline_and_says_which_were_online(SqlDialect dialect)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var store = await Stores.CreateAsync(dialect, ct);
        var registry = new ProviderRegistryStore(store.Database);
        await registry.UpsertSeenAsync(Provider("a"), ct);
        await registry.UpsertSeenAsync(Provider("b") with { Online = false }, ct);

        Assert.Equal(["a"], await registry.ResetOnlineAsync(Now, ct));
        Assert.All(await registry.ListAsync(ct), p => Assert.False(p.Online));
    }
}
