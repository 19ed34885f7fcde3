using System.CommandLine;
using Coinop.Cli.Shared;
using Coinop.Core.Pricing;
using Coinop.Provider.Backends;
using Coinop.Provider.Drain;
using Coinop.Provider.Hosting;
using Coinop.Provider.Workloads.Limits;
using Coinop.Provider.Workloads.Sandboxes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Coinop.Cli.ProviderAgent;

/// <summary><c>coinop provider</c>: run a provider agent; <c>coinop provider drain</c>: drain the running one.</summary>
public static class ProviderCommands
{
    private const string DefaultData = ".coinop/provider";

    public static Command Create()
    {
        var market = new Option<string[]>("--market")
        {
            Description = "The market's base URL, e.g. http://127.0.0.1:3338; with several nodes, their URLs comma-separated or --market repeated (linked one at a time, in order)",
            Required = true,
            AllowMultipleArgumentsPerToken = false,
            CustomParser = r =>
            {
                var urls = new List<string>();
                foreach (var url in r.Tokens.SelectMany(t => t.Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)))
                {
                    if (Coinop.Provider.Reconnect.MarketRotation.Normalize(url) is { } normalized)
                    {
                        urls.Add(normalized);
                    }
                    else
                    {
                        r.AddError($"'{url}' is not an http(s) URL");
                    }
                }

                return [.. urls];
            },
        };
        var backends = new Option<BackendEndpoint[]>("--backend")
        {
            Description = $"An inference server as KIND=URL, KIND {BackendEndpoint.KindList} (repeatable; default: probe Ollama 11434, vLLM 8000, llama.cpp 8080, LM Studio 1234 on this machine)",
            CustomParser = r =>
            {
                var list = new List<BackendEndpoint>();
                foreach (var token in r.Tokens)
                {
                    if (BackendEndpoint.TryParse(token.Value, out var endpoint, out var error))
                    {
                        list.Add(endpoint!);
                    }
                    else
                    {
                        r.AddError(error!);
                    }
                }

                return [.. list];
            },
        };
        var data = CliOptions.Data(DefaultData, "Provider data directory (identity key, pid file)");
        var name = new Option<string?>("--name") { Description = "A display name shown by the market" };
        var prices = new Option<Dictionary<string, ModelPrice>>("--price")
        {
            Description = $"A model's price as MODEL=IN:OUT in sats per million input:output tokens (repeatable; default {ModelPrice.Default})",
            CustomParser = r =>
            {
                var map = new Dictionary<string, ModelPrice>(StringComparer.Ordinal);
                foreach (var token in r.Tokens)
                {
                    var eq = token.Value.IndexOf('=', StringComparison.Ordinal);
                    if (eq <= 0)
                    {
                        r.AddError($"'{token.Value}' is not a price: expected MODEL=IN:OUT, e.g. llama3=1000:3000");
                    }
                    else if (!ModelPrice.TryParseSats(token.Value[(eq + 1)..], out var price, out var error))
                    {
                        r.AddError(error!);
                    }
                    else
                    {
                        map[token.Value[..eq]] = price;
                    }
                }

                return map;
            },
        };
        var maxConcurrent = new Option<int>("--max-concurrent") { Description = "Jobs served at once; more are refused", DefaultValueFactory = _ => 8 };
        var enroll = new Option<string?>("--enroll") { Description = "Enrollment code for a market that enrolls providers by code" };
        var drainTimeout = CliOptions.Duration("--drain-timeout", "How long a drain waits for jobs in flight; default 30s");
        var workloads = new Option<string?>("--workloads")
        {
            Description = "Also run consumers' workloads: process (in bubblewrap; refused when it does not work here) or docker",
        };
        workloads.AcceptOnlyFromAmong("process", "docker");
        var unsafeNoSandbox = new Option<bool>("--unsafe-no-sandbox")
        {
            Description = "With --workloads process: when bubblewrap does not work, run workloads as plain processes with the agent's user, files and network (isolation 'none', shown to consumers)",
        };
        var egress = new Option<bool>("--workload-egress")
        {
            Description = "With --workloads docker: let copies open connections to the internet (default: no network but their port's bridge)",
        };
        var pids = new Option<int?>("--workload-pids") { Description = "Most processes and threads one workload copy may have (default 512)" };
        var tmp = new Option<long?>("--workload-tmp") { Description = "Size of each copy's /tmp in MB, held in memory (default 64)" };
        var disk = new Option<long?>("--workload-disk") { Description = "What each copy's /work and /state may hold together, in MB (default 1024)" };
        var cpu = new Option<double?>("--cpu") { Description = "CPU cores offered to workloads (default: all cores)" };
        var memory = new Option<long?>("--memory") { Description = "Memory in MB offered to workloads (default: half the machine's)" };
        var workloadPrice = new Option<WorkloadPrice?>("--workload-price")
        {
            Description = $"Workload rates as CPU_MSAT_PER_CORE_S:MEM_MSAT_PER_GB_S, in whole msat (default {WorkloadPrice.Default})",
            CustomParser = r =>
            {
                if (WorkloadPrice.TryParse(r.Tokens[0].Value, out var price, out var error))
                {
                    return price;
                }

                r.AddError(error!);
                return null;
            },
        };
        var workloadHost = new Option<string?>("--workload-host")
        {
            Description = "Host name or address consumers reach workload ports at (put into access receipts; default 127.0.0.1)",
        };
        var usageWindow = CliOptions.Duration("--usage-window", "Length of each signed usage record of a workload copy; default 10s");
        var metricsListen = new Option<string?>("--metrics-listen")
        {
            Description = "Serve the agent's metrics as Prometheus text at http://ADDRESS:PORT/metrics (e.g. 127.0.0.1:9464; default: none)",
        };

