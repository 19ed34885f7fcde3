using Coinop.Provider.Status;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Coinop.Provider.Hosting;

/// <summary>Registers a provider agent in a generic host (the CLI's <c>provider</c> and <c>up</c> commands).</summary>
public static class ProviderAgentSetup
{
    /// <summary>Validates options the way the host will, so the CLI can report a bad flag in one line.</summary>
    public static void Validate(ProviderOptions options) => Coinop.Runtime.Hosting.OptionsCheck.ThrowIfInvalid(options);

    public static IServiceCollection AddProviderAgent(this IServiceCollection services, Action<ProviderOptions> configure)
    {
        services.TryAddSingleton(TimeProvider.System);
        services.AddMetrics();
        services.AddOptions<ProviderOptions>()
            .Configure(configure)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.TryAddSingleton<ProviderMetrics>();
        var probe = new ProviderOptions();
        configure(probe);
        if (probe.MetricsListen is not null)
        {
            // Started before the agent: a port that cannot be had stops the agent before it goes online.
            services.AddOpenTelemetry().WithMetrics(MetricsEndpoint.AddTo);
            services.AddHostedService<MetricsEndpoint>();
        }

        services.AddSingleton<ProviderAgent>();
        // The status file (coinop provider status): its writer starts before the agent and stops after it, so its last
        // write shows the agent stopped. Warnings and errors the agent logs go into it too.
        services.AddSingleton<RecentErrors>();
        services.AddSingleton<ILoggerProvider, RecentErrorsLoggerProvider>();
        services.AddHostedService<AgentStatusWriter>();
        services.AddHostedService(sp => sp.GetRequiredService<ProviderAgent>());

        // The host must give the drain its full deadline plus time to close the link.
        services.Configure<HostOptions>(o =>
        {
            var needed = probe.DrainTimeout + TimeSpan.FromSeconds(15);
            if (o.ShutdownTimeout < needed)
            {
                o.ShutdownTimeout = needed;
            }
        });
        return services;
    }
}
