using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Globalization;
using System.Net.Http.Headers;
using Coinop.Market.Gateway;
using Coinop.Market.Hosting;
using Coinop.Core.Work;
using Coinop.Core.Workloads;
using Coinop.Storage;
using Coinop.Storage.Ledger;
using Coinop.Storage.Work;
using Coinop.TestKit;
using Npgsql;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Coinop.Workloads.Tests.Infrastructure;

/// <summary>A provider agent running as a real <c>coinop provider --workloads process</c> child process.</summary>
public sealed class ProviderProcess(string name, string id, ChildProcess process, TcpProxy? proxy)
{
    public string Name { get; } = name;

    public string Id { get; } = id;

    public ChildProcess Process { get; } = process;

    /// <summary>The proxy between this provider and the market, for providers started behind one.</summary>
    public TcpProxy? Proxy { get; } = proxy;
}

/// <summary>
/// A market on a loopback port (in this process, or a <c>coinop market</c> child process that can be killed; SQLite in a
/// temp dir or a fresh PostgreSQL database; free unless configured paid; default workload timings) and provider agents as
/// child processes. Failures carry every process's output.
/// </summary>
public sealed class WorkloadCluster : IAsyncDisposable
{
    /// <summary>
    /// Short provider-session heartbeats (silent sessions closed after 2 s), a 6 s failover TTL after a market restart and
    /// checkpoints every 0.5 s. Workload timings stay the market's defaults: copies heartbeat every 2 s, a cut-off
    /// provider stops its copy after 6 s, the market replaces it after 7.06 s.
    /// </summary>
    public static void ShortTimings(MarketOptions o)
    {
        o.HeartbeatMinTtl = TimeSpan.FromSeconds(1);
        o.HeartbeatGrace = TimeSpan.FromSeconds(1);
        o.FailoverTtl = TimeSpan.FromSeconds(6);
        o.CheckpointInterval = TimeSpan.FromSeconds(0.5);
    }

