using Coinop.Provider.Backends;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Coinop.Provider.Tests.Units;

/// <summary>Probing a backend on real Kestrel: one model whose details never come must not take the backend down.</summary>
public class BackendProbeTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task An_ollama_model_whose_show_stalls_leaves_the_backend_up_and_the_other_models_known()
    {
        var slowShowArrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        await using var app = builder.Build();
        app.MapGet("/api/version", () => Results.Json(new { version = "0.6.0" }));
        app.MapGet("/api/tags", () => Results.Json(new { models = new[] { new { name = "fast" }, new { name = "slow" } } }));
        app.MapPost("/api/show", async (HttpContext http) =>
        {
            var request = await http.Request.ReadFromJsonAsync<Dictionary<string, string>>(http.RequestAborted);
            if (request!["model"] == "slow")
            {
                slowShowArrived.TrySetResult();
                await Task.Delay(Timeout.Infinite, http.RequestAborted); // a model that never answers
            }

            return Results.Json(new { parameters = "num_ctx 4096", capabilities = new[] { "completion" } });
        });
        await app.StartAsync(Ct);

        // Real time here: the fast model's answer must arrive before the slow one's timeout, which a fake clock advanced
        // by the test could not promise. The probe returns once the slow model's own timeout passed.
        using var http = new HttpClient();
        var probe = new BackendProbe(http, TimeProvider.System);
        var backend = new BackendEndpoint(BackendKind.Ollama, new Uri(app.Urls.Single() + "/"));
        var status = await probe.ProbeAsync(backend, TimeSpan.FromSeconds(5), Ct);
        Assert.True(slowShowArrived.Task.IsCompleted);

        Assert.True(status.Healthy, status.Problem);
        Assert.Equal(4096, status.Models.Single(m => m.Model == "fast").ContextWindow);
        Assert.Null(status.Models.Single(m => m.Model == "slow").ContextWindow); // offered, details unknown
    }

    [Fact]
    public async Task A_backend_whose_own_endpoint_stalls_is_down()
    {
        var tagsArrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        await using var app = builder.Build();
        app.MapGet("/api/version", () => Results.Json(new { version = "0.6.0" }));
        app.MapGet("/api/tags", async (HttpContext http) =>
        {
            tagsArrived.TrySetResult();
            await Task.Delay(Timeout.Infinite, http.RequestAborted);
        });
        await app.StartAsync(Ct);

        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        using var http = new HttpClient();
        var probing = new BackendProbe(http, time).ProbeAsync(new BackendEndpoint(BackendKind.Ollama, new Uri(app.Urls.Single() + "/")), TimeSpan.FromSeconds(3), Ct);
        await tagsArrived.Task.WaitAsync(Ct);
        time.Advance(TimeSpan.FromSeconds(4));
        var status = await probing.WaitAsync(Ct);

        Assert.False(status.Healthy);
        Assert.Contains("no answer within 3s", status.Problem, StringComparison.Ordinal);
    }
}
