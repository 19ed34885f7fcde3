using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Coinop.TestKit;
using Coinop.Workloads.Tests.Infrastructure;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace Coinop.Workloads.Tests;

/// <summary>
/// No silent fallback to a plain process: a provider whose bubblewrap does not work refuses workloads unless its operator
/// accepts isolation <c>none</c>; the level is shown to consumers, who get a sandbox unless they accept less.
/// </summary>
public sealed class IsolationTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_provider_without_a_working_sandbox_refuses_workloads_unless_its_operator_accepts_isolation_none()
    {
        await using var cluster = await WorkloadCluster.StartAsync(providers: 1);
        var sandboxed = cluster.Providers[0];
        var broken = BrokenBubblewrap(cluster.DataDir);

        await using (var refused = ChildProcess.StartCoinop("provider refused",
            ["provider", "--market", cluster.Url, "--data", Path.Combine(cluster.DataDir, "refused"), "--workloads", "process", "--cpu", "1", "--memory", "512"], broken))
        {
            var code = await refused.WaitForExitAsync(TimeSpan.FromSeconds(60));
            Assert.True(code != 0, "a provider whose bubblewrap fails started anyway:\n" + refused.Output);
            Assert.Contains("--unsafe-no-sandbox", refused.Output, StringComparison.Ordinal);
        }

        var plain = await cluster.AddProviderAsync("plain", args: ["--unsafe-no-sandbox"], env: broken);

        // Consumers see each provider's level in /api/providers and in 'coinop providers'.
        var listed = JsonNode.Parse(await cluster.Http.GetStringAsync(cluster.Url + "/api/providers", Ct))!.AsArray();
        var offers = listed.Where(p => p!["workloads"] is not null).ToDictionary(p => (string)p!["id"]!, p => p!["workloads"]!);
        Assert.Equal("bubblewrap", (string?)offers[sandboxed.Id]["isolation"]);
        Assert.Equal(false, (bool?)offers[sandboxed.Id]["egress"]);
        Assert.Equal("none", (string?)offers[plain.Id]["isolation"]);
        Assert.Equal(true, (bool?)offers[plain.Id]["egress"]);
        var table = await CliTests.CoinopAsync(cluster, ["providers", "--market", cluster.Url]);
        Assert.Contains("bubblewrap, no egress", table, StringComparison.Ordinal);
        Assert.Contains("none, egress", table, StringComparison.Ordinal);

        // A workload requires a sandbox by default: it never lands on the plain provider, even pinned there.
        using (var pinned = await cluster.Http.PostAsJsonAsync(cluster.Url + "/api/workloads", TestWorkload.Forever().Request(new { provider = plain.Id }), Ct))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, pinned.StatusCode);
            Assert.Contains("runs copies without a sandbox", await pinned.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        }

        var first = await cluster.SubmitAsync(TestWorkload.Forever().Request(new { cpu = 1 }));
        Assert.Equal(sandboxed.Id, (string?)first["provider"]);
        using (var full = await cluster.Http.PostAsJsonAsync(cluster.Url + "/api/workloads", TestWorkload.Forever().Request(new { cpu = 1 }), Ct))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, full.StatusCode);
        }

        // A consumer who accepts isolation 'none' may use it.
        var anyIsolation = await cluster.SubmitAsync(TestWorkload.Forever().Request(new { cpu = 1, isolation = "none" }));
        Assert.Equal(plain.Id, (string?)anyIsolation["provider"]);
        Assert.Equal("none", (string?)anyIsolation["spec"]!["isolation"]);
        await cluster.WaitForStateAsync((string)anyIsolation["id"]!, "live");

        using var bad = await cluster.Http.PostAsJsonAsync(cluster.Url + "/api/workloads", TestWorkload.Forever().Request(new { isolation = "chroot" }), Ct);
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.StartsWith("'isolation' must be", (string?)JsonNode.Parse(await bad.Content.ReadAsStringAsync(Ct))!["error"]!["message"], StringComparison.Ordinal);
    }

    /// <summary>An environment whose PATH finds a bwrap that fails as it does where user namespaces are disabled.</summary>
    private static Dictionary<string, string> BrokenBubblewrap(string dir)
    {
        var bin = Directory.CreateDirectory(Path.Combine(dir, "broken-bin")).FullName;
        var bwrap = Path.Combine(bin, "bwrap");
        File.WriteAllText(bwrap, "#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n");
        File.SetUnixFileMode(bwrap, (UnixFileMode)0x1ED);
        return new Dictionary<string, string> { ["PATH"] = bin + ":" + Environment.GetEnvironmentVariable("PATH") };
    }
}
