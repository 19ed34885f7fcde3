using System.Net;
using System.Text;
using System.Text.Json;
using Coinop.Core.Protocol;
using Coinop.Market.Inference;
using Coinop.Market.Tests.Gateway;
using Coinop.Market.Tests.TestProviders;
using Coinop.Storage.Jobs;
using Microsoft.Extensions.DependencyInjection;

namespace Coinop.Market.Tests.Inference;

public class DispatchTests
{
    private const string Chat = """{"model":"llama3","messages":[{"role":"user","content":"x"}]}""";
    private const string ChatStream = """{"model":"llama3","stream":true,"messages":[{"role":"user","content":"x"}]}""";

    [Fact]
    public async Task A_provider_error_before_the_first_byte_is_retried_on_another_provider_with_a_new_fence()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        // The cheaper provider is tried first; it fails before any output.
        await using var failing = await market.ProviderAsync("llama3", ct, name: "failing", inSats: 100, outSats: 100, script: Scripts.Fail());
        await using var working = await market.ProviderAsync("llama3", ct, name: "working", inSats: 900, outSats: 900, script: Scripts.Answer("rescued"));

        var sse = await Sse.PostAsync(market.Http, "/v1/chat/completions", ChatStream, ct);

        Assert.Equal(HttpStatusCode.OK, sse.Status);
        Assert.Contains("rescued", sse.Raw, StringComparison.Ordinal);
        Assert.Equal(1, Assert.Single(failing.Jobs).Fence);
        var retry = Assert.Single(working.Jobs);
        Assert.True(retry.Fence > 2, "a retry runs under a fence past the revoked one");
        Assert.Equal(failing.Jobs.Single().JobId, retry.JobId);
    }

    [Fact]
    public async Task A_provider_killed_before_the_first_byte_is_replaced_and_the_request_succeeds()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        TestProvider? dying = null;
        dying = await market.ProviderAsync("llama3", ct, name: "dying", inSats: 100, outSats: 100, script: (_, _) =>
        {
            dying!.Kill();
            return Task.CompletedTask;
        });
        await using var working = await market.ProviderAsync("llama3", ct, name: "working", inSats: 900, outSats: 900, script: Scripts.Answer("still here"));

        using var response = await market.Http.PostAsync("/v1/chat/completions", OpenAiApiTests.Json(Chat), ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("still here", await response.Content.ReadAsStringAsync(ct), StringComparison.Ordinal);
        Assert.Single(working.Jobs);
        await dying.DisposeAsync();
    }

    [Fact]
    public async Task After_the_first_byte_a_failure_ends_the_stream_with_a_clean_error_and_no_retry()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var breaking = await market.ProviderAsync("llama3", ct, name: "breaking", inSats: 100, outSats: 100, script: async (job, run) =>
        {
            await run.SendAsync(Scripts.Output(job, "partial answer").First() + Scripts.Output(job, "partial answer").Skip(1).First());
            await run.ErrorAsync(JobErrorCodes.BackendTimeout, "backend stalled", outputSent: true);
        });
        await using var spare = await market.ProviderAsync("llama3", ct, name: "spare", inSats: 900, outSats: 900);

        var sse = await Sse.PostAsync(market.Http, "/v1/chat/completions", ChatStream, ct);

        Assert.Equal(HttpStatusCode.OK, sse.Status);
        Assert.Contains("partial", sse.Raw, StringComparison.Ordinal);
        using var error = JsonDocument.Parse(sse.Data[^1]);
        Assert.Equal("provider_failed", error.RootElement.GetProperty("error").GetProperty("code").GetString());
        Assert.DoesNotContain("[DONE]", sse.Data);
        Assert.Empty(spare.Jobs);
    }

    [Fact]
    public async Task Frames_with_a_stale_fence_never_reach_the_consumer()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        TestProvider? provider = null;
        provider = await market.ProviderAsync("llama3", ct, script: async (job, run) =>
        {
            await provider!.SendChunkAsync(job.JobId, job.Fence + 1, Encoding.UTF8.GetBytes("data: {\"injected\":true}\n\n"), ct);
            await provider.SendChunkAsync(job.JobId, job.Fence - 1, Encoding.UTF8.GetBytes("data: {\"stale\":true}\n\n"), ct);
            await Scripts.Answer("genuine")(job, run);
        });

        var sse = await Sse.PostAsync(market.Http, "/v1/chat/completions", ChatStream, ct);

        Assert.Contains("genuine", sse.Raw, StringComparison.Ordinal);
        Assert.DoesNotContain("injected", sse.Raw, StringComparison.Ordinal);
        Assert.DoesNotContain("stale", sse.Raw, StringComparison.Ordinal);
        await provider.DisposeAsync();
    }

    [Fact]
    public async Task A_provider_that_overruns_its_window_loses_the_job()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(builder: b => b.Services.Configure<InferenceOptions>(o => o.WindowBytes = 4096), cancellationToken: ct);
        await using var greedy = await market.ProviderAsync("llama3", ct, name: "greedy", inSats: 100, outSats: 100, script: async (job, run) =>
        {
            await run.SendUnflowedAsync(new byte[5000]); // more than the whole window in one go
            await run.CancelledSignal.Task;
        });
        await using var polite = await market.ProviderAsync("llama3", ct, name: "polite", inSats: 900, outSats: 900, script: Scripts.Answer("within bounds"));

        using var response = await market.Http.PostAsync("/v1/chat/completions", OpenAiApiTests.Json(Chat), ct);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("within bounds", await response.Content.ReadAsStringAsync(ct), StringComparison.Ordinal);
        var run = greedy.JobRun(greedy.Jobs.Single().JobId)!;
        await run.CancelledSignal.Task.WaitAsync(ct);
        Assert.Equal("window_overrun", run.CancelReason);
    }

    [Fact]
    public async Task A_slow_consumer_stops_the_window_grants_and_the_provider_stalls_without_losing_bytes()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(builder: b => b.Services.Configure<InferenceOptions>(o => o.WindowBytes = 64 * 1024), cancellationToken: ct);
        const int events = 4096;
        var payload = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" + new string('x', 16 * 1024) + "\"}}]}\n\n";
        await using var provider = await market.ProviderAsync("llama3", ct, script: async (_, run) =>
        {
            for (var i = 0; i < events; i++)
            {
                await run.SendAsync(payload);
            }

            await run.SendAsync("data: [DONE]\n\n");
            await run.DoneAsync();
        });

        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = OpenAiApiTests.Json(ChatStream) };
        using var response = await market.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
        await Eventually.TrueAsync(() => Task.FromResult(!provider.Jobs.IsEmpty), ct);
        var run = provider.JobRun(provider.Jobs.Single().JobId)!;

        // The consumer reads nothing: once the sockets' buffers are full the market stops granting and the provider waits.
        await run.WaitingForWindow.WaitAsync(TimeSpan.FromSeconds(60), ct);
        var sentWhileStalled = run.BytesSent;
        Assert.True(sentWhileStalled < (long)events * payload.Length, $"the provider sent everything ({sentWhileStalled} bytes) to a consumer that read nothing");

        var body = await response.Content.ReadAsStringAsync(ct);
        Assert.Equal(events, Sse.Parse(response.StatusCode, body).Data.Count(d => d.StartsWith("{\"choices\"", StringComparison.Ordinal)));
        Assert.EndsWith("data: [DONE]\n\n", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_consumer_that_goes_away_gets_its_job_cancelled_at_the_provider()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var provider = await market.ProviderAsync("llama3", ct, script: Scripts.Hang());
        using var consumer = CancellationTokenSource.CreateLinkedTokenSource(ct);

        var request = market.Http.PostAsync("/v1/chat/completions", OpenAiApiTests.Json(Chat), consumer.Token);
        await Eventually.TrueAsync(() => Task.FromResult(!provider.Jobs.IsEmpty), ct);
        await consumer.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => request);

        var cancelled = await provider.WaitForAsync<JobCancel>(_ => true).WaitAsync(TimeSpan.FromSeconds(30), ct);
        Assert.Equal("consumer_gone", cancelled.Reason);
    }

    [Fact]
    public async Task Every_job_is_recorded_off_the_request_path()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var provider = await market.ProviderAsync("llama3", ct);

        using var response = await market.Http.PostAsync("/v1/chat/completions", OpenAiApiTests.Json(Chat), ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        var store = market.App.Services.GetRequiredService<IJobRecordStore>();
        var jobId = provider.Jobs.Single().JobId;
        await Eventually.TrueAsync(async () => await store.FindAsync(jobId, ct) is not null, ct);
        var record = (await store.FindAsync(jobId, ct))!;
        Assert.Equal("llama3", record.Model);
        Assert.Equal("openai", record.WireFormat);
        Assert.Equal("chat/completions", record.Route);
        Assert.Equal(provider.ProviderId, record.ProviderId);
        Assert.Equal(1, record.Attempts);
        Assert.Equal(JobOutcome.Completed, record.Outcome);
        Assert.Equal(5, record.InputTokens);
        Assert.Equal(7, record.OutputTokens);
        Assert.NotNull(record.FirstByteAt);
        Assert.Null(record.CostMsat);
    }
}
