using System.Net;
using System.Text;
using Coinop.TestKit;

namespace Coinop.EndToEnd.Tests;

/// <summary>Market restarts, enrollment codes and bad input, against real processes.</summary>
public class MarketLifecycleTests
{
    private static async Task<string> ChatAsync(Cluster cluster, string market, string prompt)
    {
        using var body = new StringContent($$"""{"model":"sim-small","messages":[{"role":"user","content":"{{prompt}}"}]}""", Encoding.UTF8, "application/json");
        using var response = await cluster.Http.PostAsync(market + "/v1/chat/completions", body, TestContext.Current.CancellationToken);
        var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True(response.IsSuccessStatusCode, $"{response.StatusCode}: {text}");
        return text;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_provider_reconnects_after_the_market_restarts_and_keeps_its_id(bool crash)
    {
        await using var cluster = new Cluster();
        var (_, sim) = await cluster.StartSimulatorAsync("sim");
        var port = Ports.GetFree();
        var (market, url) = await cluster.StartMarketAsync("market", port, "--free");
        var (provider, id) = await cluster.StartProviderAsync("provider", url, "--backend", $"openai={sim}");
        await cluster.WaitOnlineAsync(url, id);
        await ChatAsync(cluster, url, "before");

        if (crash)
        {
            market.KillHard();
        }
        else
        {
            market.Terminate(); // a deploy: providers are told 1001 drain:deploy
            Assert.Equal(0, await market.WaitForExitAsync());
        }

        await market.Exited;
        var (_, again) = await cluster.StartMarketAsync("market", port, "--free");
        Assert.Equal(url, again);
        await cluster.WaitOnlineAsync(url, id);
        await ChatAsync(cluster, url, "after");
        Assert.False(provider.HasExited);
    }

    [Fact]
    public async Task Enrollment_codes_admit_as_many_providers_as_they_have_uses()
    {
        await using var cluster = new Cluster();
        var (_, sim) = await cluster.StartSimulatorAsync("sim");
        var (_, market) = await cluster.StartMarketAsync("market", 0, "--free", "--enrollment", "code");

        var codeProcess = cluster.Start("enroll-code", ["market", "enroll-code", "--data", cluster.Dir("market"), "--uses", "1", "--valid-for", "1h"]);
        Assert.Equal(0, await codeProcess.WaitForExitAsync());
        var code = codeProcess.Output.Trim().Split('\n')[^1].Trim();
        Assert.StartsWith("COINOP-", code, StringComparison.Ordinal);

        var (_, admitted) = await cluster.StartProviderAsync("first", market, "--backend", $"openai={sim}", "--enroll", code);
        await cluster.WaitOnlineAsync(market, admitted);

        var (second, refusedId) = await cluster.StartProviderAsync("second", market, "--backend", $"openai={sim}", "--enroll", code);
        await second.WaitForLineAsync("enrollment_code_used_up", cancellationToken: TestContext.Current.CancellationToken);
        var (third, noCodeId) = await cluster.StartProviderAsync("third", market, "--backend", $"openai={sim}");
        await third.WaitForLineAsync("enrollment_required", cancellationToken: TestContext.Current.CancellationToken);

        Assert.Null(await cluster.ProviderAsync(market, refusedId));
        Assert.Null(await cluster.ProviderAsync(market, noCodeId));

        // The admitted provider is known now: it reconnects without a code after a restart.
        await ChatAsync(cluster, market, "served by the enrolled provider");
    }

    [Fact]
    public async Task Malformed_and_oversized_requests_get_clear_JSON_errors_from_a_running_market()
    {
        await using var cluster = new Cluster();
        var (_, market) = await cluster.StartMarketAsync("market", 0, "--free");
        var ct = TestContext.Current.CancellationToken;

        async Task<(HttpStatusCode, string)> Post(string path, string json)
        {
            // Expect: 100-continue lets a large upload learn of a 413 before sending the body, as HTTP intends.
            using var request = new HttpRequestMessage(HttpMethod.Post, market + path)
            {
                Content = new StringContent(json, Encoding.UTF8, "application/json"),
            };
            request.Headers.ExpectContinue = json.Length > 1024 * 1024;
            using var r = await cluster.Http.SendAsync(request, ct);
            return (r.StatusCode, await r.Content.ReadAsStringAsync(ct));
        }

        foreach (var bad in new[] { "{", "[]", "{\"model\":1}", "{\"model\":\"m\"}", "{\"model\":\"m\",\"messages\":\"x\"}", "" })
        {
            var (status, text) = await Post("/v1/chat/completions", bad);
            Assert.Equal(HttpStatusCode.BadRequest, status);
            Assert.Contains("\"error\"", text, StringComparison.Ordinal);
        }

        var (unknown, unknownText) = await Post("/v1/chat/completions", """{"model":"no-such-model","messages":[{"role":"user","content":"hi"}]}""");
        Assert.Equal(HttpStatusCode.NotFound, unknown);
        Assert.Contains("no-such-model", unknownText, StringComparison.Ordinal);

        var huge = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"" + new string('x', 5 * 1024 * 1024) + "\"}]}";
        var (tooLarge, tooLargeText) = await Post("/v1/chat/completions", huge);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, tooLarge);
        Assert.Contains("\"error\"", tooLargeText, StringComparison.Ordinal);

        var (anthropicBad, anthropicText) = await Post("/v1/messages", "{\"model\":5}");
        Assert.Equal(HttpStatusCode.BadRequest, anthropicBad);
        Assert.Contains("\"type\":\"error\"", anthropicText, StringComparison.Ordinal);
    }
}
