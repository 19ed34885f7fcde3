using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;

namespace Coinop.Provider.Hosting;

/// <summary>
/// <c>--metrics-listen HOST:PORT</c>: the agent's metrics (its own meters, the runtime's and HttpClient's) as Prometheus
/// text at <c>GET /metrics</c>, on a listener of its own. The agent otherwise only dials out, so this is the one port it
/// opens, and only when asked; it serves nothing else (404).
/// </summary>
internal sealed partial class MetricsEndpoint(MeterProvider meters, IOptions<ProviderOptions> options, ILogger<MetricsEndpoint> logger) : IHostedService, IAsyncDisposable
{
    public const string Path = "/metrics";

    private const string NotFoundBody = """{"error":{"message":"the agent serves only GET /metrics","type":"invalid_request_error","code":"unknown_endpoint"}}""";

    private WebApplication? _app;

    /// <summary>The meters the endpoint exports: every Coinop meter in the process, the runtime's and HttpClient's.</summary>
    public static void AddTo(MeterProviderBuilder metrics) => metrics
        .AddMeter("Coinop.*")
        .AddMeter("System.Runtime", "System.Net.Http")
        .AddPrometheusExporter();

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var endpoint = IPEndPoint.Parse(options.Value.MetricsListen!);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(endpoint));
        var app = builder.Build();
        app.UseOpenTelemetryPrometheusScrapingEndpoint(meters, context => context.Request.Path == Path, path: null, configureBranchedPipeline: null, optionsName: null);
        app.Run(context =>
        {
            // A JSON error like every other Coinop answer, so a scraper pointed at the wrong path can read why.
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            context.Response.ContentType = "application/json";
            return context.Response.WriteAsync(NotFoundBody, context.RequestAborted);
        });
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (IOException ex)
        {
            await app.DisposeAsync().ConfigureAwait(false);
            // The CLI prints an IOException as its one line: say which flag it was about.
            throw new IOException($"--metrics-listen {endpoint}: {ex.Message}", ex);
        }

        _app = app;
        LogListening(logger, "http://" + endpoint + Path);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_app is { } app)
        {
            await app.StopAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is { } app)
        {
            await app.DisposeAsync().ConfigureAwait(false);
        }
    }
}
