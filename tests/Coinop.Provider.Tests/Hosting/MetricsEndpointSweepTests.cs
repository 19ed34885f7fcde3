using System.Net;
using System.Text;
using Coinop.Provider.Hosting;
using Coinop.TestKit;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace Coinop.Provider.Tests.Hosting;

/// <summary>
/// The agent's one listener (<c>--metrics-listen</c>) gets hostile requests: every method, garbage paths and queries,
/// bodies. It answers the metrics or a JSON error, never a 5xx nor a bare status, and still serves the metrics after.
/// </summary>
public class MetricsEndpointSweepTests
{
    private static readonly string[] Methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

    private static readonly string[] Paths =
    [
        "/", "/metrics", "/metrics/", "/METRICS", "/metrics?x=%ff&name[]=1&" + new string('q', 2000), "/metrics/../status", "/..%2f..%2fetc%2fpasswd",
        "/" + new string('a', 3000), "/%C3%BCn%C3%AF%F0%9F%98%80", "/metrics%2f", "/status", "/healthz", "/api/provider/earnings",
    ];

    [Fact]
    public async Task Hostile_requests_get_the_metrics_or_a_json_error_and_the_metrics_are_still_served()
    {
        var ct = TestContext.Current.CancellationToken;
        var port = Ports.GetFree();
        using var meters = Meters();
        var endpoint = new MetricsEndpoint(meters, Options.Create(new ProviderOptions { MetricsListen = $"127.0.0.1:{port}" }), NullLogger<MetricsEndpoint>.Instance);
        await endpoint.StartAsync(ct);
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            var failures = new List<string>();
            foreach (var method in Methods)
            {
                foreach (var path in Paths)
                {
                    foreach (var body in new[] { null, "{", """{"metrics":[1e400]}""", new string('x', 100_000) })
                    {
                        using var request = new HttpRequestMessage(new HttpMethod(method), path);
                        if (body is not null && method != "HEAD")
                        {
                            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
                        }

                        request.Headers.TryAddWithoutValidation("Authorization", "Bearer " + new string('z', 500));
                        using var response = await http.SendAsync(request, ct);
                        var status = (int)response.StatusCode;
                        var text = await response.Content.ReadAsStringAsync(ct);
                        var problem = status < 400 ? null : ErrorAnswers.Problem(status, response.Content.Headers.ContentType?.MediaType, text, head: method == "HEAD");
                        if (problem is not null)
                        {
                            failures.Add($"{method} {path[..Math.Min(path.Length, 80)]} ({body?.Length}): {problem}: {text[..Math.Min(text.Length, 200)]}");
                        }
                    }
                }
            }

            Assert.True(failures.Count == 0, string.Join('\n', failures.Distinct().Take(40)));
            using var metrics = await http.GetAsync("/metrics", ct);
            Assert.Equal(HttpStatusCode.OK, metrics.StatusCode);
            Assert.StartsWith("text/plain", metrics.Content.Headers.ContentType?.MediaType, StringComparison.Ordinal);
        }
        finally
        {
            await endpoint.StopAsync(ct);
            await endpoint.DisposeAsync();
        }
    }

    private static MeterProvider Meters()
    {
        var builder = Sdk.CreateMeterProviderBuilder();
        MetricsEndpoint.AddTo(builder);
        return builder.Build();
    }
}
