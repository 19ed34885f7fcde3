using Coinop.Market.Hosting;
using Coinop.Market.Mint.Lightning;
using Coinop.Storage.Mint;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Coinop.Market.Mint;

/// <summary>Registers the Mint feature's services and endpoints.</summary>
public static class MintSetup
{
    public static IServiceCollection AddMint(this IServiceCollection services)
    {
        services.AddOptions<MintOptions>()
            .Configure<MarketOptions>((o, m) =>
            {
                o.MintMaxSat = m.MintMaxSat;
                o.MeltMaxSat = m.MeltMaxSat;
                o.MaxOutstandingSat = m.MintMaxOutstandingSat;
            })
            .ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<IMintKeysetStore, MintKeysetStore>();
        services.AddSingleton<IMintQuoteStore, MintQuoteStore>();
        services.AddSingleton<IMintProofStore, MintProofStore>();
        services.AddSingleton<MintKeysets>();
        services.AddSingleton<MintMetrics>();
        services.AddSingleton<MintCore>();
        services.AddSingleton<MintInfo>();
        services.AddSingleton<MintSwap>();
        services.AddSingleton<Minting>();
        services.AddSingleton<MeltSettlement>();
        services.AddSingleton<Melting>();
        services.AddSingleton<ProofStates>();
        services.AddSingleton<CashuMint>();
        services.AddSingleton<CachedResponses>();
        services.AddSingleton<MintSubscriptions>();
        services.AddSingleton<FakeLightningBackend>();
        services.AddSingleton<ILightningBackend>(sp => sp.GetRequiredService<MarketOptions>().Lightning switch
        {
            "fake" => sp.GetRequiredService<FakeLightningBackend>(),
            "lnd" when sp.GetRequiredService<MarketOptions>() is { LndUrl: { } url, LndMacaroon: { } macaroon } o => new LndBackend(url, macaroon, o.LndCert),
            "cln" when sp.GetRequiredService<MarketOptions>() is { ClnUrl: { } url, ClnRune: { } rune } o => new ClnBackend(url, rune, o.ClnCert),
            var other => throw new InvalidOperationException($"Lightning backend '{other}' is not available"),
        });
        services.AddSingleton<PendingMeltReconciler>();
        services.AddHostedService<MintStartup>();
        services.AddHostedService<MeltRecoveryService>();
        services.AddSingleton<ILightningCursorStore, LightningCursorStore>();
        services.AddHostedService<InvoiceWatcher>();
        return services;
    }

    public static IEndpointRouteBuilder MapMint(this IEndpointRouteBuilder endpoints)
    {
        MintEndpoints.Map(endpoints);
        return endpoints;
    }
}
