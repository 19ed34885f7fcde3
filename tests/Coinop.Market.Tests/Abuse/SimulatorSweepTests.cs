using System.Net;
using Coinop.SimBackend.Hosting;
using CsCheck;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Coinop.Market.Tests.Abuse;

/// <summary>
/// The route sweep (<see cref="RouteSweep"/>, <see cref="HostileRequests"/>) on the simulator's HTTP server (<c>coinop
/// simulator</c>, run next to a provider to try things out): every route it serves, read from its endpoint data source,
/// gets the fixed catalogue and CsCheck-generated requests. None may answer a 5xx or an error that is not JSON, nothing
/// is logged at Error, and it still answers afterwards.
/// </summary>
public class SimulatorSweepTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task No_simulator_route_answers_hostile_input_with_a_server_error_or_an_error_that_is_not_json()
    {
        var errors = new ErrorLogs();
        await using var sim = SimBackendHost.Build(new SimBackendOptions(), configure: b =>
        {
            b.Logging.ClearProviders();
            b.Services.AddSingleton<ILoggerProvider>(errors);
        });
        await sim.StartAsync(Ct);
        var routes = RouteSweep.Routes(sim);
        foreach (var known in new[] { "/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models", "/api/show", "/api/tags" })
        {
            Assert.Contains(routes, r => r.Pattern == known);
        }

        var bodies = new Dictionary<string, string[]>(StringComparer.Ordinal)
        {
            ["/v1/chat/completions"] =
            [
                """{"model":"sim-small","messages":[{"role":"user","content":"hi"}],"max_tokens":5}""",
                """{"model":"sim-small","messages":[{"role":"user","content":"hi"}],"max_tokens":5,"stream":true,"stream_options":{"include_usage":true}}""",
                """{"model":"sim-small","messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}}]}],"tools":[{"type":"function","function":{"name":"f","parameters":{}}}],"n":2,"logprobs":true}""",
            ],
            ["/v1/completions"] = ["""{"model":"sim-small","prompt":"hi","max_tokens":5}""", """{"model":"sim-small","prompt":["a","b"],"max_tokens":5,"stream":true}"""],
            ["/v1/embeddings"] = ["""{"model":"sim-small","input":["a","b"]}""", """{"model":"sim-small","input":"a","dimensions":8,"encoding_format":"base64"}"""],
            ["/api/show"] = ["""{"model":"sim-small"}""", """{"name":"sim-large"}"""],
        };
        var hostile = new HostileRequests(HostileRequests.GarbageParameters, [[], [("Authorization", "Bearer sk-" + new string('0', 64))]], bodies, BodyCredentials: [0],
            Gen.Const("cashuB"));
        using var http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = new Uri(sim.BaseAddress()) };
        var statuses = new SortedDictionary<string, int>(StringComparer.Ordinal);
        await RouteSweep.SweepAsync(http, hostile, routes, statuses, Ct);
        TestContext.Current.TestOutputHelper?.WriteLine(string.Join('\n', statuses.Select(s => $"{s.Value,6} × {s.Key}")));

        using (var models = await http.GetAsync("/v1/models", Ct))
        {
            Assert.Equal(HttpStatusCode.OK, models.StatusCode);
        }

        Assert.True(errors.Entries.Count == 0, "logged at Error:\n" + string.Join('\n', errors.Entries));
    }

    /// <summary>
    /// A tool schema whose property name or type is an escaped lone surrogate, read only while the answer is made (with
    /// <c>[[sim:tool-calls=1]]</c>): was a 500 (GetString's InvalidOperationException), like any such string in a body.
    /// </summary>
    [Theory]
    [InlineData("""{"type":"object","properties":{"\ud800":{"type":"string"}}}""")]
    [InlineData("""{"type":"object","properties":{"a":{"type":"\udc00"}}}""")]
    public async Task A_tool_schema_the_simulator_cannot_read_is_a_clean_400(string parameters)
    {
        await using var sim = SimBackendHost.Build(new SimBackendOptions(), configure: b => b.Logging.ClearProviders());
        await sim.StartAsync(Ct);
        using var http = new HttpClient { BaseAddress = new Uri(sim.BaseAddress()) };
        foreach (var stream in new[] { "false", "true" })
        {
            var body = $$$"""{"model":"sim-small","stream":{{{stream}}},"messages":[{"role":"user","content":"[[sim:tool-calls=1]] go"}],"tools":[{"type":"function","function":{"name":"f","parameters":{{{parameters}}}}}]}""";
            using var response = await http.PostAsync("/v1/chat/completions", new StringContent(body, System.Text.Encoding.UTF8, "application/json"), Ct);
            await RouteSweep.AssertCleanRefusalAsync(response, HttpStatusCode.BadRequest);
        }
    }
}