        var command = new Command("provider", "Run a provider agent next to local inference servers (SIGTERM or Ctrl-C drains it)")
        {
            market, backends, data, name, prices, maxConcurrent, enroll, drainTimeout, workloads, unsafeNoSandbox, egress, pids, tmp, disk, cpu, memory, workloadPrice, workloadHost,
            usageWindow, metricsListen,
        };
        command.SetAction(async (parse, ct) =>
        {
            void Configure(ProviderOptions o)
            {
                o.MarketUrls = [.. parse.GetValue(market)!];
                o.Backends = [.. parse.GetValue(backends) ?? []];
                o.DataDir = parse.GetValue(data)!;
                o.Name = parse.GetValue(name);
                o.Prices = parse.GetValue(prices) ?? [];
                o.MaxConcurrent = parse.GetValue(maxConcurrent);
                o.EnrollmentCode = parse.GetValue(enroll);
                o.DrainTimeout = parse.GetValue(drainTimeout) ?? o.DrainTimeout;
                o.Workloads = parse.GetValue(workloads);
                o.UnsafeNoSandbox = parse.GetValue(unsafeNoSandbox);
                o.WorkloadEgress = parse.GetValue(egress);
                o.WorkloadLimits.MaxProcesses = parse.GetValue(pids) ?? o.WorkloadLimits.MaxProcesses;
                o.WorkloadLimits.TmpBytes = parse.GetValue(tmp) is { } tmpMb ? CopyLimits.Mebibytes(tmpMb) : o.WorkloadLimits.TmpBytes;
                o.WorkloadLimits.DiskBytes = parse.GetValue(disk) is { } diskMb ? CopyLimits.Mebibytes(diskMb) : o.WorkloadLimits.DiskBytes;
                o.WorkloadCpuCores = parse.GetValue(cpu);
                o.WorkloadMemoryMb = parse.GetValue(memory);
                o.WorkloadPrice = parse.GetValue(workloadPrice) ?? o.WorkloadPrice;
                o.WorkloadPublicHost = parse.GetValue(workloadHost) ?? o.WorkloadPublicHost;
                o.WorkloadUsageWindow = parse.GetValue(usageWindow) ?? o.WorkloadUsageWindow;
                o.MetricsListen = parse.GetValue(metricsListen);
            }

            var options = new ProviderOptions();
            Configure(options);
            ProviderAgentSetup.Validate(options);
            if (options.MetricsListen is { } listen)
            {
                ThrowIfTaken(System.Net.IPEndPoint.Parse(listen));
            }

            // The agent is an I/O relay: what runs after a socket read or write is short and never blocks (workload
            // messages go to their own queue), so completions may run on the socket engine's threads instead of
            // being handed to the thread pool. That halves the agent's context switches per relayed request and
            // cuts its CPU by about a third (docs/benchmarks.md). The runtime reads the switch once, at the first
            // socket, which is after this; a value set by the user wins.
            Coinop.Runtime.Threading.SocketThreads.PreferInlineCompletions();

            var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = Coinop.Runtime.Hosting.HostArguments.Default });
            HostLogging.Configure(builder.Logging);
            builder.Services.AddProviderAgent(Configure);
            using var host = builder.Build();
            try
            {
                await host.StartAsync(ct);
            }
            catch (SandboxException ex)
            {
                throw new CliException("cannot run workloads: " + ex.Message);
            }

