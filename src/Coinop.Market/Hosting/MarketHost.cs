using Coinop.Market.Abuse;
using Coinop.Market.Cluster;
using Coinop.Market.Gateway;
using Coinop.Market.Inference;
using Coinop.Market.Mint;
using Coinop.Market.Payments;
using Coinop.Market.Web;
using Coinop.Market.Workloads;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Coinop.Market.Hosting;

/// <summary>
/// Builds a market node: one ASP.NET Core application whose features (gateway, inference, mint, payments,
/// workloads) each register their services and endpoints. Tests build it the same way on port 0.
/// </summary>
public static class MarketHost
{
    /// <summary>Validates options the way the host will, so the CLI can report a bad flag in one line.</summary>
    public static void Validate(MarketOptions options) => Coinop.Runtime.Hosting.OptionsCheck.ThrowIfInvalid(options);

    public static WebApplication Build(MarketOptions options, Action<WebApplicationBuilder>? configure = null)
    {
        Validate(options);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = Coinop.Runtime.Hosting.HostArguments.Default });
        builder.WebHost.UseUrls(options.Urls.Split(';', StringSplitOptions.RemoveEmptyEntries));
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes;
            k.AddServerHeader = false;
        });
        // Socket I/O goes straight to the thread pool instead of through Kestrel's own I/O queues: each queue is one
        // more thread hop (and wake-up) per read and write, which on a small machine cost ~20% of the market's CPU per
        // relayed request (docs/benchmarks.md). The queues only pay off with many cores and many connections.
        builder.WebHost.UseSockets(o => o.IOQueueCount = 0);
        builder.WebHost.UseShutdownTimeout(TimeSpan.FromSeconds(15));
        // ASP.NET Core starts an Activity and a logging scope for every request while this category is enabled at any
        // level, even with no tracing and nothing logged: ~4 % of the market's CPU per relayed request at saturation
        // (docs/benchmarks.md). It logs nothing else a market needs (startup failures are logged by the generic host too).
        builder.Logging.AddFilter("Microsoft.AspNetCore.Hosting.Diagnostics", LogLevel.None);

        builder.Services.AddSingleton(options);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddMarketStore(options);
        builder.Services.AddCluster();
        builder.Services.AddProviderGateway();
        builder.Services.AddInference();
        builder.Services.AddMint();
        builder.Services.AddPayments();
        builder.Services.AddWorkloads();
        builder.Services.AddWeb();
        builder.Services.AddMarketTelemetry();
        builder.Services.AddAbuseGuards(options);

        configure?.Invoke(builder);

        var app = builder.Build();
        app.UseClientRateLimits();
        app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.FromSeconds(15) });
        app.UseWorkloadForwarding();
        app.MapCluster();
        app.MapProviderGateway();
        app.MapInference();
        app.MapMint();
        app.MapPayments();
        app.MapWorkloads();
        app.MapWeb();
        app.MapMarketTelemetry();
        return app;
    }

    /// <summary>The first address Kestrel bound (useful with port 0).</summary>
    public static string BoundAddress(this WebApplication app) =>
        app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
}
