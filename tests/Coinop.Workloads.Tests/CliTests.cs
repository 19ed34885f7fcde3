using System.Net.Sockets;
using System.Text;
using Coinop.TestKit;
using Coinop.Workloads.Tests.Infrastructure;

namespace Coinop.Workloads.Tests;

/// <summary><c>coinop workload</c> as a consumer runs it: a child process per command against a market with real providers.</summary>
public sealed class CliTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Runs <c>coinop ARGS</c> to its end; returns stdout and stderr, failing on a non-zero exit.</summary>
    internal static async Task<string> CoinopAsync(WorkloadCluster cluster, string[] args, int expectedExit = 0)
    {
        await using var process = ChildProcess.StartCoinop("coinop " + args[0] + " " + args[1], args);
        var code = await process.WaitForExitAsync(TimeSpan.FromSeconds(60));
        Assert.True(code == expectedExit, $"coinop {string.Join(' ', args)} exited with {code}:\n{process.Output}\n{(code == expectedExit ? "" : cluster.Diagnostics())}");
        return process.Output;
    }

    [Fact]
    public async Task Submit_status_logs_list_access_and_cancel_from_the_command_line()
    {
        await using var cluster = await WorkloadCluster.StartAsync(providers: 1);
        var consumer = Path.Combine(cluster.DataDir, "consumer");
        // The market and data options go right after the subcommand: whatever follows "--" is the workload's command.
        string[] Market(params string[] args) => [.. args[..2], "--market", cluster.Url, "--data", consumer, .. args[2..]];
        // A web server on the workload's port; "echo" keeps the shell (not python) the copy's process.
        var workload = new TestWorkload("echo serving; python3 -m http.server 8080 --bind 127.0.0.1; echo stopped");
        using var watch = workload.Watch();
        try
        {
            var submitted = await CoinopAsync(cluster, Market(["workload", "submit", "--port", "8080", "--cpu", "0.3", "--memory", "128", "--duration", "10m", "--", .. workload.Argv]));
            var id = submitted.Trim().Split('\n')[^1].Trim();
            Assert.True(Core.Workloads.WorkloadIds.TryParse(id, out _), $"the last line of submit is not a workload id:\n{submitted}");
            await cluster.WaitForStateAsync(id, "live");
            await watch.WaitForEpochAsync(1);

            var status = await CoinopAsync(cluster, Market("workload", "status", id));
            Assert.Contains("state      live", status, StringComparison.Ordinal);
            Assert.Contains(cluster.Providers[0].Id, status, StringComparison.Ordinal);
            var json = System.Text.Json.Nodes.JsonNode.Parse(await CoinopAsync(cluster, Market("workload", "status", id, "--json")))!;
            Assert.Equal(id, (string?)json["id"]);

            await LifecycleTests.WaitForOutputAsync(cluster, id, "serving");
            Assert.Contains("serving", await CoinopAsync(cluster, Market("workload", "logs", id)), StringComparison.Ordinal);
            Assert.Contains(id, await CoinopAsync(cluster, Market("workload", "list")), StringComparison.Ordinal);

            // The receipt is sealed to this consumer's key; opened, it leads through the port bridge to the workload.
            await cluster.WaitForAsync(id, w => w["access"] is not null, "an access receipt");
            var access = await CoinopAsync(cluster, Market("workload", "access", id));
            var fields = access.Split('\n').Select(l => l.Split(' ', 2, StringSplitOptions.RemoveEmptyEntries)).Where(p => p.Length == 2)
                .ToDictionary(p => p[0], p => p[1].Trim());
            Assert.Equal("127.0.0.1", fields["host"]);
            var answer = await Eventually.WaitAsync<string>(() => GetThroughBridgeAsync(fields["host"], int.Parse(fields["port"], System.Globalization.CultureInfo.InvariantCulture), fields["credential"]),
                a => a?.StartsWith("HTTP/1.0 200", StringComparison.Ordinal) == true, "the workload's web server through the port bridge", TimeSpan.FromSeconds(30), Ct);
            Assert.StartsWith("HTTP/1.0 200", answer, StringComparison.Ordinal);
            // Anyone else's key opens nothing, even one given the workload's owner key (the market cannot read receipts either).
            var other = Directory.CreateDirectory(Path.Combine(cluster.DataDir, "someone-else")).FullName;
            await File.WriteAllTextAsync(Path.Combine(other, "consumer.key"), Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)), Ct);
            File.Copy(Path.Combine(consumer, "owner.key"), Path.Combine(other, "owner.key"));
            Assert.Contains("does not open", await CoinopAsync(cluster, ["workload", "access", id, "--market", cluster.Url, "--data", other], expectedExit: 1),
                StringComparison.Ordinal);

            // logs -f follows until the workload ends; cancel ends it.
            await using var follow = ChildProcess.StartCoinop("coinop workload logs -f", Market("workload", "logs", id, "-f"));
            await follow.WaitForLineAsync("serving", TimeSpan.FromSeconds(30), Ct);
            var cancelled = await CoinopAsync(cluster, Market("workload", "cancel", id));
            Assert.Contains("cancelled", cancelled, StringComparison.Ordinal);
            Assert.Equal(0, await follow.WaitForExitAsync(TimeSpan.FromSeconds(30)));
            await watch.WaitForNoneAsync();
            watch.AssertSingleWriter();

            Assert.Contains("workload is cancelled", await CoinopAsync(cluster, Market("workload", "cancel", id), expectedExit: 1), StringComparison.Ordinal);
            Assert.Contains("no workload", await CoinopAsync(cluster, Market("workload", "status", Guid.NewGuid().ToString("N")), expectedExit: 1), StringComparison.Ordinal);
            Assert.Contains("restart policy", await CoinopAsync(cluster, Market("workload", "submit", "--restart", "always", "--", "true"), expectedExit: 2), StringComparison.Ordinal);
        }
        catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException(ex.Message + "\n" + cluster.Diagnostics(), ex);
        }
    }

    [Fact]
    public async Task On_a_paid_market_the_CLI_pays_from_the_wallet_tops_up_and_takes_refunds_back()
    {
        await using var cluster = await WorkloadCluster.StartAsync(providers: 1, configure: PaidWorkloadTests.Paid, providerArgs: PaidWorkloadTests.OneSatPerSecond);
        var consumer = Path.Combine(cluster.DataDir, "consumer");
        var walletDir = Path.Combine(cluster.DataDir, "wallet");
        string[] Market(params string[] args) => [.. args[..2], "--market", cluster.Url, "--data", consumer, "--wallet", walletDir, .. args[2..]];
        var running = TestWorkload.Forever();
        var early = new TestWorkload("echo quick; sleep 1");
        using var watch = running.Watch();
        try
        {
            var wallet = await PaidWorkloadTests.WalletAsync(cluster, 100);
            async Task<ulong> BalanceAsync() => (await wallet.BalancesAsync(Ct)).Aggregate(0UL, (sum, b) => sum + b.Available);

            // Without --max-sat the CLI sends at most 1000 sat: a submit asking for 2000 pays nothing, nor does --amount above it.
            var tooDear = await CoinopAsync(cluster, Market(["workload", "submit", "--cpu", "0.2", "--memory", "64", "--duration", "2000s", "--", .. running.Argv]), expectedExit: 1);
            Assert.Contains("the market asks 2000 sat, more than --max-sat 1000", tooDear, StringComparison.Ordinal);
            Assert.Contains("more than --max-sat 50", await CoinopAsync(cluster, Market("workload", "topup", "any", "--amount", "60", "--max-sat", "50"), expectedExit: 1),
                StringComparison.Ordinal);
            Assert.Equal(100UL, await BalanceAsync());

            // submit meets a 402, pays it from the wallet and retries: 20 s at 1 sat a second.
            var submitted = await CoinopAsync(cluster, Market(["workload", "submit", "--cpu", "0.2", "--memory", "64", "--duration", "20s", "--", .. running.Argv]));
            Assert.Contains("coinop: paid 20 sat", submitted, StringComparison.Ordinal);
            var id = submitted.Trim().Split('\n')[^1].Trim();
            Assert.Equal(80UL, await BalanceAsync());
            await cluster.WaitForStateAsync(id, "live");
            await watch.WaitForEpochAsync(1);

            // topup by duration (paid on the 402) and by amount (a token of that many sats at once).
            Assert.Contains("coinop: paid 10 sat", await CoinopAsync(cluster, Market("workload", "topup", id, "--duration", "10s")), StringComparison.Ordinal);
            Assert.Contains("coinop: paid 5 sat", await CoinopAsync(cluster, Market("workload", "topup", id, "--amount", "5")), StringComparison.Ordinal);
            var view = await cluster.GetAsync(id);
            Assert.Equal(35_000, (long)view["paid_msat"]!);
            Assert.Equal(TimeSpan.FromSeconds(35), DateTimeOffset.Parse((string)view["paid_until"]!, System.Globalization.CultureInfo.InvariantCulture)
                - DateTimeOffset.Parse((string)view["created_at"]!, System.Globalization.CultureInfo.InvariantCulture));
            Assert.Equal(65UL, await BalanceAsync());

            await cluster.WaitForAsync(id, w => (long?)w["spent_msat"] > 0, "a settlement");
            var status = await CoinopAsync(cluster, Market("workload", "status", id));
            Assert.Contains("paid       until", status, StringComparison.Ordinal);
            Assert.Contains("of 35000 msat paid", status, StringComparison.Ordinal);

            // cancel takes the refund into the wallet and says so.
            var cancelled = await CoinopAsync(cluster, Market("workload", "cancel", id));
            Assert.Contains("sat back into the wallet", cancelled, StringComparison.Ordinal);
            var refund = (long)(await cluster.GetAsync(id))["refund"]!["refund_msat"]!;
            Assert.True(refund > 0);
            Assert.Equal(65UL + (ulong)(refund / 1000), await BalanceAsync());
            await watch.WaitForNoneAsync();

            // A workload that ends by itself: status collects its refund, once.
            var earlyId = (await CoinopAsync(cluster, Market(["workload", "submit", "--cpu", "0.2", "--memory", "64", "--duration", "30s", "--", .. early.Argv]))).Trim().Split('\n')[^1].Trim();
            await cluster.WaitForAsync(earlyId, w => w["refund"] is System.Text.Json.Nodes.JsonObject, "completed and settled");
            var before = await BalanceAsync();
            Assert.Contains("sat back into the wallet", await CoinopAsync(cluster, Market("workload", "status", earlyId)), StringComparison.Ordinal);
            var earlyRefund = (long)(await cluster.GetAsync(earlyId))["refund"]!["refund_msat"]!;
            Assert.Equal(before + (ulong)(earlyRefund / 1000), await BalanceAsync());
            Assert.Contains("already taken", await CoinopAsync(cluster, Market("workload", "status", earlyId)), StringComparison.Ordinal);
            Assert.Equal(before + (ulong)(earlyRefund / 1000), await BalanceAsync());

            await cluster.AssertBalancedAsync();
            watch.AssertSingleWriter();
        }
        catch (Exception ex) when (ex is not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException(ex.Message + "\n" + cluster.Diagnostics(), ex);
        }
    }

    /// <summary>Connects to a port bridge, presents the credential, and sends an HTTP request; returns the first response line.</summary>
    private static async Task<string?> GetThroughBridgeAsync(string host, int port, string credential)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(host, port, Ct);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"COINOP-ACCESS {credential}\nGET / HTTP/1.0\r\nHost: workload\r\n\r\n"), Ct);
        using var reader = new StreamReader(stream, Encoding.ASCII);
        return await reader.ReadLineAsync(Ct);
    }
}