    // Short: a copy's port-bridge socket lives under its provider's data dir, and unix socket paths hold 107 bytes.
    private readonly string _dir = System.IO.Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "cw-" + Guid.NewGuid().ToString("N")[..8])).FullName;
    private readonly List<ProviderProcess> _providers = [];
    private readonly MarketLog _marketLog = new();
    private WebApplication? _market;
    private ChildProcess? _marketProcess;
    private MarketOptions? _options;
    private bool _childMarket;
    private string? _postgresDatabase;
    private string[] _providerArgs = [];

    private WorkloadCluster()
    {
        // Every request of Http carries the consumer's owner key (workloads answer only to their submitter), and the
        // CLI run with --data ConsumerDir is the same consumer.
        Http.DefaultRequestHeaders.Add(WorkloadOwnerKey.Header, OwnerKey);
        System.IO.Directory.CreateDirectory(ConsumerDir);
        File.WriteAllText(Path.Combine(ConsumerDir, "owner.key"), Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(OwnerKey)));
    }

    public string Url { get; private set; } = "";

    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(60) };

    /// <summary>The owner key of the consumer the tests play (sent by <see cref="Http"/>).</summary>
    public string OwnerKey { get; } = WorkloadOwnerKey.New();

    /// <summary>That consumer's data directory for <c>coinop workload --data</c>: it holds the same owner key.</summary>
    public string ConsumerDir => Path.Combine(_dir, "consumer");

    public IReadOnlyList<ProviderProcess> Providers => _providers;

    public string DataDir => _dir;

    /// <summary>The in-process market's providers (not available with a child-process market).</summary>
    public ProviderDirectory Directory => _market!.Services.GetRequiredService<ProviderDirectory>();

    public MarketOptions Options => _options!;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>
    /// A market and <paramref name="providers"/> providers (the ones in <paramref name="proxied"/> reach it through a
    /// cuttable proxy; every one gets <paramref name="providerArgs"/> too). With <paramref name="marketProcess"/> the market
    /// is a <c>coinop market</c> child process (for kill -9); only the options the CLI has flags for reach it.
    /// </summary>
    public static async Task<WorkloadCluster> StartAsync(int providers, ISet<int>? proxied = null, Action<MarketOptions>? configure = null,
        SqlDialect dialect = SqlDialect.Sqlite, bool marketProcess = false, string[]? providerArgs = null)
    {
        var cluster = new WorkloadCluster { _childMarket = marketProcess, _providerArgs = providerArgs ?? [] };
        try
        {
            var options = new MarketOptions
            {
                Urls = marketProcess ? $"http://127.0.0.1:{Ports.GetFree()}" : "http://127.0.0.1:0",
                DataDir = Path.Combine(cluster._dir, "market"),
                Free = true,
            };
            ShortTimings(options);
            if (dialect == SqlDialect.Postgres)
            {
                cluster._postgresDatabase = "t_" + Guid.NewGuid().ToString("N");
                await using var admin = new NpgsqlConnection(PostgresServer.ConnectionString);
                await admin.OpenAsync(Ct);
                await using var create = new NpgsqlCommand($"CREATE DATABASE {cluster._postgresDatabase}", admin);
                await create.ExecuteNonQueryAsync(Ct);
                options.Postgres = new NpgsqlConnectionStringBuilder(PostgresServer.ConnectionString) { Database = cluster._postgresDatabase }.ConnectionString;
            }

            configure?.Invoke(options);
            cluster._options = options;
            await cluster.StartMarketAsync(options);
            await Task.WhenAll(Enumerable.Range(0, providers).Select(i => cluster.AddProviderAsync($"p{i}", proxied?.Contains(i) == true)));
            cluster._providers.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>Stops the market (a deploy: sockets closed with 1001) and starts it again on the same address and store.</summary>
    public async Task RestartMarketAsync()
    {
        await StopMarketAsync();
        await StartMarketAgainAsync();
    }

    /// <summary>Stops the in-process market (sockets closed with 1001); its address refuses connections until <see cref="StartMarketAgainAsync"/>.</summary>
    public async Task StopMarketAsync()
    {
        await _market!.StopAsync(Ct);
        await _market.DisposeAsync();
        _market = null;
    }

    /// <summary>Starts the stopped market again on the same address and store.</summary>
    public Task StartMarketAgainAsync() => StartMarketAsync(_options!);

    /// <summary>Kills the child-process market with SIGKILL (nothing is flushed or closed), then starts it again on the same address and store.</summary>
    public async Task KillAndRestartMarketAsync()
    {
        var killed = _marketProcess!;
        killed.KillHard();
        await killed.Exited.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        _marketLog.Add("---- killed (kill -9) ----\n" + killed.Output);
        await killed.DisposeAsync();
        _marketProcess = null;
        await StartMarketAsync(_options!);
    }

    private async Task StartMarketAsync(MarketOptions options)
    {
        if (Url.Length > 0)
        {
            options.Urls = Url;
        }

        if (_childMarket)
        {
            string F(double value) => value.ToString(CultureInfo.InvariantCulture);
            string[] args =
            [
                "market", "--urls", options.Urls, "--data", options.DataDir, "--fee-percent", F(options.FeePercent),
                "--heartbeat-min-ttl", F(options.HeartbeatMinTtl.TotalSeconds), "--heartbeat-grace", F(options.HeartbeatGrace.TotalSeconds),
                "--workload-stop-after", F(options.WorkloadStopAfter.TotalSeconds) + "s", "--checkpoint-interval", F(options.CheckpointInterval.TotalSeconds), "--workload-settle-interval", F(options.WorkloadSettleInterval.TotalSeconds),
                .. options.Free ? ["--free"] : Array.Empty<string>(), .. options.Postgres is { } pg ? ["--postgres", pg] : Array.Empty<string>(),
            ];
            _marketProcess = ChildProcess.StartCoinop("market", args, new Dictionary<string, string> { ["COINOP_LOG_LEVEL"] = "Information" });
            await _marketProcess.WaitForLineAsync("coinop market listening", TimeSpan.FromSeconds(60), Ct);
            Url = options.Urls;
            return;
        }

        _market = MarketHost.Build(options, b =>
        {
            b.Logging.ClearProviders();
            b.Logging.AddProvider(new QueueLoggerProvider(_marketLog));
            b.Logging.SetMinimumLevel(LogLevel.Information);
            b.Logging.AddFilter("Microsoft", LogLevel.Warning);
        });
        await _market.StartAsync(Ct);
        Url = _market.BoundAddress();
    }

    /// <param name="args">More flags for this provider only.</param>
    /// <param name="env">More environment for this provider only (say, a PATH whose bwrap does not work).</param>
    public async Task<ProviderProcess> AddProviderAsync(string name, bool viaProxy = false, string[]? args = null, IDictionary<string, string>? env = null)
    {
        var proxy = viaProxy ? TcpProxy.Start(new Uri(Url).Port) : null;
        var environment = new Dictionary<string, string>(env ?? new Dictionary<string, string>()) { ["COINOP_LOG_LEVEL"] = "Information" };
        var process = ChildProcess.StartCoinop("provider " + name,
            ["provider", "--market", proxy?.Url ?? Url, "--data", Path.Combine(_dir, name), "--name", name, "--workloads", "process", "--cpu", "1", "--memory", "1024", .. _providerArgs, .. args ?? []],
            environment);
        var line = await process.WaitForLineAsync("coinop provider ", TimeSpan.FromSeconds(60), Ct);
        var id = line.Split(' ')[2];
        var provider = new ProviderProcess(name, id, process, proxy);
        lock (_providers)
        {
            _providers.Add(provider);
        }

        await WaitForProviderAsync(provider);
        return provider;
    }

    /// <summary>Waits until the market has the provider's workload capabilities (a fresh session, after a reconnect).</summary>
    public Task WaitForProviderAsync(ProviderProcess provider, ProviderSession? notThis = null) => _childMarket
        ? Eventually.WaitAsync<JsonNode>(async () => JsonNode.Parse(await Http.GetStringAsync(Url + "/api/providers", Ct))!.AsArray()
                .FirstOrDefault(p => (string?)p!["id"] == provider.Id && (bool?)p["online"] == true && p["workloads"] is not null),
            p => p is not null, $"provider {provider.Name} online with workload capacity", TimeSpan.FromSeconds(60), Ct)
        : Eventually.WaitAsync<ProviderSession>(() => Task.FromResult(Directory.Find(provider.Id)),
            s => s is { WorkloadCapacity: not null, Accepting: true } && s != notThis, $"provider {provider.Name} online with workload capacity",
            TimeSpan.FromSeconds(60), Ct);

    /// <summary>The ledger summary over HTTP, with the operator's token.</summary>
    public async Task<LedgerSummary> SummaryAsync()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, Url + "/api/ledger/summary");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", File.ReadAllText(Path.Combine(_options!.DataDir, "admin.token")).Trim());
        using var response = await Http.SendAsync(request, Ct);
        var s = JsonNode.Parse(await response.Content.ReadAsStringAsync(Ct))!;
        long Get(string name) => (long)s[name]!;
        return new LedgerSummary(Get("received_msat"), Get("spent_msat"), Get("refunded_msat"), Get("balances_msat"), Get("held_msat"),
            Get("provider_earned_msat"), Get("owed_msat"), Get("fee_msat"), Get("paid_out_msat"));
    }

    /// <summary>Checks the ledger equations (over HTTP) and the journal against the account totals (in the store itself).</summary>
    public async Task<LedgerSummary> AssertBalancedAsync()
    {
        var summary = await SummaryAsync();
        Assert.Empty(summary.Imbalances());
        await using var store = _options!.Postgres is { } pg ? Database.Postgres(pg) : Database.Sqlite(Path.Combine(_options.DataDir, "market.db"));
        Assert.Empty(await new LedgerStore(store).AuditAsync(Ct));
        return summary;
    }

    /// <summary>What a provider earned, from the store.</summary>
    public async Task<ProviderEarnings> EarningsAsync(string providerId)
    {
        await using var store = _options!.Postgres is { } pg ? Database.Postgres(pg) : Database.Sqlite(Path.Combine(_options.DataDir, "market.db"));
        return await new LedgerStore(store).EarningsAsync(providerId, Ct);
    }

    /// <summary>The kernel's lease on the workload's current copy, from the store (null when none is held).</summary>
    public async Task<WorkLease?> CopyLeaseAsync(string workloadId)
    {
        await using var store = _options!.Postgres is { } pg ? Database.Postgres(pg) : Database.Sqlite(Path.Combine(_options.DataDir, "market.db"));
        return (await new WorkStore(store, TimeProvider.System).ObserveAsync(workloadId, Ct))?.Item.Lease;
    }

    /// <summary>Submits a workload through <c>POST /api/workloads</c>; returns its view.</summary>
    public async Task<JsonObject> SubmitAsync(JsonObject request)
    {
        using var response = await Http.PostAsJsonAsync(Url + "/api/workloads", request, Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"submit answered {(int)response.StatusCode}: {body}");
        return JsonNode.Parse(body)!.AsObject();
    }

    public async Task<JsonObject> GetAsync(string id)
    {
        using var response = await Http.GetAsync($"{Url}/api/workloads/{id}", Ct);
        response.EnsureSuccessStatusCode();
        return JsonNode.Parse(await response.Content.ReadAsStringAsync(Ct))!.AsObject();
    }

    /// <summary>Polls the workload until <paramref name="done"/> holds (nothing in another process can be awaited directly).</summary>
    public Task<JsonObject> WaitForAsync(string id, Func<JsonObject, bool> done, string what, TimeSpan? timeout = null) =>
        Eventually.WaitAsync<JsonObject>(async () => await GetAsync(id), w => w is not null && done(w), $"workload {id}: {what}",
            timeout ?? TimeSpan.FromSeconds(60), Ct);

    public Task<JsonObject> WaitForStateAsync(string id, string state, string? provider = null, long? epoch = null, TimeSpan? timeout = null) =>
        WaitForAsync(id, w => (string?)w["state"] == state && (provider is null || (string?)w["provider"] == provider) && (epoch is null || (long?)w["epoch"] == epoch),
            $"state {state}{(provider is null ? "" : " on " + provider)}{(epoch is null ? "" : $" at epoch {epoch}")}", timeout);

    /// <summary>Everything the market and the providers printed, for failure messages.</summary>
    public string Diagnostics() =>
        "market:\n" + string.Join('\n', _marketLog.Lines) + "\n" + (_marketProcess?.Output ?? "") + "\n"
        + string.Join('\n', _providers.Select(p => $"{p.Name} ({p.Id}):\n{p.Process.Output}"));

    public async ValueTask DisposeAsync()
    {
        foreach (var provider in _providers)
        {
            await provider.Process.DisposeAsync();
            if (provider.Proxy is not null)
            {
                await provider.Proxy.DisposeAsync();
            }
        }

        if (_market is not null)
        {
            try
            {
                await _market.StopAsync(CancellationToken.None);
                await _market.DisposeAsync();
            }
            catch (ObjectDisposedException)
            {
            }
        }

        if (_marketProcess is not null)
        {
            await _marketProcess.DisposeAsync();
        }

        Http.Dispose();
        if (_postgresDatabase is not null)
        {
            NpgsqlConnection.ClearAllPools();
            await using var admin = new NpgsqlConnection(PostgresServer.ConnectionString);
            await admin.OpenAsync(CancellationToken.None);
            await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {_postgresDatabase} WITH (FORCE)", admin);
            await drop.ExecuteNonQueryAsync(CancellationToken.None);
        }

        try
        {
            System.IO.Directory.Delete(_dir, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // A copy's files owned by the sandbox user may linger for a moment; the temp dir is cleaned eventually.
        }
    }

    /// <summary>Waits for a line of the market's log containing <paramref name="text"/>.</summary>
    public Task<string> WaitForMarketLogAsync(string text, TimeSpan? timeout = null) => _marketLog.WaitAsync(l => l.Contains(text, StringComparison.Ordinal), text, timeout);

    /// <summary>The market's log lines, awaitable.</summary>
    private sealed class MarketLog
    {
        private readonly Lock _gate = new();
        private readonly List<string> _lines = [];
        private readonly List<(Func<string, bool> Match, TaskCompletionSource<string> Done)> _waiters = [];

        public IReadOnlyList<string> Lines
        {
            get
            {
                lock (_gate)
                {
                    return [.. _lines];
                }
            }
        }

        public void Add(string line)
        {
            List<TaskCompletionSource<string>> done = [];
            lock (_gate)
            {
                _lines.Add(line);
                for (var i = _waiters.Count - 1; i >= 0; i--)
                {
                    if (_waiters[i].Match(line))
                    {
                        done.Add(_waiters[i].Done);
                        _waiters.RemoveAt(i);
                    }
                }
            }

            done.ForEach(d => d.TrySetResult(line));
        }

        public async Task<string> WaitAsync(Func<string, bool> match, string what, TimeSpan? timeout)
        {
            var done = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_gate)
            {
                if (_lines.FirstOrDefault(match) is { } seen)
                {
                    return seen;
                }

                _waiters.Add((match, done));
            }

            var limit = timeout ?? TimeSpan.FromSeconds(60);
            if (await Task.WhenAny(done.Task, Task.Delay(limit, TestContext.Current.CancellationToken)) != done.Task)
            {
                throw new TimeoutException($"the market logged no line with '{what}' within {limit}");
            }

            return await done.Task;
        }
    }

    /// <summary>Keeps the market's log lines for <see cref="Diagnostics"/>.</summary>
    private sealed class QueueLoggerProvider(MarketLog lines) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new QueueLogger(lines, categoryName[(categoryName.LastIndexOf('.') + 1)..]);

        public void Dispose()
        {
        }

        private sealed class QueueLogger(MarketLog lines, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                lines.Add($"{DateTime.UtcNow:HH:mm:ss.fff} {logLevel} {category}: {formatter(state, exception)}{(exception is null ? "" : " " + exception)}");
        }
    }
}

/// <summary>A test workload: <c>sh -c SCRIPT MARKER</c>, the marker making its copies unique in the process table.</summary>
public sealed record TestWorkload(string Script)
{
    public string Marker { get; } = "wl-" + Guid.NewGuid().ToString("N")[..12];

    public IReadOnlyList<string> Argv => ["sh", "-c", Script, Marker];

    /// <summary>The submit request body for this command with the given extra fields.</summary>
    public JsonObject Request(object? extra = null)
    {
        var request = new JsonObject
        {
            ["command"] = "sh",
            ["args"] = new JsonArray("-c", Script, Marker),
            ["cpu"] = 0.2,
            ["memory_mb"] = 64,
        };
        if (extra is not null)
        {
            foreach (var (key, value) in JsonSerializer.SerializeToNode(extra)!.AsObject())
            {
                request[key] = value?.DeepClone();
            }
        }

        return request;
    }

    public CopyWatcher.Watch Watch() => CopyWatcher.Start(Argv);

    /// <summary>A workload that prints and then runs until stopped.</summary>
    public static TestWorkload Forever() => new("echo started epoch $COINOP_EPOCH; while :; do sleep 1; done");
}
