using System.CommandLine;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization;
using Coinop.Cli.Shared;
using Coinop.Core.Sealing;
using Coinop.Core.Text;
using Coinop.Core.Workloads;
using Coinop.Market.Workloads;
using NSec.Cryptography;

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
        command.Subcommands.Add(CreateSubmit(context));
        command.Subcommands.Add(CreateStatus(context));
        command.Subcommands.Add(WorkloadLogs.Create(context));
        command.Subcommands.Add(CreateCancel(context));
        command.Subcommands.Add(CreateTopUp(context));
        command.Subcommands.Add(CreateList(context));
        command.Subcommands.Add(CreateAccess(context));
        command.Subcommands.Add(WorkloadVerify.Create(market, data));
        return command;
    }

    private static Command CreateSubmit(WorkloadContext options)
    {
        var (market, data, wallet, maxSat) = options;
        var provider = new Option<string?>("--provider") { Description = "Run the primary on this provider: its id, or a name no other provider carries" };
        var standby = new Option<int>("--standby") { Description = "Warm standbys holding reserved capacity on other providers", DefaultValueFactory = _ => 0 };
        var restart = new Option<RestartPolicy>("--restart")
        {
            Description = "never, or on-failure:N (restart a copy that exits non-zero up to N times)",
            DefaultValueFactory = _ => RestartPolicy.Never,
            CustomParser = r =>
            {
                if (RestartPolicy.TryParse(r.Tokens[0].Value, out var policy, out var error))
                {
                    return policy;
                }

                r.AddError(error);
                return RestartPolicy.Never;
            },
        };
        var checkpointed = new Option<bool>("--checkpointed") { Description = "Upload the state directory ($COINOP_STATE_DIR) encrypted; a respawn restores it" };
        var cpu = new Option<double>("--cpu") { Description = "CPU cores", DefaultValueFactory = _ => 1 };
        var memory = new Option<long>("--memory") { Description = "Memory in MB", DefaultValueFactory = _ => 256 };
        var duration = CliOptions.Duration("--duration", "Paid duration; the market stops the workload when it runs out; default 1h");
        var port = new Option<int?>("--port") { Description = "The port the workload listens on at 127.0.0.1; reach it with 'coinop workload access'" };
        var sealTo = new Option<string?>("--seal-to") { Description = "X25519 public key (base64) access receipts are sealed to (default: this consumer's key)" };
        var isolation = new Option<string>("--isolation")
        {
            Description = "sandbox: only providers that isolate copies (bubblewrap or docker); none: also providers running plain processes",
            DefaultValueFactory = _ => "sandbox",
        };
        isolation.AcceptOnlyFromAmong("sandbox", "none");
        var commandLine = new Argument<string[]>("command") { Description = "The command and its arguments (after --)", Arity = ArgumentArity.OneOrMore };
        var wait = new Option<bool>("--wait") { Description = "Wait until the workload is live (or has ended), showing progress on a terminal" };
        var json = CliOptions.Json();
        var command = new Command("submit", "Run a command on a provider; prints the workload id last")
        {
            provider, standby, restart, checkpointed, cpu, memory, duration, port, sealTo, isolation, wait, json, commandLine,
        };
        command.SetAction(async (parse, ct) =>
        {
            var words = parse.GetValue(commandLine)!;
            var keys = new ConsumerKeys(parse.GetValue(data)!);
            string sealToKey;
            if (parse.GetValue(sealTo) is { } given)
            {
                sealToKey = IsX25519PublicKey(given) ? given : throw new CliException($"--seal-to '{given}' is not a base64 X25519 public key (32 bytes)", 2);
            }
            else
            {
                using var consumer = keys.LoadOrCreate();
                sealToKey = Convert.ToBase64String(SealedBox.ExportPublicKey(consumer));
            }

            using var client = new WorkloadClient(parse.GetValue(market)!, keys.LoadOrCreateOwnerKey());
            byte[]? checkpointKey = null;
            Dictionary<string, string>? sealedKeys = null;
            var id = "";
            if (parse.GetValue(checkpointed))
            {
                checkpointKey = CheckpointKey.Create();
                // The workload id is part of every sealed key's context, so the keys are sealed for an id chosen here.
                id = WorkloadIds.New();
                sealedKeys = await CheckpointSealing.SealToProvidersAsync(client, id, checkpointKey, ct);
            }

            var request = new SubmitWorkloadRequest(words[0], words[1..], parse.GetValue(cpu), parse.GetValue(memory),
                (parse.GetValue(duration) ?? TimeSpan.FromHours(1)).TotalSeconds, parse.GetValue(port), parse.GetValue(restart)!.ToString(),
                parse.GetValue(standby), parse.GetValue(checkpointed), parse.GetValue(provider), sealToKey, sealedKeys, id.Length > 0 ? id : null,
                parse.GetValue(isolation));
            var (view, payment) = await WorkloadPayments.PaidAsync(client, parse.GetValue(wallet)!, parse.GetValue(maxSat), HttpMethod.Post, "api/workloads",
                () => JsonContent.Create(request, WorkloadJsonContext.Default.SubmitWorkloadRequest), ct);
            if (checkpointKey is not null)
            {
                keys.SaveCheckpointKey(view.Id, checkpointKey);
            }

            if (payment is not null)
            {
                keys.SavePayer(view.Id, payment.Token);
                Console.Error.WriteLine($"coinop: paid {payment.Amount} sat");
            }

            if (parse.GetValue(wait))
            {
                view = await CliProgress.RunAsync($"Waiting for workload {view.Id} to go live...", parse.GetValue(json),
                    status => WaitLiveAsync(client, view, status, ct));
            }

            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(view, WorkloadJsonContext.Default.WorkloadView));
                return 0;
            }

            Console.WriteLine($"Submitted: {WireEnum.Name(view.State)} on {view.Provider}{(view.Standbys.Count > 0 ? $", standbys {string.Join(", ", view.Standbys)}" : "")}; " +
                $"{view.Spec.Replication}, restart {view.Spec.Restart}, paid until {view.PaidUntil:u}");
            Console.WriteLine(view.Id);
            return 0;
        });
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
            $"{valid.Sum(r => r.MemoryMibSeconds):0.#} MiB-s, {valid.Sum(r => r.NetBytes)} net bytes, {valid.Sum(r => r.WallSeconds):0.#} s"));
    }

    /// <summary>Polls the workload until it is live or has ended (a workload that cannot start ends, so this ends too).</summary>
    private static async Task<WorkloadView> WaitLiveAsync(WorkloadClient client, WorkloadView view, Action<string> status, CancellationToken ct)
    {
        var path = "api/workloads/" + Uri.EscapeDataString(view.Id);
        while (view.State is not (WorkloadState.Live or WorkloadState.Completed or WorkloadState.Failed or WorkloadState.Cancelled))
        {
            status($"Workload {view.Id}: {WireEnum.Name(view.State)}{(view.Provider is { } p ? " on " + p : "")}...");
            await Task.Delay(TimeSpan.FromMilliseconds(500), TimeProvider.System, ct);
            view = await client.GetAsync(path, WorkloadJsonContext.Default.WorkloadView, ct);
        }

        return view;
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
            if (r.GetValue(duration) is not null && r.GetValue(amount) is not null)
            {
                r.AddError("--duration and --amount exclude each other");
            }

            if (r.GetValue(amount) is 0)
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

    private static Command CreateAccess(WorkloadContext options)
    {
        var id = IdArgument();
        var json = CliOptions.Json();
        var command = new Command("access", "Open the workload's sealed access receipt: where its port is and the credential to present") { id, json };
        command.SetAction(async (parse, ct) =>
        {
            using var client = options.Client(parse);
            var workloadId = parse.GetValue(id)!;
            var access = await client.GetAsync("api/workloads/" + Uri.EscapeDataString(workloadId) + "/access", WorkloadJsonContext.Default.AccessView, ct);
            using var key = new ConsumerKeys(parse.GetValue(options.Data)!).Load();
            var receipt = AccessReceipt.Open(key, access.Sealed);
            if (receipt is null || receipt.WorkloadId != workloadId || receipt.Epoch != access.Epoch)
            {
                throw new CliException("the access receipt does not open with this consumer's key (is --data the one the workload was submitted with?)");
            }

            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new AccessJson(receipt.Host, receipt.Port, receipt.Credential,
                    DateTimeOffset.FromUnixTimeMilliseconds(receipt.ValidUntil), receipt.Epoch, access.Provider), WorkloadCliJson.Default.AccessJson));
                return 0;
            }

            Console.WriteLine($"host         {receipt.Host}");
            Console.WriteLine($"port         {receipt.Port}");
            Console.WriteLine($"credential   {receipt.Credential}");
            Console.WriteLine($"valid until  {DateTimeOffset.FromUnixTimeMilliseconds(receipt.ValidUntil):u}");
            Console.WriteLine($"epoch        {receipt.Epoch} (provider {access.Provider})");
            Console.WriteLine($"connect, then send the line: COINOP-ACCESS {receipt.Credential}");
            return 0;
        });
        return command;
    }

    internal static Argument<string> IdArgument() => new("id") { Description = "The workload id (printed by submit)" };

    private static bool IsX25519PublicKey(string text)
    {
        var bytes = new byte[text.Length];
        return Convert.TryFromBase64String(text, bytes, out var written) && written == SealedBox.PublicKeySize
            && PublicKey.TryImport(KeyAgreementAlgorithm.X25519, bytes.AsSpan(0, written), KeyBlobFormat.RawPublicKey, out _);
    }
}

/// <summary>What <c>GET /api/payments/info</c> tells a paying client: the mints whose ecash the market takes.</summary>
internal sealed record PaymentsInfo(IReadOnlyList<string> Mints);

/// <summary><c>workload access --json</c>: the opened receipt.</summary>
internal sealed record AccessJson(string Host, int Port, string Credential, DateTimeOffset ValidUntil, long Epoch, string Provider);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, UseStringEnumConverter = true)]
[JsonSerializable(typeof(PaymentsInfo))]
[JsonSerializable(typeof(JsonObjectEnd))]
[JsonSerializable(typeof(AccessJson))]
internal sealed partial class WorkloadCliJson : JsonSerializerContext;
