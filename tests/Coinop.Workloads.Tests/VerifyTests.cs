using System.Text.Json.Nodes;
using Coinop.Workloads.Tests.Infrastructure;

namespace Coinop.Workloads.Tests;

/// <summary>
/// <c>coinop workload verify</c> against a real market and provider: a workload that ran two copies and was cancelled
/// verifies (every usage record and access receipt), online and from a saved status offline; a status with one changed
/// byte, a swapped record or a forged receipt does not, and the exit code says so.
/// </summary>
public sealed class VerifyTests
{
    [Fact]
    public async Task Verify_accepts_the_real_evidence_and_refuses_a_tampered_status()
    {
        await using var cluster = await WorkloadCluster.StartAsync(providers: 2);
        var consumer = Path.Combine(cluster.DataDir, "consumer");
        string[] Market(params string[] args) => [.. args[..2], "--market", cluster.Url, "--data", consumer, .. args[2..]];
        // A web server on a port (so each copy sends an access receipt), failing once: two copies, one after the other.
        var workload = new TestWorkload("echo serving $COINOP_EPOCH; if [ \"$COINOP_EPOCH\" = 1 ]; then sleep 1; exit 3; fi; python3 -m http.server 8080 --bind 127.0.0.1");
        using var watch = workload.Watch();
        try
        {
            var submitted = await CliTests.CoinopAsync(cluster, Market(["workload", "submit", "--port", "8080", "--restart", "on-failure:1", "--cpu", "0.2", "--memory", "64", "--", .. workload.Argv]));
            var id = submitted.Trim().Split('\n')[^1].Trim();
            await cluster.WaitForStateAsync(id, "live", epoch: 2);
            await cluster.WaitForAsync(id, w => w["receipts"]!.AsArray().Count == 2, "both copies' access receipts");
            await CliTests.CoinopAsync(cluster, Market("workload", "cancel", id));
            var done = await cluster.WaitForAsync(id, w => w["usage"]!.AsArray().Select(u => Epoch(u!)).Distinct().Count() == 2, "the usage of both copies");

            var online = await CliTests.CoinopAsync(cluster, Market("workload", "verify", id));
            Assert.Contains("epoch 1 on", online, StringComparison.Ordinal);
            Assert.Contains("epoch 2 on", online, StringComparison.Ordinal);
            Assert.Contains("2 access receipts", online, StringComparison.Ordinal);
            Assert.Contains("every record and receipt verifies", online, StringComparison.Ordinal);

            // Offline: the saved status alone (no --market), with the consumer's key for the receipts.
            var saved = Path.Combine(cluster.DataDir, "status.json");
            await File.WriteAllTextAsync(saved, done.ToJsonString(), TestContext.Current.CancellationToken);
            Assert.Contains("every record and receipt verifies",
                await CliTests.CoinopAsync(cluster, ["workload", "verify", "--file", saved, "--data", consumer]), StringComparison.Ordinal);

            // One changed byte in a record (the CPU it claims) breaks its signature.
            var changed = (JsonObject)done.DeepClone();
            var record = changed["usage"]![0]!;
            var payload = Convert.FromBase64String((string)record["payload"]!);
            var text = System.Text.Encoding.UTF8.GetString(payload).Replace("\"cpu_core_seconds\":0", "\"cpu_core_seconds\":9", StringComparison.Ordinal);
            record["payload"] = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(text == System.Text.Encoding.UTF8.GetString(payload) ? text + " " : text));
            Assert.Contains("signature does not verify", await VerifyFileAsync(cluster, changed, consumer), StringComparison.Ordinal);

            // A record of the second copy moved to the first copy's place: the epochs' windows now overlap or gap.
            var dropped = (JsonObject)done.DeepClone();
            dropped["usage"]!.AsArray().RemoveAt(0);
            dropped["usage"]!.AsArray().Add(done["usage"]![0]!.DeepClone());
            dropped["usage"]!.AsArray().Add(done["usage"]![0]!.DeepClone());
            Assert.Contains("MISMATCH", await VerifyFileAsync(cluster, dropped, consumer), StringComparison.Ordinal);

            // A receipt the market (or anyone with the consumer's public key) sealed itself: it opens but is not signed by the provider.
            var forged = (JsonObject)done.DeepClone();
            forged["receipts"]![0]!["sealed"] = forged["receipts"]![1]!["sealed"]!.DeepClone();
            Assert.Contains("access receipt of epoch 1", await VerifyFileAsync(cluster, forged, consumer), StringComparison.Ordinal);

            // Garbage is a one-line error, not a stack trace.
            await File.WriteAllTextAsync(saved, "{not json", TestContext.Current.CancellationToken);
            Assert.Contains("is not a workload status", await CliTests.CoinopAsync(cluster, ["workload", "verify", "--file", saved], expectedExit: 1), StringComparison.Ordinal);
        }
        catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException(ex.Message + "\n" + cluster.Diagnostics(), ex);
        }
    }

    private static async Task<string> VerifyFileAsync(WorkloadCluster cluster, JsonObject status, string consumer)
    {
        var path = Path.Combine(cluster.DataDir, $"tampered-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(path, status.ToJsonString(), TestContext.Current.CancellationToken);
        return await CliTests.CoinopAsync(cluster, ["workload", "verify", "--file", path, "--data", consumer], expectedExit: 1);
    }

    private static long Epoch(JsonNode usage)
    {
        var payload = System.Text.Json.JsonDocument.Parse(Convert.FromBase64String((string)usage["payload"]!));
        return payload.RootElement.GetProperty("epoch").GetInt64();
    }
}
