using System.CommandLine;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization;
using Coinop.Cli.Shared;
using Coinop.Core.Text;
using Coinop.Core.Workloads;
using Coinop.Market.Workloads;

namespace Coinop.Cli.Workloads;

/// <summary>
/// <c>coinop workload</c>: rent compute by the second. <c>submit</c> prints the workload id as its last line; <c>status</c>,
/// <c>logs</c>, <c>cancel</c>, <c>topup</c> and <c>access</c> take it; <c>list</c> shows this consumer's. The consumer's
/// owner key (its workloads answer only to it), its X25519 key, the checkpoint keys and the tokens that paid live in
/// <c>--data</c> (default <c>.coinop/consumer</c>). A paid market is paid
/// from the wallet in <c>--wallet</c> (default <c>.coinop/wallet</c>), and refunds go back into it.
/// </summary>
public static class WorkloadCommands
{
    private const string DefaultData = ".coinop/consumer";

    /// <summary>What one workload payment sends at most unless <c>--max-sat</c> says otherwise.</summary>
    public const ulong DefaultMaxSat = 1000;

    public static Command Create()
    {
        var market = CliOptions.Market(required: false); // 'verify --file' works offline; WorkloadClient asks for it otherwise
        market.Recursive = true;
        var data = CliOptions.Data(DefaultData, "Consumer data directory (its X25519 key, the workloads' checkpoint keys and payment credentials)");
        data.Recursive = true;
        var wallet = new Option<string>("--wallet") { Description = "The wallet that pays a paid market and takes refunds (its data directory)", DefaultValueFactory = _ => ".coinop/wallet", Recursive = true };
        var maxSat = CliOptions.MaxSat(DefaultMaxSat, "one payment (submit, topup)");
        maxSat.Recursive = true;
        var command = new Command("workload", "Rent compute by the second: submit, status, logs, cancel, topup, list, access, verify") { market, data, wallet, maxSat };
        var context = new WorkloadContext(market, data, wallet, maxSat);
        command.Subcommands.Add(WorkloadSubmit.Create(context));
        command.Subcommands.Add(CreateStatus(context));
        command.Subcommands.Add(WorkloadLogs.Create(context));
        command.Subcommands.Add(CreateCancel(context));
        command.Subcommands.Add(CreateTopUp(context));
        command.Subcommands.Add(CreateList(context));
        command.Subcommands.Add(WorkloadAccess.Create(context));
        command.Subcommands.Add(WorkloadVerify.Create(market, data));
        return command;
    }

