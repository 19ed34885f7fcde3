using Coinop.Provider.Workloads;
using Coinop.Provider.Workloads.Sandboxes;
using Coinop.TestKit;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Coinop.Provider.Tests.Workloads;

/// <summary>
/// No Docker daemon runs on the test machines, so only detection and the container and network mapping (what the
/// agent asks the Engine API for) are tested here; the running side (create, attach, wait, stats, the port reached
/// inside the container's network namespace) is exercised only where a daemon is present.
/// </summary>
public class DockerSandboxTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Selecting_docker_without_a_daemon_fails_with_one_clear_message()
    {
        using var dir = new TempDirectory();
        var options = new DockerSandboxOptions { Endpoint = new Uri("unix://" + Path.Combine(dir.Path, "docker.sock")) };
        var ex = await Assert.ThrowsAsync<SandboxException>(() => DockerSandbox.CreateAsync(options, TimeProvider.System, NullLogger.Instance, Ct));
        Assert.Contains("needs a reachable Docker daemon", ex.Message, StringComparison.Ordinal);
        Assert.Contains("--workloads process", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_socket_that_does_not_answer_the_ping_is_refused_and_one_that_does_is_accepted()
    {
        using var dir = new TempDirectory();
        var socket = Path.Combine(dir.Path, "docker.sock");
        var pinged = 0;
        // A stand-in for the Engine API's ping endpoint on a unix socket; it answers as dockerd does.
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrel(k => k.ListenUnixSocket(socket));
        builder.Logging.ClearProviders();
        await using var app = builder.Build();
        app.Run(async context =>
        {
            if (context.Request.Path.Value?.EndsWith("/_ping", StringComparison.Ordinal) == true)
            {
                Interlocked.Increment(ref pinged);
                context.Response.Headers["Api-Version"] = "1.45";
                await context.Response.WriteAsync("OK", Ct);
                return;
            }

            context.Response.StatusCode = 404;
        });
        await app.StartAsync(Ct);

        var sandbox = await DockerSandbox.CreateAsync(new DockerSandboxOptions { Endpoint = new Uri("unix://" + socket) }, TimeProvider.System, NullLogger.Instance, Ct);
        Assert.Equal("docker", sandbox.Isolation);
        Assert.Equal(1, pinged);
        await app.StopAsync(Ct);

        var stale = await Assert.ThrowsAsync<SandboxException>(() => DockerSandbox.CreateAsync(new DockerSandboxOptions { Endpoint = new Uri("unix://" + socket) }, TimeProvider.System, NullLogger.Instance, Ct));
        Assert.Contains("needs a reachable Docker daemon", stale.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_copy_maps_to_a_locked_down_container_with_its_limits()
    {
        var spec = new CopySpec("w1", 3, "python3", ["-m", "http.server"], new Dictionary<string, string> { ["MODE"] = "fast" }, 1.5, 512);
        var c = DockerSandbox.ContainerFor(new SandboxLaunch(spec, new CopyFolders("/data/w1", "/data/w1/work", "/data/w1/state", "/data/w1/agent", 65534, 65534)), new DockerSandboxOptions());

        Assert.Equal("debian:bookworm-slim", c.Image);
        Assert.Equal(["python3", "-m", "http.server"], c.Cmd);
        Assert.Equal(1_500_000_000, c.HostConfig.NanoCPUs);
        Assert.Equal(512L * 1024 * 1024, c.HostConfig.Memory);
        Assert.Equal(c.HostConfig.Memory, c.HostConfig.MemorySwap);
        Assert.Equal("none", c.HostConfig.NetworkMode);
        Assert.True(c.HostConfig.ReadonlyRootfs);
        Assert.Equal(["ALL"], c.HostConfig.CapDrop);
        Assert.Contains("no-new-privileges", c.HostConfig.SecurityOpt);
        Assert.Equal(["/data/w1/work:/work:rw", "/data/w1/state:/state:rw"], c.HostConfig.Binds);
        Assert.Contains("MODE=fast", c.Env);
        Assert.Contains("COINOP_STATE_DIR=/state", c.Env);
        Assert.Equal("65534:65534", c.User);
        // The entrypoint holds the agent's stdin: when the agent dies, the copy dies.
        Assert.True(c.OpenStdin && c.StdinOnce && c.AttachStdin);
        Assert.Null(c.HostConfig.PortBindings);
    }

    [Fact]
    public void A_copy_with_a_port_gets_no_network_and_publishes_nothing()
    {
        // The attack: a copy with a port used to get Docker's default bridge (the internet, the LAN, cloud metadata,
        // other tenants' containers) and a published host port that skipped the access credential.
        var spec = new CopySpec("w2", 1, "srv", [], new Dictionary<string, string>(), 1, 256, Port: 8080, AccessCredential: "tok", Image: "alpine:3.20");
        var c = DockerSandbox.ContainerFor(new SandboxLaunch(spec, new CopyFolders("/data/w2", "/data/w2/work", null, "/data/w2/agent", 1_000_000_007, 1_000_000_007)), new DockerSandboxOptions());

        Assert.Equal("alpine:3.20", c.Image);
        Assert.Equal("none", c.HostConfig.NetworkMode);
        Assert.True(c.HostConfig.PortBindings is null or { Count: 0 });
        Assert.True(c.ExposedPorts is null or { Count: 0 });
        Assert.False(c.HostConfig.PublishAllPorts);
        Assert.Contains("COINOP_ACCESS_TOKEN=tok", c.Env);
        Assert.Contains("COINOP_PORT=8080", c.Env);
        // A root agent's copy runs as its own uid, which owns its folders.
        Assert.Equal("1000000007:1000000007", c.User);
    }

    [Fact]
    public void With_egress_a_copy_joins_a_network_of_its_own_where_containers_cannot_reach_each_other()
    {
        var options = new DockerSandboxOptions { Egress = true };
        var spec = new CopySpec("w3", 1, "srv", [], new Dictionary<string, string>(), 1, 256, Port: 8080, AccessCredential: "tok");
        var c = DockerSandbox.ContainerFor(new SandboxLaunch(spec, new CopyFolders("/data/w3", "/data/w3/work", null, "/data/w3/agent", null, null)), options);
        var network = DockerSandbox.EgressNetworkFor(options);

        Assert.Equal("coinop-egress", c.HostConfig.NetworkMode);
        Assert.NotEqual("bridge", c.HostConfig.NetworkMode);
        Assert.True(c.HostConfig.PortBindings is null or { Count: 0 });
        Assert.Equal("coinop-egress", network.Name);
        Assert.Equal("bridge", network.Driver);
        Assert.Equal("false", network.Options["com.docker.network.bridge.enable_icc"]);
        Assert.False(network.Internal);
    }

    [Fact]
    public void A_copy_gets_the_process_tmp_and_file_size_caps()
    {
        var options = new DockerSandboxOptions();
        options.Limits.MaxProcesses = 100;
        options.Limits.TmpBytes = 8 * 1024 * 1024;
        options.Limits.DiskBytes = 32 * 1024 * 1024;
        var spec = new CopySpec("w4", 1, "sh", [], new Dictionary<string, string>(), 1, 256);
        var c = DockerSandbox.ContainerFor(new SandboxLaunch(spec, new CopyFolders("/data/w4", "/data/w4/work", null, "/data/w4/agent", null, null)), options);

        Assert.Equal(100, c.HostConfig.PidsLimit);
        Assert.Equal("rw,nosuid,nodev,size=8388608", c.HostConfig.Tmpfs["/tmp"]);
        var fsize = Assert.Single(c.HostConfig.Ulimits);
        Assert.Equal(("fsize", 32L * 1024 * 1024, 32L * 1024 * 1024), (fsize.Name, fsize.Soft, fsize.Hard));
        // Docker's default seccomp profile stays on: nothing asks for "seccomp=unconfined".
        Assert.DoesNotContain(c.HostConfig.SecurityOpt, o => o.Contains("seccomp", StringComparison.Ordinal));
        Assert.Equal("65534:65534", c.User);
    }
}
