using System.Net;
using System.Net.WebSockets;
using System.Text;
using Coinop.Core.Protocol;
using Coinop.Market.Inference;
using Coinop.Market.Tests.Inference;
using Coinop.Market.Tests.TestProviders;
using Microsoft.Extensions.DependencyInjection;
using Eventually = Coinop.Market.Tests.Gateway.Eventually;

namespace Coinop.Market.Tests.Cluster;

/// <summary>Jobs that arrive at one node and run on a provider linked to another: routing, streaming, backpressure, cancellation.</summary>
public class ForwardingTests
{
    private const string Chat = """{"model":"llama3","messages":[{"role":"user","content":"x"}]}""";
    private const string ChatStream = """{"model":"llama3","stream":true,"messages":[{"role":"user","content":"x"}]}""";

    [Fact]
    public async Task A_provider_linked_to_one_node_serves_a_stream_that_arrived_at_another_token_by_token()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var nodes = await TestNodes.StartAsync(3);
        const int tokens = 5;
        var consumerSaw = Enumerable.Range(0, tokens).Select(_ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).ToArray();
        // The provider sends token i+1 only after the consumer at node 3 has read token i: any buffering on the way
        // (at either node, or between them) would hold token i back and the stream would never finish.
        await using var provider = await nodes[0].ProviderAsync("llama3", ct, script: async (job, run) =>
        {
            for (var i = 0; i < tokens; i++)
            {
                await run.SendAsync($"data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"t{i} \"}}}}]}}\n\n");
                await consumerSaw[i].Task.WaitAsync(run.Cancelled);
            }

            await run.SendAsync("data: [DONE]\n\n");
            await run.DoneAsync();
        });
        await nodes.WaitRoutableAsync(2, provider.ProviderId);

        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = OpenAiApiTests.Json(ChatStream) };
        using var response = await nodes[2].Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct));
        var seen = 0;
        var text = new StringBuilder();
        while (await reader.ReadLineAsync(ct) is { } line)
        {
            if (line.StartsWith("data: {", StringComparison.Ordinal))
            {
                Assert.Contains($"t{seen} ", line, StringComparison.Ordinal);
                consumerSaw[seen++].TrySetResult();
            }

            text.AppendLine(line);
        }

        Assert.Equal(tokens, seen);
        Assert.Contains("data: [DONE]", text.ToString(), StringComparison.Ordinal);
        Assert.Empty(nodes[2].Directory.Snapshot); // node 3 holds no provider: the job was forwarded
    }

    [Fact]
    public async Task A_slow_consumer_at_another_node_stalls_the_provider_without_losing_bytes()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var nodes = await TestNodes.StartAsync(2, services: s => s.Configure<InferenceOptions>(o => o.WindowBytes = 64 * 1024));
        const int events = 4096;
        var payload = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" + new string('x', 16 * 1024) + "\"}}]}\n\n";
        await using var provider = await nodes[0].ProviderAsync("llama3", ct, script: async (_, run) =>
        {
            for (var i = 0; i < events; i++)
            {
                await run.SendAsync(payload);
            }

            await run.SendAsync("data: [DONE]\n\n");
            await run.DoneAsync();
        });
        await nodes.WaitRoutableAsync(1, provider.ProviderId);

        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = OpenAiApiTests.Json(ChatStream) };
        using var response = await nodes[1].Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        await Eventually.TrueAsync(() => Task.FromResult(!provider.Jobs.IsEmpty), ct);
        var run = provider.JobRun(provider.Jobs.Single().JobId)!;

        // The consumer reads nothing: node 2 stops reading the forward, node 1's writes stall, node 1 stops granting window.
        await run.WaitingForWindow.WaitAsync(TimeSpan.FromSeconds(60), ct);
        var sentWhileStalled = run.BytesSent;
        Assert.True(sentWhileStalled < (long)events * payload.Length, $"the provider sent everything ({sentWhileStalled} bytes) to a consumer that read nothing");

        var body = await response.Content.ReadAsStringAsync(ct);
        Assert.Equal(events, Sse.Parse(response.StatusCode, body).Data.Count(d => d.StartsWith("{\"choices\"", StringComparison.Ordinal)));
        Assert.EndsWith("data: [DONE]\n\n", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_consumer_leaving_another_node_cancels_the_job_at_the_provider()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var nodes = await TestNodes.StartAsync(2);
        await using var provider = await nodes[0].ProviderAsync("llama3", ct, script: Scripts.Hang());
        await nodes.WaitRoutableAsync(1, provider.ProviderId);
        using var consumer = CancellationTokenSource.CreateLinkedTokenSource(ct);

        var request = nodes[1].Http.PostAsync("/v1/chat/completions", OpenAiApiTests.Json(Chat), consumer.Token);
        await Eventually.TrueAsync(() => Task.FromResult(!provider.Jobs.IsEmpty), ct);
        await consumer.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => request);

        var cancelled = await provider.WaitForAsync<JobCancel>(_ => true).WaitAsync(TimeSpan.FromSeconds(30), ct);
        Assert.Equal("consumer_gone", cancelled.Reason);
    }

    [Fact]
    public async Task Every_node_lists_the_models_and_providers_of_the_whole_market()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var nodes = await TestNodes.StartAsync(2);
        await using var first = await nodes[0].ProviderAsync("llama3", ct, name: "on-one");
        await using var second = await nodes[1].ProviderAsync("qwen", ct, name: "on-two");
        await nodes.WaitRoutableAsync(0, second.ProviderId);
        await nodes.WaitRoutableAsync(1, first.ProviderId);

        for (var i = 0; i < 2; i++)
        {
            var models = await nodes[i].Http.GetStringAsync("/v1/models", ct);
            Assert.Contains("\"llama3\"", models, StringComparison.Ordinal);
            Assert.Contains("\"qwen\"", models, StringComparison.Ordinal);
            var providers = await nodes[i].Http.GetStringAsync("/api/providers", ct);
            Assert.Contains("\"on-one\"", providers, StringComparison.Ordinal);
            Assert.Contains("\"on-two\"", providers, StringComparison.Ordinal);
            Assert.DoesNotContain("\"online\":false", providers, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Power_of_two_choices_on_several_nodes_spreads_jobs_over_providers_by_shared_load()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var nodes = await TestNodes.StartAsync(2);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        JobScript held = async (job, run) =>
        {
            await release.Task.WaitAsync(run.Cancelled);
            await Scripts.Answer("done")(job, run);
        };
        // Two providers, each with room for four jobs, each linked to another node.
        var a = await TestProvider.ConnectAsync(nodes[0].Url, "a", cancellationToken: ct);
        var b = await TestProvider.ConnectAsync(nodes[1].Url, "b", cancellationToken: ct);
        await using var _ = a;
        await using var __ = b;
        a.Script = held;
        b.Script = held;
        await a.OfferAsync(ct, 4, TestProvider.Offer("llama3"));
        await b.OfferAsync(ct, 4, TestProvider.Offer("llama3"));
        await nodes.WaitRoutableAsync(0, b.ProviderId);
        await nodes.WaitRoutableAsync(1, a.ProviderId);

        // Eight jobs, alternating between the nodes: every node sees the other's load, so no provider is asked for a
        // fifth job while the other has room (the holder refuses a job beyond max_concurrent; none may be refused).
        var requests = new List<Task<HttpResponseMessage>>();
        for (var i = 0; i < 8; i++)
        {
            requests.Add(nodes[i % 2].Http.PostAsync("/v1/chat/completions", OpenAiApiTests.Json(Chat), ct));
            await Eventually.TrueAsync(async () =>
            {
                await nodes.RefreshAsync();
                return a.Jobs.Count + b.Jobs.Count == requests.Count;
            }, ct);
        }

        Assert.Equal(4, a.Jobs.Count);
        Assert.Equal(4, b.Jobs.Count);
        release.SetResult();
        foreach (var response in await Task.WhenAll(requests))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
    }

    [Fact]
    public async Task A_provider_that_links_again_to_another_node_closes_its_old_link_with_4409()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var nodes = await TestNodes.StartAsync(2);
        var old = await nodes[0].ProviderAsync("llama3", ct);
        await using var _ = old;
        await using var again = await TestProvider.ConnectAsync(nodes[1].Url, "test", key: TestProvider.NewKeyFrom(old.Key), cancellationToken: ct);
        await again.OfferAsync("llama3", ct);

        var closed = await old.Closed.WaitAsync(TimeSpan.FromSeconds(30), ct);
        Assert.Equal((WebSocketCloseStatus)CloseCodes.Replaced, closed.Status);
        await nodes.WaitRoutableAsync(0, again.ProviderId);
        using var response = await nodes[0].Http.PostAsync("/v1/chat/completions", OpenAiApiTests.Json(Chat), ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Single(again.Jobs);
        Assert.Empty(old.Jobs);
    }
}
