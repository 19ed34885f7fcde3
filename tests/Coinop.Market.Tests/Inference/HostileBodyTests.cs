using System.Text;
using System.Text.Json;
using Coinop.Market.Tests.TestProviders;
using Coinop.TestKit;
using CsCheck;

namespace Coinop.Market.Tests.Inference;

/// <summary>
/// The inference endpoints parse a consumer's body: valid bodies with a node replaced, mutated byte by byte, or random
/// JSON get a 4xx with a JSON error in the route's shape (or are served), never a 500.
/// </summary>
public class HostileBodyTests
{
    public static TheoryData<string, string> Routes => new()
    {
        { "/v1/chat/completions", """{"model":"llama3","stream":false,"max_tokens":20,"temperature":0.5,"stream_options":{"include_usage":true},"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"hi"}]}]}""" },
        { "/v1/completions", """{"model":"llama3","prompt":"hi","max_tokens":20,"stream":false}""" },
        { "/v1/embeddings", """{"model":"llama3","input":["a","b"]}""" },
        { "/v1/messages", """{"model":"llama3","max_tokens":20,"system":"s","stream":false,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}""" },
    };

    [Theory]
    [MemberData(nameof(Routes))]
    public async Task Bodies_an_attacker_builds_from_a_valid_one_are_never_a_server_error(string path, string valid)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var provider = await market.ProviderAsync("llama3", ct, embeddings: true);

        await HostileInput.JsonBodies(valid).SampleAsync(async body =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
            using var response = await market.Http.SendAsync(request, ct);
            var text = await response.Content.ReadAsStringAsync(ct);
            var status = (int)response.StatusCode;
            Assert.True(status < 500, $"{path}: {status} {text} for {body}");
            if (status >= 400)
            {
                using var json = JsonDocument.Parse(text);
                Assert.True(json.RootElement.TryGetProperty(path == "/v1/messages" ? "type" : "error", out _), $"{status} not in the route's error shape: {text}");
            }
        }, iter: 80, threads: 1);
    }
}
