using System.ComponentModel;
using System.Globalization;
using System.Text;
using System.Text.Json;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Coinop.Cli.Mcp;

/// <summary>The tools <c>coinop mcp</c> serves; each one is the <c>coinop</c> command named in its description.</summary>
[McpServerToolType]
public sealed class MarketTools(CoinopRunner coinop)
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    [McpServerTool(Name = "list_models", ReadOnly = true)]
    [Description("The market's providers: the models each serves with prices (sats per million input and output tokens), workload offers and load, as JSON ('coinop providers --json').")]
    public Task<CallToolResult> ListModels(CancellationToken cancellationToken) =>
        coinop.RunAsync(["providers", "--json", "--market", coinop.Market], cancellationToken);

    [McpServerTool(Name = "chat")]
    [Description("Ask a model through the market and get its answer; a paid market is paid from the local wallet ('coinop chat').")]
    public Task<CallToolResult> Chat(
        [Description("The model to ask (see list_models)")] string model,
        [Description("What to ask")] string prompt,
        [Description("Most tokens the answer may have")] int? maxTokens = null,
        CancellationToken cancellationToken = default) =>
        coinop.RunAsync([
            "chat", "--market", coinop.Market, "--wallet", coinop.Wallet, "--model", model, .. coinop.MaxSat,
            .. maxTokens is { } max ? ["--max-tokens", max.ToString(Inv)] : Array.Empty<string>(), "--", prompt,
        ], cancellationToken);

    [McpServerTool(Name = "workload_submit")]
    [Description("Rent compute by the second: run a command on a provider; answers the workload as JSON (its id, state, provider, paid until) ('coinop workload submit --json').")]
    public Task<CallToolResult> WorkloadSubmit(
        [Description("The command and its arguments, e.g. [\"python3\", \"-m\", \"http.server\", \"8080\"]")] string[] command,
        [Description("CPU cores (default 1)")] double? cpu = null,
        [Description("Memory in MB (default 256)")] long? memoryMb = null,
        [Description("Paid duration, e.g. 90s, 15m, 24h (default 1h)")] string? duration = null,
        [Description("The port the workload listens on at 127.0.0.1")] int? port = null,
        [Description("sandbox (default): only providers that isolate copies; none: also providers running plain processes")] string? isolation = null,
        [Description("never (default) or on-failure:N")] string? restart = null,
        CancellationToken cancellationToken = default)
    {
        List<string> args = ["workload", "submit", .. Common(), "--json"];
        Add(args, "--cpu", cpu?.ToString(Inv));
        Add(args, "--memory", memoryMb?.ToString(Inv));
        Add(args, "--duration", duration);
        Add(args, "--port", port?.ToString(Inv));
        Add(args, "--isolation", isolation);
        Add(args, "--restart", restart);
        return coinop.RunAsync([.. args, "--", .. command], cancellationToken);
    }

    [McpServerTool(Name = "workload_status", ReadOnly = true)]
    [Description("A workload as JSON: state, provider, standbys, history, usage, money ('coinop workload status --json').")]
    public Task<CallToolResult> WorkloadStatus([Description("The workload id")] string id, CancellationToken cancellationToken) =>
        coinop.RunAsync(["workload", "status", id, .. Common(), "--json"], cancellationToken);

    [McpServerTool(Name = "workload_logs", ReadOnly = true)]
    [Description("A workload's output so far, stdout and stderr as the copies wrote them ('coinop workload logs').")]
    public async Task<CallToolResult> WorkloadLogs([Description("The workload id")] string id, CancellationToken cancellationToken)
    {
        var (output, notes, exit) = await coinop.RunRawAsync(["workload", "logs", id, .. Common(), "--json"], cancellationToken);
        if (exit != 0)
        {
            return new CallToolResult { IsError = true, Content = [new TextContentBlock { Text = notes.Trim() }] };
        }

        // The JSON lines carry each piece's bytes in base64: put them back together as text, in order.
        var text = new StringBuilder();
        foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            using var entry = JsonDocument.Parse(line);
            if (entry.RootElement.TryGetProperty("data", out var data))
            {
                text.Append(Encoding.UTF8.GetString(Convert.FromBase64String(data.GetString() ?? "")));
            }
        }

        return new CallToolResult { Content = [new TextContentBlock { Text = text.ToString() }] };
    }

    [McpServerTool(Name = "workload_cancel", Destructive = true)]
    [Description("Stop a workload; unused paid time comes back into the wallet ('coinop workload cancel --json').")]
    public Task<CallToolResult> WorkloadCancel([Description("The workload id")] string id, CancellationToken cancellationToken) =>
        coinop.RunAsync(["workload", "cancel", id, .. Common(), "--json"], cancellationToken);

    [McpServerTool(Name = "workload_topup")]
    [Description("Pay for more time for a workload, by duration or by amount ('coinop workload topup --json').")]
    public Task<CallToolResult> WorkloadTopUp(
        [Description("The workload id")] string id,
        [Description("Time to add, e.g. 30m (default 1h)")] string? duration = null,
        [Description("Pay this many sats instead: they buy what time they cover")] ulong? amountSat = null,
        CancellationToken cancellationToken = default)
    {
        List<string> args = ["workload", "topup", id, .. Common(), "--json"];
        Add(args, "--duration", duration);
        Add(args, "--amount", amountSat?.ToString(Inv));
        return coinop.RunAsync(args, cancellationToken);
    }

    [McpServerTool(Name = "wallet_balance", ReadOnly = true)]
    [Description("The local wallet's balance per mint, as JSON ('coinop wallet balance --json').")]
    public Task<CallToolResult> WalletBalance(CancellationToken cancellationToken) =>
        coinop.RunAsync(["wallet", "balance", "--data", coinop.Wallet, "--json"], cancellationToken);

    private string[] Common() => ["--market", coinop.Market, "--data", coinop.Data, "--wallet", coinop.Wallet, .. coinop.MaxSat];

    private static void Add(List<string> args, string name, string? value)
    {
        if (value is not null)
        {
            args.Add(name);
            args.Add(value);
        }
    }
}