            var agent = host.Services.GetRequiredService<Coinop.Provider.Hosting.ProviderAgent>();
            Console.WriteLine($"coinop provider {agent.ProviderId} serving {string.Join(", ", parse.GetValue(market)!)} (data {parse.GetValue(data)}; SIGTERM or Ctrl-C drains)");
            await host.WaitForShutdownAsync(ct);
            return 0;
        });

        command.Subcommands.Add(CreateDrain());
        command.Subcommands.Add(ProviderMoneyCommands.CreateEarnings(DefaultData));
        command.Subcommands.Add(ProviderMoneyCommands.CreatePayout(DefaultData));
        command.Subcommands.Add(ProviderStatusCommand.Create(DefaultData));
        // A drain takes up to --drain-timeout (30 s by default); systemd waits longer before it kills.
        command.Subcommands.Add(InstallServiceCommand.Create("provider", "Coinop provider agent", "coinop-provider", "/var/lib/coinop/provider", TimeSpan.FromSeconds(120), isProvider: true));
        return command;
    }

    /// <summary>
    /// Says in one line that the metrics address cannot be had, before the host starts (whose own failure would log a
    /// stack trace); one taken in between still stops the agent with an error.
    /// </summary>
    private static void ThrowIfTaken(System.Net.IPEndPoint endpoint)
    {
        using var probe = new System.Net.Sockets.TcpListener(endpoint);
        try
        {
            probe.Start();
        }
        catch (System.Net.Sockets.SocketException ex)
        {
            throw new CliException($"--metrics-listen {endpoint}: {ex.Message}");
        }
    }

    private static Command CreateDrain()
    {
        var data = CliOptions.Data(DefaultData, "Data directory of the running provider");
        var timeout = CliOptions.Duration("--timeout", "How long to wait for the provider to exit; default 120s");
        var command = new Command("drain", "Drain the provider running with --data: it takes no new jobs, finishes the ones in flight, then exits") { data, timeout };
        command.SetAction(async (parse, ct) =>
        {
            var dir = parse.GetValue(data)!;
            Console.WriteLine($"coinop: draining the provider running with data directory {dir}...");
            var pid = await CliProgress.RunAsync("Draining: jobs in flight finish, workloads hand over...", json: false,
                () => AgentProcess.DrainAsync(dir, parse.GetValue(timeout) ?? TimeSpan.FromSeconds(120), TimeProvider.System, ct));
            Console.WriteLine($"coinop: provider (pid {pid}) drained and exited");
            return 0;
        });
        return command;
    }
}
