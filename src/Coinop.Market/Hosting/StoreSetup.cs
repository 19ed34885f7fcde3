using Coinop.Storage;
using Coinop.Storage.Meta;
using Coinop.Storage.Providers;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Coinop.Market.Hosting;

public static class StoreSetup
{
    /// <summary>
    /// Where a SQLite commit checkpoints the WAL itself (16 MiB of 4 KiB pages): the background <see cref="WalCheckpointer"/>
    /// does it long before, so this only bounds the WAL should that fall behind.
    /// </summary>
    public const int WalAutocheckpointPages = 4096;

    /// <summary>The store: SQLite in the data dir unless a PostgreSQL connection string is given.</summary>
    public static IServiceCollection AddMarketStore(this IServiceCollection services, MarketOptions options)
    {
        services.AddSingleton(_ => options.Postgres is { Length: > 0 } pg
            ? Database.Postgres(pg)
            // Claimed for this process: the market keeps balance reservations in memory (see BalanceReservations).
            : Database.Sqlite(Path.Combine(options.DataDir, "market.db"), WalAutocheckpointPages, exclusive: true));
        services.AddSingleton<StorageMetrics>();
        if (options.Postgres is not { Length: > 0 })
        {
            services.AddSingleton<WalCheckpointer>();
            services.AddHostedService(sp => sp.GetRequiredService<WalCheckpointer>());
        }

        services.AddSingleton<IMarketMetaStore, MarketMetaStore>();
        services.AddSingleton<IProviderRegistryStore, ProviderRegistryStore>();
        services.AddSingleton<IProviderRevocationStore, ProviderRevocationStore>();
        services.AddSingleton<MarketIdentity>();
        services.AddHostedService<StoreMigrationService>();
        return services;
    }
}

/// <summary>Brings the schema up to date before anything else starts.</summary>
internal sealed class StoreMigrationService(Database database, MarketIdentity identity) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await Migrator.MigrateAsync(database, cancellationToken);
        await identity.LoadAsync(cancellationToken);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
