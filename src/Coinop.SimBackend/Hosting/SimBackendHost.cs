using Coinop.SimBackend.Ollama;
using Coinop.SimBackend.OpenAi;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Coinop.SimBackend.Hosting;

/// <summary>Builds the inference simulator as a Kestrel application (the CLI and tests use it the same way).</summary>
public static class SimBackendHost
{
    /// <summary>Validates options the way the host will, so the CLI can report a bad flag in one line.</summary>
    public static void Validate(SimBackendOptions options) => Coinop.Runtime.Hosting.OptionsCheck.ThrowIfInvalid(options);

    public static WebApplication Build(SimBackendOptions options, TimeProvider? time = null, Action<WebApplicationBuilder>? configure = null)
    {
        Validate(options);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = Coinop.Runtime.Hosting.HostArguments.Default });
        builder.WebHost.UseUrls(options.Urls.Split(';', StringSplitOptions.RemoveEmptyEntries));
        builder.WebHost.ConfigureKestrel(k => k.AddServerHeader = false);
        builder.Services.AddSingleton(new Simulator(options, time ?? TimeProvider.System));
        configure?.Invoke(builder);

        var app = builder.Build();
        app.MapOpenAi();
        app.MapOllama();
        // Any path, a file-like one ("win.ini") too: the default fallback's nonfile constraint left those a bare 404.
        app.MapFallback("{*path}", ctx => OpenAiEndpoints.WriteErrorAsync(ctx, StatusCodes.Status404NotFound, $"the coinop simulator has no route {ctx.Request.Method} {ctx.Request.Path}"));
        return app;
    }

    /// <summary>The simulator's first bound address (useful with port 0).</summary>
    public static string BaseAddress(this WebApplication app) =>
        app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();

    public static Simulator Simulator(this WebApplication app) => app.Services.GetRequiredService<Simulator>();
}
