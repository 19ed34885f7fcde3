using System.Net;
using System.Text;
using System.Text.Json;
using Coinop.Core.Pricing;
using Coinop.Market.Tests.Gateway;
using Coinop.Market.Tests.TestProviders;
using Coinop.Provider.Backends;
using Coinop.Provider.Hosting;
using Coinop.TestKit;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Coinop.Market.Tests.Translation;

/// <summary>
/// The SSE spec ends lines with CRLF, LF or CR alone. A backend that ends its stream's lines with CR alone, written in small
/// pieces (so events and CRs straddle the provider's frames), reaches the consumer of every API through a real agent and
/// market, as a clean stream: the market's own LF-ended <c>data:</c> lines, one JSON object each.
/// </summary>
public class CrLineEndsTests
{
    private const string Model = "cr-model";

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly string[] Chunks =
    [
        "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"cr-model\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}],\"usage\":null}",
        "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"cr-model\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"carriage\"}}],\"usage\":null}",
        "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"cr-model\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" returns\"}}],\"usage\":null}",
        "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"cr-model\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}",
        "{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"cr-model\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":3,\"total_tokens\":12}}",
    ];

    [Theory]
    [InlineData(HostileStreamFrames.Api.Chat)]
    [InlineData(HostileStreamFrames.Api.Messages)]
    [InlineData(HostileStreamFrames.Api.Responses)]
    public async Task A_backend_ending_its_lines_with_CR_alone_streams_to_every_api(HostileStreamFrames.Api api)
    {
        await using var backend = await CrBackend.StartAsync();
        await using var market = await MarketUnderTest.StartAsync(builder: b => b.Logging.ClearProviders(), cancellationToken: Ct);
        using var dir = new TempDirectory("coinop-provider");
        var host = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = [], DisableDefaults = true });
        host.Logging.ClearProviders();
        host.Services.AddProviderAgent(o =>
        {
            o.MarketUrl = market.Url;
            o.DataDir = dir.Path;
            o.Backends = [new BackendEndpoint(BackendKind.OpenAi, new Uri(backend.Url + "/"))];
            o.DefaultPrice = new ModelPrice(0, 0);
            o.ReconnectInitialDelay = TimeSpan.FromMilliseconds(100);
            o.RetryProbeInterval = TimeSpan.FromMilliseconds(200);
            o.ProbeTimeout = TimeSpan.FromSeconds(10);
        });
        using var agent = host.Build();
        await agent.StartAsync(Ct);
        try
        {
            await Coinop.TestKit.Eventually.WaitAsync(() => Task.FromResult<int?>(market.Directory.Snapshot.Count(s => s.Accepting && s.TryGetOffer(Model, out _))),
                n => n > 0, "the provider online with the CR backend's model", cancellationToken: Ct);

            var (path, body) = HostileStreamTests.Request(api, stream: true);
            using var response = await market.Http.PostAsync(path, new StringContent(body.Replace(HostileLink.SoloModel, Model, StringComparison.Ordinal), Encoding.UTF8, "application/json"), Ct);
            var text = await response.Content.ReadAsStringAsync(Ct);

            // Before: the market found no line end at all, so the whole stream was one event, refused as not one JSON object.
            Assert.True(response.StatusCode == HttpStatusCode.OK, text);
            HostileStreamTests.AssertCleanStream(api, text, text);
            Assert.DoesNotContain("event: error", text, StringComparison.Ordinal);
            Assert.DoesNotContain("data: {\"error\"", text, StringComparison.Ordinal);
            Assert.Contains(api == HostileStreamFrames.Api.Responses ? "carriage returns" : " returns", text, StringComparison.Ordinal);
        }
        finally
        {
            await agent.StopAsync(CancellationToken.None);
        }
    }

    /// <summary>An OpenAI-compatible backend whose stream ends every line with CR alone, written a few bytes at a time.</summary>
    private sealed class CrBackend : IAsyncDisposable
    {
        private readonly WebApplication _app;

        private CrBackend(WebApplication app) => (_app, Url) = (app, app.Urls.First());

        public string Url { get; }

        public static async Task<CrBackend> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            builder.Logging.ClearProviders();
            var app = builder.Build();
            app.MapGet("/v1/models", () => Results.Json(new { @object = "list", data = new[] { new { id = Model, @object = "model", owned_by = "test" } } }));
            app.MapPost("/v1/chat/completions", async (HttpContext http) =>
            {
                using var request = await JsonDocument.ParseAsync(http.Request.Body, cancellationToken: http.RequestAborted);
                http.Response.ContentType = "text/event-stream";
                var stream = Encoding.UTF8.GetBytes(": a comment\r" + string.Concat(Chunks.Select(c => "data: " + c + "\r\r")) + "data: [DONE]\r\r");
                // Seven bytes at a time: events, and the CRs ending them, fall across the agent's reads and frames.
                for (var at = 0; at < stream.Length; at += 7)
                {
                    await http.Response.Body.WriteAsync(stream.AsMemory(at, Math.Min(7, stream.Length - at)), http.RequestAborted);
                    await http.Response.Body.FlushAsync(http.RequestAborted);
                }
            });
            await app.StartAsync();
            return new CrBackend(app);
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }
}