    private static Command CreateStatus(WorkloadContext options)
    {
        var id = IdArgument();
        var json = CliOptions.Json();
        var command = new Command("status", "Show a workload: state, provider, standbys, epoch, history, usage, money; takes a finished one's refund into the wallet")
        {
            id, json,
        };
        command.SetAction(async (parse, ct) =>
        {
            using var client = options.Client(parse);
            var workloadId = parse.GetValue(id)!;
            var view = await client.GetAsync("api/workloads/" + Uri.EscapeDataString(workloadId), WorkloadJsonContext.Default.WorkloadView, ct);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(view, WorkloadJsonContext.Default.WorkloadView));
                return 0;
            }

            PrintStatus(view);
            // A workload that ended by itself (exit, failure, lease run out) keeps its refund for the payer: collect it.
            if (view.Refund is not null && new ConsumerKeys(parse.GetValue(options.Data)!).LoadPayer(workloadId) is { } payer)
            {
                using var response = await client.SendRawAsync(HttpMethod.Get, "api/workloads/" + Uri.EscapeDataString(workloadId) + "/refund", null, null, payer, ct);
                await WorkloadPayments.ReceiveRefundAsync(client, parse.GetValue(options.Wallet)!, await WorkloadClient.ReadAsync(response, WorkloadJsonContext.Default.RefundView, ct));
            }

            return 0;
        });
        return command;
    }

    private static void PrintStatus(WorkloadView view)
    {
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine($"workload   {view.Id}");
        Console.WriteLine($"state      {WireEnum.Name(view.State)}{(view.Reason is { } r ? $" ({r})" : "")}");
        Console.WriteLine($"provider   {view.Provider ?? "-"}");
        Console.WriteLine($"standbys   {(view.Standbys.Count == 0 ? "-" : string.Join(", ", view.Standbys))}");
        Console.WriteLine($"epoch      {view.Epoch}   attempts {view.Attempts}");
        Console.WriteLine($"command    {string.Join(' ', [view.Spec.Command, .. view.Spec.Args])}");
        Console.WriteLine(string.Create(inv, $"resources  {view.Spec.Cpu:0.##} cores, {view.Spec.MemoryMb} MB; {view.Spec.Replication}, restart {view.Spec.Restart}; isolation {WireEnum.Name(view.Spec.Isolation)}"));
        Console.WriteLine(string.Create(inv, $"paid       until {view.PaidUntil:u} at {view.RateMsatPerSecond:0.###} msat/s"));
        if (view.SpentMsat is { } spent)
        {
            Console.WriteLine(string.Create(inv, $"spent      {spent} of {view.PaidMsat} msat paid (settled to {view.SettledUntil:u})"));
        }

        if (view.Checkpoint is { } checkpoint)
        {
            Console.WriteLine($"checkpoint {checkpoint.Size} bytes from epoch {checkpoint.Epoch} at {checkpoint.At:u}");
        }

        Console.WriteLine("history");
        foreach (var h in view.History)
        {
            Console.WriteLine($"  {h.At:u}  {WireEnum.Name(h.State),-12} {h.Provider ?? "-"}");
        }

        // Every record is checked here, not taken from the market's word.
        var records = view.Usage.Select(UsageRecord.Verify).ToList();
        var valid = records.Where(r => r is not null).Select(r => r!).ToList();
        Console.WriteLine(string.Create(inv,
            $"usage      {records.Count} signed records ({valid.Count} verify): {valid.Sum(r => r.CpuCoreSeconds):0.###} core-s, " +
            $"{valid.Sum(r => r.MemoryMibSeconds):0.#} MiB-s, {UsageAudit.SaturatingSum(valid.Select(r => r.NetBytes))} net bytes, {valid.Sum(r => r.WallSeconds):0.#} s"));
    }

    private static Command CreateCancel(WorkloadContext options)
    {
        var id = IdArgument();
        var json = CliOptions.Json();
        var command = new Command("cancel", "Stop a workload; unused paid time comes back into the wallet") { id, json };
        command.SetAction(async (parse, ct) =>
        {
            using var client = options.Client(parse);
            var workloadId = parse.GetValue(id)!;
            // On a paid market only the token that paid may cancel (and so collect the refund).
            var payer = new ConsumerKeys(parse.GetValue(options.Data)!).LoadPayer(workloadId);
            using var response = await client.SendRawAsync(HttpMethod.Delete, "api/workloads/" + Uri.EscapeDataString(workloadId), null, null, payer, ct);
            var view = await WorkloadClient.ReadAsync(response, WorkloadJsonContext.Default.WorkloadView, ct);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(view, WorkloadJsonContext.Default.WorkloadView));
            }
            else
            {
                Console.WriteLine($"{view.Id} {WireEnum.Name(view.State)}");
            }

            if (view.Refund is { } refund)
            {
                await WorkloadPayments.ReceiveRefundAsync(client, parse.GetValue(options.Wallet)!, refund);
            }

            return 0;
        });
        return command;
    }

    private static Command CreateTopUp(WorkloadContext options)
    {
        var id = IdArgument();
        var duration = CliOptions.Duration("--duration", "Time to add; default 1h");
        var amount = new Option<ulong?>("--amount") { Description = "Pay this many sats instead: they buy what time they cover at the workload's rate" };
        var json = CliOptions.Json();
        var command = new Command("topup", "Pay for more time (from the wallet, on a paid market)") { id, duration, amount, json };
        command.Validators.Add(r =>
        {
            (TimeSpan? Duration, ulong? Amount) given;
            try
            {
                given = (r.GetValue(duration), r.GetValue(amount));
            }
            catch (InvalidOperationException)
            {
                return; // an option without a usable value ("--duration" alone, "--amount x"): its own error is the one reported
            }

            if (given.Duration is not null && given.Amount is not null)
            {
                r.AddError("--duration and --amount exclude each other");
            }

            if (given.Amount is 0)
            {
                r.AddError("--amount must be at least 1 sat");
            }
        });
        command.SetAction(async (parse, ct) =>
        {
            using var client = options.Client(parse);
            var path = "api/workloads/" + Uri.EscapeDataString(parse.GetValue(id)!) + "/topup";
            var walletDir = parse.GetValue(options.Wallet)!;
            (WorkloadView View, MarketPayment? Payment) result;
            if (parse.GetValue(amount) is { } sats)
            {
                // A token of that value pays at once; the market's accepted mints say where it may come from.
                using var mints = new HttpClient { Timeout = TimeSpan.FromMinutes(2) };
                var info = await client.GetAsync("api/payments/info", WorkloadCliJson.Default.PaymentsInfo, ct);
                var payment = await MarketPayment.PayAmountAsync(info.Mints, sats, client.Http, walletDir, mints, WorkloadPayments.Memo, parse.GetValue(options.MaxSat), ct);
                result = await WorkloadPayments.PaidAsync(client, walletDir, parse.GetValue(options.MaxSat), HttpMethod.Post, path, () => null, ct, payment);
            }
            else
            {
                var extra = parse.GetValue(duration) ?? TimeSpan.FromHours(1);
                result = await WorkloadPayments.PaidAsync(client, walletDir, parse.GetValue(options.MaxSat), HttpMethod.Post, path,
                    () => JsonContent.Create(new TopUpRequest(extra.TotalSeconds), WorkloadJsonContext.Default.TopUpRequest), ct);
            }

            if (result.Payment is { } paid)
            {
                Console.Error.WriteLine($"coinop: paid {paid.Amount} sat");
            }

            Console.WriteLine(parse.GetValue(json)
                ? JsonSerializer.Serialize(result.View, WorkloadJsonContext.Default.WorkloadView)
                : $"{result.View.Id} paid until {result.View.PaidUntil:u}");
            return 0;
        });
        return command;
    }

    private static Command CreateList(WorkloadContext options)
    {
        var json = CliOptions.Json();
        var command = new Command("list", "List the workloads submitted from this --data directory, newest first") { json };
        command.SetAction(async (parse, ct) =>
        {
            using var client = options.Client(parse);
            var all = await client.GetAsync("api/workloads", WorkloadJsonContext.Default.WorkloadSummaryArray, ct);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(all, WorkloadJsonContext.Default.WorkloadSummaryArray));
                return 0;
            }

            // Plain columns, whole ids: a list is for copying ids from and for scripts.
            Console.WriteLine($"{"ID",-32}  {"STATE",-12}  {"PROVIDER",-21}  {"EPOCH",5}  COMMAND");
            foreach (var w in all)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{w.Id,-32}  {WireEnum.Name(w.State),-12}  {w.Provider ?? "-",-21}  {w.Epoch,5}  {w.Command}"));
            }

            return 0;
        });
        return command;
    }

    internal static Argument<string> IdArgument() => new("id") { Description = "The workload id (printed by submit)" };
}

/// <summary>What <c>GET /api/payments/info</c> tells a paying client: the mints whose ecash the market takes.</summary>
internal sealed record PaymentsInfo(IReadOnlyList<string> Mints);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, UseStringEnumConverter = true)]
[JsonSerializable(typeof(PaymentsInfo))]
[JsonSerializable(typeof(JsonObjectEnd))]
[JsonSerializable(typeof(AccessJson))]
internal sealed partial class WorkloadCliJson : JsonSerializerContext;
