using System.Text.Json.Nodes;
using Coinop.TestKit;
using Coinop.Workloads.Tests.Infrastructure;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace Coinop.Workloads.Tests;

/// <summary>
/// <c>coinop mcp</c> started as a child process by the official MCP C# SDK's own client, against a real market, a
/// provider (a child process serving workloads, its backend the simulator as an Ollama-style server) and the simulator.
/// </summary>
public sealed class McpTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string Text(CallToolResult result) => string.Concat(result.Content.OfType<TextContentBlock>().Take(1).Select(t => t.Text));

    [Fact]
    public async Task The_sdk_client_lists_models_chats_runs_a_workload_and_reads_the_wallet_through_coinop_mcp()
    {
        var simUrl = $"http://127.0.0.1:{Ports.GetFree()}";
        await using var sim = ChildProcess.StartCoinop("sim-backend", ["sim-backend", "--urls", simUrl]);
        await Eventually.WaitForHttpAsync(simUrl + "/v1/models", cancellationToken: Ct);
        await using var cluster = await WorkloadCluster.StartAsync(providers: 1, providerArgs: ["--backend", "ollama=" + simUrl]);
        await Eventually.WaitAsync(() => Task.FromResult<int?>(cluster.Directory.Snapshot.Count(s => s.TryGetOffer("sim-small", out _))),
            n => n > 0, "the provider offering the simulator's models", cancellationToken: Ct);
        var consumer = Path.Combine(cluster.DataDir, "consumer");
        var wallet = Path.Combine(cluster.DataDir, "wallet");
        await using var client = await McpClient.CreateAsync(new StdioClientTransport(new StdioClientTransportOptions
        {
            Name = "coinop mcp",
            Command = "dotnet",
            Arguments = [RepoPaths.CliDll, "mcp", "--market", cluster.Url, "--data", consumer, "--wallet", wallet],
        }), cancellationToken: Ct);
        var workload = new TestWorkload("echo hello from mcp; while :; do sleep 1; done");
        using var watch = workload.Watch();
        try
        {
            var tools = await client.ListToolsAsync(cancellationToken: Ct);
            Assert.Equal(
                ["chat", "list_models", "wallet_balance", "workload_cancel", "workload_logs", "workload_status", "workload_submit", "workload_topup"],
                tools.Select(t => t.Name).Order(StringComparer.Ordinal));

            var models = await client.CallToolAsync("list_models", cancellationToken: Ct);
            Assert.True(models.IsError != true, Text(models));
            var offered = JsonNode.Parse(Text(models))!.AsArray().SelectMany(p => p!["models"]!.AsArray()).Select(m => (string?)m!["model"]).ToList();
            Assert.Contains("sim-small", offered);

            var chat = await client.CallToolAsync("chat", new Dictionary<string, object?> { ["model"] = "sim-small", ["prompt"] = "hello [[sim:tokens=5]]" }, cancellationToken: Ct);
            Assert.True(chat.IsError != true, Text(chat));
            Assert.Equal(5, Text(chat).Trim().Split(' ').Length);

            var refused = await client.CallToolAsync("chat", new Dictionary<string, object?> { ["model"] = "nope", ["prompt"] = "hi" }, cancellationToken: Ct);
            Assert.True(refused.IsError == true);
            Assert.Equal("coinop: 404 no provider online offers model 'nope'", Text(refused));

            var submitted = await client.CallToolAsync("workload_submit", new Dictionary<string, object?>
            {
                ["command"] = workload.Argv,
                ["cpu"] = 0.2,
                ["memoryMb"] = 64,
                ["duration"] = "10m",
            }, cancellationToken: Ct);
            Assert.True(submitted.IsError != true, Text(submitted));
            var id = (string)JsonNode.Parse(Text(submitted))!["id"]!;
            await cluster.WaitForStateAsync(id, "live");
            await watch.WaitForEpochAsync(1);

            var status = await client.CallToolAsync("workload_status", new Dictionary<string, object?> { ["id"] = id }, cancellationToken: Ct);
            Assert.Equal("live", (string?)JsonNode.Parse(Text(status))!["state"]);
            Assert.Equal(cluster.Providers[0].Id, (string?)JsonNode.Parse(Text(status))!["provider"]);

            await LifecycleTests.WaitForOutputAsync(cluster, id, "hello from mcp");
            var logs = await client.CallToolAsync("workload_logs", new Dictionary<string, object?> { ["id"] = id }, cancellationToken: Ct);
            Assert.Contains("hello from mcp\n", Text(logs), StringComparison.Ordinal);

            var before = DateTimeOffset.Parse((string)(await cluster.GetAsync(id))["paid_until"]!, System.Globalization.CultureInfo.InvariantCulture);
            var topped = await client.CallToolAsync("workload_topup", new Dictionary<string, object?> { ["id"] = id, ["duration"] = "5m" }, cancellationToken: Ct);
            Assert.True(topped.IsError != true, Text(topped));
            Assert.Equal(before + TimeSpan.FromMinutes(5),
                DateTimeOffset.Parse((string)JsonNode.Parse(Text(topped))!["paid_until"]!, System.Globalization.CultureInfo.InvariantCulture));

            var cancelled = await client.CallToolAsync("workload_cancel", new Dictionary<string, object?> { ["id"] = id }, cancellationToken: Ct);
            Assert.True(cancelled.IsError != true, Text(cancelled));
            Assert.Equal("cancelled", (string?)JsonNode.Parse(Text(cancelled).Split('\n')[0])!["state"]);
            await watch.WaitForNoneAsync();
            var again = await client.CallToolAsync("workload_cancel", new Dictionary<string, object?> { ["id"] = id }, cancellationToken: Ct);
            Assert.True(again.IsError == true);
            Assert.Contains("workload is cancelled", Text(again), StringComparison.Ordinal);

            var balance = await client.CallToolAsync("wallet_balance", cancellationToken: Ct);
            Assert.True(balance.IsError != true, Text(balance));
            Assert.Equal(0, (int)JsonNode.Parse(Text(balance))!["total_sat"]!);
        }
        catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException(ex.Message + "\n" + cluster.Diagnostics(), ex);
        }
    }
}
