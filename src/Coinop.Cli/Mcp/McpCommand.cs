using System.CommandLine;
using Coinop.Cli.Shared;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using ModelContextProtocol.Protocol;

namespace Coinop.Cli.Mcp;

/// <summary>
/// <c>coinop mcp</c>: a Model Context Protocol server over stdio, so an agent can use the market as tools (models and
/// prices, chat, workloads, wallet balance). Each tool runs the <c>coinop</c> command it stands for; see <see cref="CoinopRunner"/>.
/// </summary>
public static class McpCommand
{
    public static Command Create()
    {
        var market = CliOptions.Market();
        var data = CliOptions.Data(".coinop/consumer", "Consumer data directory the workload tools use (as 'coinop workload --data')");
        var wallet = new Option<string>("--wallet")
        {
            Description = "The wallet that pays a paid market and takes refunds (its data directory)",
            DefaultValueFactory = _ => ".coinop/wallet",
        };
        var maxSat = new Option<ulong?>("--max-sat")
        {
            Description = "Most sats one paid tool call may send (default: the command's own, 100 for chat and 1000 for a workload payment)",
        };
        var command = new Command("mcp", "Serve the market to an agent as Model Context Protocol tools over stdin/stdout") { market, data, wallet, maxSat };
        command.SetAction(async (parse, ct) =>
        {
            var runner = new CoinopRunner(parse.GetValue(market)!, parse.GetValue(data)!, parse.GetValue(wallet)!, parse.GetValue(maxSat));
            var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = [], DisableDefaults = true });
            // stdout carries the protocol: logs go to stderr only.
            builder.Logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            builder.Services.AddSingleton(runner);
            builder.Services
                .AddMcpServer(o => o.ServerInfo = new Implementation { Name = "coinop", Version = typeof(McpCommand).Assembly.GetName().Version?.ToString() ?? "0" })
                .WithStdioServerTransport()
                .WithTools<MarketTools>();
            using var host = builder.Build();
            await host.RunAsync(ct);
            return 0;
        });
        return command;
    }
}
