using System.Text.Json;
using Coinop.TestKit;

namespace Coinop.EndToEnd.Tests;

/// <summary>
/// The operators' and providers' tools against real processes: install-service (checked by systemd-analyze when it is
/// here), <c>provider status</c>, and the stable <c>--json</c> output of the commands that print data.
/// </summary>
public class OperatorToolsTests
{
    private static async Task<(int Code, string Output)> RunAsync(Cluster cluster, params string[] args)
    {
        var p = cluster.Start("cli-" + args[0], args);
        var code = await p.WaitForExitAsync(TimeSpan.FromSeconds(120));
        return (code, p.Output);
    }

    private static async Task<JsonElement> JsonAsync(Cluster cluster, params string[] args)
    {
        var (code, output) = await RunAsync(cluster, args);
        Assert.True(code == 0, $"coinop {string.Join(' ', args)} exited {code}:\n{output}");
        using var doc = JsonDocument.Parse(output); // the whole output is JSON: nothing else on stdout or stderr
        return doc.RootElement.Clone();
    }

    [Theory]
    [InlineData("market", "--public-url", "")]
    [InlineData("provider", "--name", "--market=http://127.0.0.1:3338")] // a provider unit without its market would never start: refused
    public async Task Install_service_writes_a_hardened_unit_that_systemd_accepts(string service, string flag, string required)
    {
        string[] needed = required.Length == 0 ? [] : [required];
        await using var cluster = new Cluster();
        var data = Path.Combine(cluster.Dir("svc"), "data dir with 100% spaces");
        var (dryCode, unit) = await RunAsync(cluster, [service, "install-service", "--dry-run", "--data", data, "--", flag, "it's $HOME", .. needed]);
        Assert.Equal(0, dryCode);
        Assert.StartsWith("# Written by coinop install-service", unit, StringComparison.Ordinal);
        foreach (var line in (string[])["NoNewPrivileges=true", "ProtectSystem=strict", "Restart=on-failure", "PrivateTmp=true", "[Install]"])
        {
            Assert.Contains(line + "\n", unit, StringComparison.Ordinal);
        }

        var escaped = data.Replace("%", "%%", StringComparison.Ordinal);
        Assert.Contains($"ReadWritePaths=\"{escaped}\"\n", unit, StringComparison.Ordinal);
        Assert.Contains($"ExecStart=", unit, StringComparison.Ordinal);
        Assert.Contains($" {service} --data \"{escaped}\" {flag} \"it's $$HOME\"", unit, StringComparison.Ordinal); // $ stays literal

        var units = cluster.Dir("units");
        var (code, output) = await RunAsync(cluster, [service, "install-service", "--data", data, "--unit-dir", units, "--name", "coinop-test-" + service, "--", .. needed]);
        Assert.True(code == 0, output);
        var path = Path.Combine(units, $"coinop-test-{service}.service");
        Assert.Contains($"systemctl daemon-reload && systemctl enable --now coinop-test-{service}.service", output, StringComparison.Ordinal);
        Assert.Contains("NoNewPrivileges=true", await File.ReadAllTextAsync(path, TestContext.Current.CancellationToken), StringComparison.Ordinal);

        if (File.Exists("/usr/bin/systemd-analyze"))
        {
            var verify = ChildProcess.Start("systemd-analyze", "/usr/bin/systemd-analyze", ["verify", path]);
            await using (verify)
            {
                var rc = await verify.WaitForExitAsync(TimeSpan.FromSeconds(60));
                Assert.True(rc == 0 && !verify.Output.Contains(Path.GetFileName(path) + ":", StringComparison.Ordinal),
                    $"systemd-analyze verify {path} exited {rc}:\n{verify.Output}");
            }
        }
    }

