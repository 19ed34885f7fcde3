using System.Net.WebSockets;
using Coinop.Core.Protocol;
using Coinop.Provider.Tests.Infrastructure;
using Coinop.TestKit;

namespace Coinop.Provider.Tests.Agent;

public class DrainTests
{
    [Fact]
    public async Task Stopping_announces_the_drain_refuses_new_jobs_finishes_the_running_one_and_closes_with_1000()
    {
        await using var rig = await Rig.StartAsync();

        // The market grants no window past the first KiB: the running job cannot finish (and the agent cannot close
        // the link) before the test has seen the drain refuse a new job, however slowly the test runs.
        var job = TestJobs.Chat("[[sim:tokens=60]]", window: 1024);
        var running = await rig.Link.SendJobAsync(job, autoGrant: false);
        await running.WaitForBytesAsync(1);

        var stopping = rig.Agent.StopAsync();
        var notice = await rig.Link.NextAsync<DrainNotice>();
        Assert.Equal(30_000, notice.DeadlineMs);

        var refused = await rig.Link.SendJobAsync(TestJobs.Chat("one more?"));
        var error = Assert.IsType<JobError>(await refused.EndedWithin());
        Assert.Equal(JobErrorCodes.OutOfCapacity, error.Code);

        Assert.False(running.Ended.IsCompleted);
        await rig.Link.GrantAsync(job.JobId, 1 << 20);
        Assert.IsType<JobDone>(await running.EndedWithin());
        var (status, _) = await rig.Link.Closed.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, status);
        await stopping;

        // A drained agent does not come back.
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => rig.Market.NextConnectionAsync(TimeSpan.FromMilliseconds(500)));
    }

    [Fact]
    public async Task Jobs_still_running_at_the_drain_deadline_are_abandoned_with_an_error()
    {
        await using var rig = await Rig.StartAsync(o => o.DrainTimeout = TimeSpan.FromMilliseconds(300));
        var stuck = await rig.Link.SendJobAsync(TestJobs.Chat("[[sim:hang]]"));
        await Eventually.WaitAsync(() => Task.FromResult<int?>(rig.Sim.Simulator.Active), a => a == 1, "the job to reach the backend", cancellationToken: TestContext.Current.CancellationToken);

        await rig.Agent.StopAsync();
        var error = Assert.IsType<JobError>(await stuck.EndedWithin());
        Assert.Equal(JobErrorCodes.Internal, error.Code);
        Assert.Contains("drain deadline", error.Message, StringComparison.Ordinal);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, (await rig.Link.Closed).Status);
    }

    [Theory]
    [InlineData("SIGTERM")]
    [InlineData("Ctrl-C")]
    public async Task A_signal_drains_the_cli_agent_which_then_exits_0(string signal)
    {
        await using var sim = await SimServer.StartAsync(o => o.TokensPerSecond = 50);
        await using var market = await FakeMarket.StartAsync();
        using var dir = new TempDirectory();
        await using var agent = ChildProcess.StartCoinop("provider", ["provider", "--market", market.Url, "--backend", "openai=" + sim.Url, "--data", dir.Path]);
        var link = await market.NextConnectionAsync(TimeSpan.FromSeconds(60));
        await link.NextAsync<CapabilitiesMessage>(c => c.Models.Count > 0); // a first pass that missed the probe timeout offers nothing
        var running = await link.SendJobAsync(TestJobs.Chat("[[sim:tokens=50]]"));
        await running.WaitForBytesAsync(1);

        if (signal == "SIGTERM")
        {
            agent.Terminate();
        }
        else
        {
            agent.Interrupt();
        }

        await link.NextAsync<DrainNotice>();
        Assert.IsType<JobDone>(await running.EndedWithin());
        Assert.Equal(WebSocketCloseStatus.NormalClosure, (await link.Closed).Status);
        Assert.Equal(0, await agent.WaitForExitAsync());
        Assert.Contains("Draining", agent.Output, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(dir.Path, "provider.pid")));
    }

    [Fact]
    public async Task Children_start_with_ctrl_c_at_its_default_even_when_the_test_runner_ignores_it()
    {
        // A runner started in the background (cmd &, nohup cmd &) ignores SIGINT and SIGQUIT, and exec hands that on:
        // the Ctrl-C case above would then wait in vain for a drain the agent never starts.
        await using var child = ChildProcess.Start("status", "cat", ["/proc/self/status"]);
        Assert.Equal(0, await child.WaitForExitAsync());
        var ignored = Convert.ToUInt64(child.Output.Split('\n').Single(l => l.StartsWith("SigIgn:", StringComparison.Ordinal))["SigIgn:".Length..].Trim(), 16);
        Assert.Equal(0UL, ignored & ((1UL << (2 - 1)) | (1UL << (3 - 1)))); // bit n-1 is signal n: SIGINT 2, SIGQUIT 3
    }

    [Fact]
    public async Task The_drain_command_finds_the_agent_by_its_data_dir_and_waits_for_it_to_exit()
    {
        using var dir = new TempDirectory();
        await using (var nothing = ChildProcess.StartCoinop("drain", ["provider", "drain", "--data", dir.Path]))
        {
            Assert.Equal(1, await nothing.WaitForExitAsync());
            Assert.Contains("no provider agent is running", nothing.Output, StringComparison.Ordinal);
        }

        await using var sim = await SimServer.StartAsync(o => o.TokensPerSecond = 50);
        await using var market = await FakeMarket.StartAsync();
        await using var agent = ChildProcess.StartCoinop("provider", ["provider", "--market", market.Url, "--backend", "openai=" + sim.Url, "--data", dir.Path]);
        var link = await market.NextConnectionAsync(TimeSpan.FromSeconds(60));
        await link.NextAsync<CapabilitiesMessage>(c => c.Models.Count > 0); // a first pass that missed the probe timeout offers nothing
        var running = await link.SendJobAsync(TestJobs.Chat("[[sim:tokens=50]]"));
        await running.WaitForBytesAsync(1);

        await using var drain = ChildProcess.StartCoinop("drain", ["provider", "drain", "--data", dir.Path]);
        Assert.Equal(0, await drain.WaitForExitAsync());
        Assert.Contains("drained and exited", drain.Output, StringComparison.Ordinal);
        Assert.False(IsRunning(agent.Pid), "the drain command returned before the agent exited");
        Assert.Equal(0, await agent.WaitForExitAsync());
        Assert.IsType<JobDone>(await running.EndedWithin());
    }

    /// <summary>Running means present and not a zombie (exited, waiting to be reaped by this test process).</summary>
    private static bool IsRunning(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }
}
