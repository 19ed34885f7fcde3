using System.Diagnostics.Metrics;
using System.Text;
using Coinop.Core.Protocol;
using Coinop.Provider.Tests.Infrastructure;
using Coinop.TestKit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Coinop.Provider.Tests.Agent;

public class JobTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>What the backend answers when called directly (the simulator runs on a frozen clock, so answers are byte-identical).</summary>
    private static async Task<byte[]> DirectAsync(SimServer sim, JobMessage job)
    {
        using var http = new HttpClient();
        using var response = await http.PostAsync(sim.Url + "/v1/" + job.Path, new StringContent(job.Request.GetRawText(), Encoding.UTF8, "application/json"), Ct);
        return await response.Content.ReadAsByteArrayAsync(Ct);
    }

    [Fact]
    public async Task Relays_a_stream_byte_for_byte_and_reports_its_usage()
    {
        await using var rig = await Rig.StartAsync(simTime: new FakeTimeProvider());
        var job = TestJobs.Chat("tell me a long story [[sim:tokens=3000]]", window: 8 * 1024, fence: 7);

        var transcript = await rig.Link.SendJobAsync(job);
        var done = Assert.IsType<JobDone>(await transcript.EndedWithin());

        var expected = await DirectAsync(rig.Sim, job);
        Assert.Equal(expected, transcript.Output);
        Assert.True(transcript.Chunks > 1);
        Assert.False(transcript.Overrun);
        Assert.False(transcript.WrongFence);
        Assert.Equal(7, done.Fence);
        Assert.Equal(3000, done.Usage.OutputTokens);
        Assert.True(done.Usage.InputTokens > 0);
    }

    [Fact]
    public async Task A_stream_is_relayed_event_by_event_while_the_backend_is_still_generating()
    {
        var simTime = new FakeTimeProvider();
        await using var rig = await Rig.StartAsync(simTime: simTime);
        var transcript = await rig.Link.SendJobAsync(TestJobs.Chat("slowly [[sim:tokens=3]] [[sim:slow=1000]]"));

        // The backend sent its opening events and waits a second of its frozen clock before the next token: what it
        // sent must reach the market now, not together with what follows (no frame is held back for company).
        await transcript.WaitForBytesAsync(1);
        Assert.StartsWith("data: ", Encoding.UTF8.GetString(transcript.Output), StringComparison.Ordinal);
        Assert.False(transcript.Ended.IsCompleted);
        var before = transcript.Chunks;

        // Let every token come due. The backend reads its clock and then sets its timer, so a timer set just after an
        // advance waits one more: advance again until the stream ends. Bounded by the overall timeout, not by a count of
        // advances (a count is a hidden wall-clock budget: on a loaded machine the backend sets its timers late).
        using var overall = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (!transcript.Ended.IsCompleted)
        {
            Assert.False(overall.IsCancellationRequested, "the stream did not end while the clock kept advancing");
            simTime.Advance(TimeSpan.FromSeconds(10));
            await Task.WhenAny(transcript.Ended, Task.Delay(TimeSpan.FromMilliseconds(100), Ct));
        }

        var done = Assert.IsType<JobDone>(await transcript.EndedWithin());
        Assert.True(transcript.Chunks > before);
        Assert.Equal(3, done.Usage.OutputTokens);
    }

    [Fact]
    public async Task Relays_json_answers_and_embeddings_with_their_usage()
    {
        await using var rig = await Rig.StartAsync(simTime: new FakeTimeProvider());
        var chat = TestJobs.Chat("a plain answer [[sim:tokens=11]]", stream: false);
        var chatRun = await rig.Link.SendJobAsync(chat);
        var chatDone = Assert.IsType<JobDone>(await chatRun.EndedWithin());
        Assert.Equal(await DirectAsync(rig.Sim, chat), chatRun.Output);
        Assert.Equal(11, chatDone.Usage.OutputTokens);

        var embed = TestJobs.Chat("", stream: false).With("embeddings", new { model = "sim-small", input = new[] { "one two", "three" } });
        var embedRun = await rig.Link.SendJobAsync(embed);
        var embedDone = Assert.IsType<JobDone>(await embedRun.EndedWithin());
        Assert.Equal(await DirectAsync(rig.Sim, embed), embedRun.Output);
        Assert.Equal(new TokenUsage(3, 0), embedDone.Usage);
    }

    [Fact]
    public async Task A_market_that_grants_no_window_stalls_the_backend_read_until_it_grants_more()
    {
        await using var rig = await Rig.StartAsync(simTime: new FakeTimeProvider());
        long backendBytes = 0;
        var meters = rig.Agent.Host.Services.GetRequiredService<IMeterFactory>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Scope == meters && instrument.Name == "coinop.provider.backend.bytes_read")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref backendBytes, value));
        listener.Start();

        const int window = 4096;
        var job = TestJobs.Chat("a very long answer [[sim:tokens=20000]]", window: window);
        var transcript = await rig.Link.SendJobAsync(job, autoGrant: false);
        await transcript.WaitForBytesAsync(window);

        // Observation window for the negative check: nothing more is read or sent without credit.
        await Task.Delay(300, Ct);
        Assert.Equal(window, transcript.Received);
        Assert.Equal(window, Interlocked.Read(ref backendBytes));
        Assert.False(transcript.Ended.IsCompleted);

        // The consumer catches up: the job resumes and completes intact.
        while (!transcript.Ended.IsCompleted)
        {
            var before = transcript.Received;
            await rig.Link.GrantAsync(job.JobId, 32 * 1024);
            await Task.WhenAny(transcript.WaitForBytesAsync(before + 32 * 1024), transcript.Ended);
        }

        Assert.IsType<JobDone>(await transcript.Ended);
        Assert.False(transcript.Overrun);
        Assert.Equal(await DirectAsync(rig.Sim, job), transcript.Output);
    }

    [Fact]
    public async Task A_cancelled_job_stops_its_backend_call_and_sends_nothing_more()
    {
        await using var rig = await Rig.StartAsync(sim: o => o.TokensPerSecond = 50);
        var slow = await rig.Link.SendJobAsync(TestJobs.Chat("slowly [[sim:tokens=100000]]"));
        await slow.WaitForBytesAsync(1);
        await rig.Link.SendAsync(new JobCancel(slow.Job.JobId, "consumer_gone"));
        await Eventually.WaitAsync(() => Task.FromResult<int?>(rig.Sim.Simulator.Active), a => a == 0, "the backend request to be aborted", cancellationToken: Ct);

        // A later job completes; the cancelled one never reports an end.
        var next = await rig.Link.SendJobAsync(TestJobs.Chat("quick [[sim:tokens=2]]"));
        Assert.IsType<JobDone>(await next.EndedWithin());
        Assert.False(slow.Ended.IsCompleted);
        await Eventually.WaitAsync(() => Task.FromResult<int?>(rig.Agent.Agent.Load.InFlight), n => n == 0, "the cancelled job to leave", cancellationToken: Ct);
    }

    [Fact]
    public async Task A_job_past_its_deadline_ends_with_backend_timeout()
    {
        await using var rig = await Rig.StartAsync();
        var transcript = await rig.Link.SendJobAsync(TestJobs.Chat("[[sim:hang]]", deadline: TimeSpan.FromMilliseconds(300)));
        var error = Assert.IsType<JobError>(await transcript.EndedWithin());
        Assert.Equal(JobErrorCodes.BackendTimeout, error.Code);
        Assert.False(error.OutputSent);
        await Eventually.WaitAsync(() => Task.FromResult<int?>(rig.Sim.Simulator.Active), a => a == 0, "the hanging backend call to be dropped", cancellationToken: Ct);
    }

    [Fact]
    public async Task Backend_failures_become_protocol_error_codes()
    {
        await using var rig = await Rig.StartAsync();
        var cases = new (string Prompt, bool Stream, string Code, bool OutputSent)[]
        {
            ("[[sim:status=503]]", true, JobErrorCodes.OutOfCapacity, false),
            ("[[sim:status=429]]", false, JobErrorCodes.OutOfCapacity, false),
            ("[[sim:status=401]]", true, JobErrorCodes.AuthRejectedByBackend, false),
            ("[[sim:status=403]]", true, JobErrorCodes.AuthRejectedByBackend, false),
            ("[[sim:status=404]]", true, JobErrorCodes.ModelNotLoaded, false),
            ("[[sim:status=400]]", true, JobErrorCodes.InvalidRequest, false),
            ("[[sim:status=422]]", false, JobErrorCodes.InvalidRequest, false),
            ("[[sim:status=500]]", true, JobErrorCodes.Internal, false),
            ("[[sim:drop-after=3]] [[sim:tokens=50]]", true, JobErrorCodes.BackendUnreachable, true),
            ("[[sim:drop-after=40]] [[sim:tokens=50]]", false, JobErrorCodes.BackendUnreachable, true),
            ("[[sim:drop-after=0]]", true, JobErrorCodes.BackendUnreachable, false),
        };
        foreach (var (prompt, stream, code, outputSent) in cases)
        {
            var transcript = await rig.Link.SendJobAsync(TestJobs.Chat(prompt, stream));
            var error = Assert.IsType<JobError>(await transcript.EndedWithin());
            Assert.True(code == error.Code, $"{prompt}: expected {code}, got {error.Code} ({error.Message})");
            Assert.True(outputSent == error.OutputSent, $"{prompt}: output_sent {error.OutputSent}");
            Assert.Equal(outputSent, transcript.Received > 0);
        }

        var invalid = await rig.Link.SendJobAsync(TestJobs.Chat("[[sim:status=400]]"));
        Assert.Contains("simulated failure", Assert.IsType<JobError>(await invalid.EndedWithin()).Message, StringComparison.Ordinal);

        var unknownModel = await rig.Link.SendJobAsync(TestJobs.Chat("hi", model: "not-served"));
        Assert.Equal(JobErrorCodes.ModelNotLoaded, Assert.IsType<JobError>(await unknownModel.EndedWithin()).Code);

        var badPath = await rig.Link.SendJobAsync(TestJobs.Chat("hi", path: "../admin"));
        Assert.Equal(JobErrorCodes.InvalidRequest, Assert.IsType<JobError>(await badPath.EndedWithin()).Code);
    }

    [Fact]
    public async Task An_unreachable_backend_is_reported_as_such()
    {
        await using var rig = await Rig.StartAsync();
        await rig.Sim.App.StopAsync(Ct);
        var transcript = await rig.Link.SendJobAsync(TestJobs.Chat("anyone there?"));
        var error = Assert.IsType<JobError>(await transcript.EndedWithin());
        Assert.Equal(JobErrorCodes.BackendUnreachable, error.Code);
        Assert.False(error.OutputSent);

        // The failure triggers a discovery pass, which withdraws the models.
        var withdrawn = await rig.Link.NextAsync<CapabilitiesMessage>();
        Assert.Empty(withdrawn.Models);
    }

    [Fact]
    public async Task Jobs_over_max_concurrent_are_refused_as_out_of_capacity()
    {
        await using var rig = await Rig.StartAsync(o => o.MaxConcurrent = 1);
        var busy = await rig.Link.SendJobAsync(TestJobs.Chat("[[sim:hang]]"));
        await Eventually.WaitAsync(() => Task.FromResult<int?>(rig.Sim.Simulator.Active), a => a == 1, "the first job to reach the backend", cancellationToken: Ct);

        var refused = await rig.Link.SendJobAsync(TestJobs.Chat("me too"));
        var error = Assert.IsType<JobError>(await refused.EndedWithin());
        Assert.Equal(JobErrorCodes.OutOfCapacity, error.Code);
        Assert.False(error.OutputSent);

        await rig.Link.SendAsync(new JobCancel(busy.Job.JobId, "consumer_gone"));
        await Eventually.WaitAsync(() => Task.FromResult<int?>(rig.Agent.Agent.Load.InFlight), n => n == 0, "the slot to free", cancellationToken: Ct);
        var accepted = await rig.Link.SendJobAsync(TestJobs.Chat("now? [[sim:tokens=1]]"));
        Assert.IsType<JobDone>(await accepted.EndedWithin());
    }

    [Fact]
    public async Task Heartbeats_carry_the_real_load()
    {
        await using var rig = await Rig.StartAsync(market: m => m.HeartbeatTtlMs = 300, sim: o => o.TokensPerSecond = 100);
        var first = await rig.Link.NextAsync<HeartbeatMessage>();
        Assert.Equal(LoadFigures.Idle, first.Load);

        var running = await rig.Link.SendJobAsync(TestJobs.Chat("[[sim:tokens=60]]"));
        var busy = await rig.Link.NextAsync<HeartbeatMessage>(h => h.Load.InFlight == 1);
        Assert.Equal(0, busy.Load.ErrorRate);
        Assert.IsType<JobDone>(await running.EndedWithin());

        var failed = await rig.Link.SendJobAsync(TestJobs.Chat("[[sim:status=500]]"));
        Assert.IsType<JobError>(await failed.EndedWithin());

        var after = await rig.Link.NextAsync<HeartbeatMessage>(h => h.Load.ErrorRate > 0);
        Assert.Equal(0, after.Load.InFlight);
        Assert.Equal(0, after.Load.QueueDepth);
        Assert.True(after.Load.P50LatencyMs > 0);
        Assert.True(after.Load.P95LatencyMs >= after.Load.P50LatencyMs);
        Assert.True(after.Load.TokensPerSecond > 0);
        Assert.Equal(0.5, after.Load.ErrorRate);
    }
}