    [Theory]
    [InlineData("/var/lib/coinop\nExecStartPre=/bin/sh -c evil")]
    [InlineData("relative/but/fine")]
    public async Task Install_service_never_lets_a_value_add_a_line_to_the_unit(string data)
    {
        await using var cluster = new Cluster();
        var (code, output) = await RunAsync(cluster, "market", "install-service", "--dry-run", "--data", data, "--", "--urls", "http://x\n[Service]\nUser=root");
        Assert.NotEqual(0, code);
        var line = Assert.Single(output.Trim().Split('\n')); // one line on stderr, no unit
        Assert.StartsWith("coinop: ", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Provider_status_shows_link_models_jobs_and_earnings_then_that_the_agent_stopped()
    {
        await using var cluster = new Cluster();
        var (_, sim) = await cluster.StartSimulatorAsync("sim");
        var (_, market) = await cluster.StartMarketAsync("market");
        var (provider, id) = await cluster.StartProviderAsync("provider", market, "--backend", $"openai={sim}");
        await cluster.WaitOnlineAsync(market, id);
        var wallet = cluster.Dir("wallet");
        Assert.Equal(0, (await RunAsync(cluster, "wallet", "--data", wallet, "mint", "500", "--mint", market)).Code);
        for (var i = 0; i < 2; i++)
        {
            var (chat, chatOutput) = await RunAsync(cluster, "chat", "--market", market, "--wallet", wallet, "--model", "sim-small", "hello " + i);
            Assert.True(chat == 0, chatOutput);
        }

        var status = await Eventually.WaitAsync(
            () => JsonAsync(cluster, "provider", "status", "--data", cluster.Dir("provider"), "--json"),
            s => s.GetProperty("jobs").GetProperty("served").GetInt64() == 2,
            "the status file to count both jobs", cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(id, status.GetProperty("provider_id").GetString());
        Assert.True(status.GetProperty("running").GetBoolean());
        Assert.Equal("online", status.GetProperty("link").GetProperty("state").GetString());
        Assert.Contains("sim-small", status.GetProperty("models").EnumerateArray().Select(m => m.GetProperty("model").GetString()));
        Assert.True(status.GetProperty("earnings").GetProperty("earned_msat").GetInt64() > 0, status.ToString());
        Assert.Equal(JsonValueKind.Null, status.GetProperty("earnings_error").ValueKind);

        var (textCode, text) = await RunAsync(cluster, "provider", "status", "--data", cluster.Dir("provider"));
        Assert.Equal(0, textCode);
        Assert.Contains("link       online", text, StringComparison.Ordinal);
        Assert.Contains("2 served", text, StringComparison.Ordinal);

        provider.Terminate();
        Assert.Equal(0, await provider.WaitForExitAsync());
        var stopped = await JsonAsync(cluster, "provider", "status", "--data", cluster.Dir("provider"), "--json");
        Assert.False(stopped.GetProperty("running").GetBoolean());
        Assert.Equal("stopped", stopped.GetProperty("link").GetProperty("state").GetString());
    }

    [Fact]
    public async Task Provider_serves_its_metrics_at_metrics_listen_and_nothing_else()
    {
        await using var cluster = new Cluster();
        var (_, sim) = await cluster.StartSimulatorAsync("sim");
        var (_, market) = await cluster.StartMarketAsync("market");
        var port = Ports.GetFree();
        var (_, id) = await cluster.StartProviderAsync("provider", market, "--backend", $"openai={sim}", "--metrics-listen", $"127.0.0.1:{port}");
        await cluster.WaitOnlineAsync(market, id);
        var wallet = cluster.Dir("wallet");
        Assert.Equal(0, (await RunAsync(cluster, "wallet", "--data", wallet, "mint", "500", "--mint", market)).Code);
        var (chat, chatOutput) = await RunAsync(cluster, "chat", "--market", market, "--wallet", wallet, "--model", "sim-small", "hello");
        Assert.True(chat == 0, chatOutput);

        var metrics = await Eventually.WaitAsync<string>(
            async () => await cluster.Http.GetStringAsync($"http://127.0.0.1:{port}/metrics", TestContext.Current.CancellationToken),
            text => text!.Contains("coinop_provider_jobs_total{", StringComparison.Ordinal) && text.Contains("outcome=\"done\"", StringComparison.Ordinal),
            "the agent's job counter on its metrics endpoint", cancellationToken: TestContext.Current.CancellationToken);
        Assert.Contains("coinop_provider_bytes_relayed", metrics, StringComparison.Ordinal);
        Assert.Contains("dotnet_gc_", metrics, StringComparison.Ordinal); // the runtime's meter too
        using var other = await cluster.Http.GetAsync($"http://127.0.0.1:{port}/", TestContext.Current.CancellationToken);
        Assert.Equal(System.Net.HttpStatusCode.NotFound, other.StatusCode);
    }

    [Fact]
    public async Task A_metrics_address_the_agent_cannot_use_is_one_line_and_no_agent()
    {
        await using var cluster = new Cluster();
        var (bad, badOutput) = await RunAsync(cluster, "provider", "--market", "http://127.0.0.1:9", "--data", cluster.Dir("p1"), "--metrics-listen", "localhost");
        Assert.NotEqual(0, bad);
        Assert.StartsWith("coinop: --metrics-listen 'localhost' is not an address and port", Assert.Single(badOutput.Trim().Split('\n')), StringComparison.Ordinal);

        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        var port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;
        var (busy, busyOutput) = await RunAsync(cluster, "provider", "--market", "http://127.0.0.1:9", "--data", cluster.Dir("p2"), "--metrics-listen", $"127.0.0.1:{port}");
        Assert.NotEqual(0, busy);
        Assert.StartsWith($"coinop: --metrics-listen 127.0.0.1:{port}: ", Assert.Single(busyOutput.Trim().Split('\n')), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Provider_status_of_a_directory_no_agent_ran_in_is_one_line_and_an_error()
    {
        await using var cluster = new Cluster();
        var (code, output) = await RunAsync(cluster, "provider", "status", "--data", cluster.Dir("nothing"));
        Assert.Equal(1, code);
        Assert.StartsWith("coinop: no status at", output.Trim(), StringComparison.Ordinal);
        Assert.Single(output.Trim().Split('\n'));
    }

    [Fact]
    public async Task Commands_that_print_data_print_only_json_with_json()
    {
        await using var cluster = new Cluster();
        var (_, sim) = await cluster.StartSimulatorAsync("sim");
        var (_, market) = await cluster.StartMarketAsync("market", 0, "--enrollment", "code");
        var code = await JsonAsync(cluster, "market", "enroll-code", "--data", cluster.Dir("market"), "--uses", "2", "--json");
        Assert.StartsWith("COINOP-", code.GetProperty("code").GetString(), StringComparison.Ordinal);
        Assert.Equal(2, code.GetProperty("max_uses").GetInt32());
        var (_, id) = await cluster.StartProviderAsync("provider", market, "--backend", $"openai={sim}", "--enroll", code.GetProperty("code").GetString()!);
        await cluster.WaitOnlineAsync(market, id);

        var wallet = cluster.Dir("wallet");
        var minted = await JsonAsync(cluster, "wallet", "--data", wallet, "mint", "300", "--mint", market, "--json");
        Assert.Equal(300, minted.GetProperty("amount_sat").GetInt64());
        var balance = await JsonAsync(cluster, "wallet", "--data", wallet, "balance", "--json");
        Assert.Equal(300, balance.GetProperty("total_sat").GetInt64());
        var history = await JsonAsync(cluster, "wallet", "--data", wallet, "history", "--json");
        Assert.Equal("mint", history[0].GetProperty("kind").GetString());

        var providers = await JsonAsync(cluster, "providers", "--market", market, "--json");
        Assert.Equal(id, providers[0].GetProperty("id").GetString());
        var earnings = await JsonAsync(cluster, "provider", "earnings", "--market", market, "--data", cluster.Dir("provider"), "--json");
        Assert.Equal(id, earnings.GetProperty("provider_id").GetString());
        var workloads = await JsonAsync(cluster, "workload", "list", "--market", market, "--json");
        Assert.Equal(JsonValueKind.Array, workloads.ValueKind);
        var keyset = await JsonAsync(cluster, "market", "rotate-keyset", "--data", cluster.Dir("market"), "--json");
        Assert.True(keyset.GetProperty("active").GetBoolean());
    }
}
