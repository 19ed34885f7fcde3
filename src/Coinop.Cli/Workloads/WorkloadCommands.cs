using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization;
using Coinop.Cli.Shared;
using Coinop.Core.Identity;
using Coinop.Core.Sealing;
using Coinop.Core.Text;
using Coinop.Core.Workloads;
using Coinop.Market.Gateway;
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
    private const string Memo = "coinop workload";

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
        command.Subcommands.Add(CreateLogs(context));
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
                sealedKeys = await SealToProvidersAsync(client, id, checkpointKey, ct);
            }

            var request = new SubmitWorkloadRequest(words[0], words[1..], parse.GetValue(cpu), parse.GetValue(memory),
                (parse.GetValue(duration) ?? TimeSpan.FromHours(1)).TotalSeconds, parse.GetValue(port), parse.GetValue(restart)!.ToString(),
                parse.GetValue(standby), parse.GetValue(checkpointed), parse.GetValue(provider), sealToKey, sealedKeys, id.Length > 0 ? id : null,
                parse.GetValue(isolation));
            var (view, payment) = await PaidAsync(client, parse.GetValue(wallet)!, parse.GetValue(maxSat), HttpMethod.Post, "api/workloads",
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

    /// <summary>
    /// Sends a request that a paid market may answer with 402: then pays the payment request from the wallet and sends
    /// it again with the token (<paramref name="token"/>, when given, pays at once). A paid attempt that fails gets its
    /// ecash back into the wallet (the market's change, or reclaimed) before the error is raised.
    /// </summary>
    private static async Task<(WorkloadView View, MarketPayment? Payment)> PaidAsync(WorkloadClient client, string walletDir, ulong maxSat, HttpMethod method, string path,
        Func<HttpContent?> body, CancellationToken ct, MarketPayment? token = null)
    {
        using var mints = new HttpClient { Timeout = TimeSpan.FromMinutes(2) };
        var payment = token;
        var response = await client.SendRawAsync(method, path, body(), payment?.Token, null, ct);
        if (payment is null && response.StatusCode == HttpStatusCode.PaymentRequired)
        {
            payment = await MarketPayment.PayAsync(response, client.Http, walletDir, mints, Memo, maxSat, ct)
                ?? throw new CliException("the market asks for payment but names no amount");
            response.Dispose();
            response = await client.SendRawAsync(method, path, body(), payment.Token, null, ct);
        }

        using (response)
        {
            if (payment is null || response.IsSuccessStatusCode)
            {
                return (await WorkloadClient.ReadAsync(response, WorkloadJsonContext.Default.WorkloadView, ct), payment);
            }

            // Runs to the end even after Ctrl-C: the ecash is the consumer's money.
            var back = await payment.FinishAsync(MarketPayment.ChangeIn(response), completed: false, CancellationToken.None);
            Console.Error.WriteLine($"coinop: {back} of {payment.Amount} sat back into the wallet");
            return (await WorkloadClient.ReadAsync(response, WorkloadJsonContext.Default.WorkloadView, ct), payment);
        }
    }

    /// <summary>Takes a refund into the wallet and says what came back; a refund taken before is only reported.</summary>
    private static async Task ReceiveRefundAsync(WorkloadClient client, string walletDir, RefundView refund)
    {
        if (refund.Token is not { } token)
        {
            Console.WriteLine($"refund     {refund.RefundMsat} msat (less than a sat: nothing to give back)");
            return;
        }

        using var mints = new HttpClient { Timeout = TimeSpan.FromMinutes(2) };
        try
        {
            var sats = await MarketPayment.ReceiveAsync(token, walletDir, mints, client.Http, CancellationToken.None);
            Console.WriteLine($"refund     {refund.RefundMsat} msat: {sats} sat back into the wallet");
        }
        catch (CliException)
        {
            if (!await IsSpentAsync(mints, token))
            {
                throw;
            }

            Console.WriteLine($"refund     {refund.RefundMsat} msat (already taken)");
        }
    }

    private static async Task<bool> IsSpentAsync(HttpClient http, string token)
    {
        var decoded = Ecash.Tokens.TokenCodec.Decode(token);
        var mint = new Coinop.Ecash.MintClient.CashuMintClient(http, decoded.Mint);
        var states = await mint.CheckStateAsync([.. decoded.Proofs.Select(p => Convert.ToHexStringLower(Ecash.Crypto.Bdhke.Y(p.Secret)))], CancellationToken.None);
        return states.States.All(s => s.State == Ecash.MintApi.ProofState.Spent);
    }

    /// <summary>
    /// Seals the checkpoint key to every online provider offering workloads whose sealing key is bound to its identity
    /// (signature checked against the identity key, whose hash must be the provider id), so the market cannot slip in a
    /// key of its own; the market then places the workload only on these providers.
    /// </summary>
    private static async Task<Dictionary<string, string>> SealToProvidersAsync(WorkloadClient client, string workloadId, byte[] key, CancellationToken ct)
    {
        var providers = await client.GetAsync("api/providers", GatewayJsonContext.Default.ProviderViewArray, ct);
        var sealedKeys = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in providers)
        {
            if (p is not { Online: true, PublicKey: { } identity, Workloads: { SealingKey: { } sealing, SealingKeySignature: { } signature } })
            {
                continue;
            }

            var identityKey = Convert.FromBase64String(identity);
            var sealingKey = Convert.FromBase64String(sealing);
            if (identityKey.Length == 32 && ProviderAuth.ProviderIdFor(identityKey) == p.Id
                && ProviderSealingKey.VerifyBinding(identityKey, sealingKey, Convert.FromBase64String(signature)))
            {
                sealedKeys[p.Id] = Convert.ToBase64String(CheckpointKey.SealTo(sealingKey, workloadId, key));
            }
            else
            {
                Console.Error.WriteLine($"coinop: provider {p.Id} publishes a sealing key that is not bound to its identity; skipped");
            }
        }

        return sealedKeys.Count > 0 ? sealedKeys : throw new CliException("no online provider offers workloads with a verifiable sealing key");
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
                await ReceiveRefundAsync(client, parse.GetValue(options.Wallet)!, await WorkloadClient.ReadAsync(response, WorkloadJsonContext.Default.RefundView, ct));
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

    private static Command CreateLogs(WorkloadContext options)
    {
        var id = IdArgument();
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing output until the workload ends" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object per line: each piece of output with its seq, epoch, stream, time and base64 data, then {\"end\"...}" };
        var command = new Command("logs", "Print a workload's output (stdout and stderr, as the copies wrote them)") { id, follow, json };
        command.SetAction(async (parse, ct) =>
        {
            using var client = options.Client(parse);
            var path = "api/workloads/" + Uri.EscapeDataString(parse.GetValue(id)!) + "/logs";
            using var stdout = Console.OpenStandardOutput();
            using var stderr = Console.OpenStandardError();
            var asJson = parse.GetValue(json);
            Task Write(LogEntryView entry) => asJson ? WriteJsonLineAsync(entry, stdout, ct) : WriteAsync(entry, stdout, stderr, ct);
            if (parse.GetValue(follow))
            {
                await foreach (var (name, payload) in client.EventsAsync(path + "?follow=true", ct))
                {
                    if (name == "log" && JsonSerializer.Deserialize(payload, WorkloadJsonContext.Default.LogEntryView) is { } entry)
                    {
                        await Write(entry);
                    }
                    else if (name == "end")
                    {
                        if (asJson && JsonSerializer.Deserialize(payload, WorkloadJsonContext.Default.LogEndView) is { } end)
                        {
                            await stdout.WriteAsync(System.Text.Encoding.UTF8.GetBytes(
                                JsonSerializer.Serialize(new JsonObjectEnd(end), WorkloadCliJson.Default.JsonObjectEnd) + "\n"), ct);
                        }

                        return 0;
                    }
                }

                throw new CliException("the market ended the log stream early");
            }

            var after = 0L;
            while (true)
            {
                var page = await client.GetAsync($"{path}?after={after}", WorkloadJsonContext.Default.LogsView, ct);
                foreach (var entry in page.Entries)
                {
                    await Write(entry);
                }

                if (page.Entries.Count == 0)
                {
                    return 0;
                }

                after = page.Next;
            }
        });
        return command;
    }

    private static async Task WriteJsonLineAsync(LogEntryView entry, Stream stdout, CancellationToken ct)
    {
        await stdout.WriteAsync(JsonSerializer.SerializeToUtf8Bytes(entry, WorkloadJsonContext.Default.LogEntryView), ct);
        await stdout.WriteAsync("\n"u8.ToArray(), ct);
        await stdout.FlushAsync(ct);
    }

    private static async Task WriteAsync(LogEntryView entry, Stream stdout, Stream stderr, CancellationToken ct)
    {
        var target = entry.Stream == "stderr" ? stderr : stdout;
        await target.WriteAsync(Convert.FromBase64String(entry.Data), ct);
        await target.FlushAsync(ct);
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
                await ReceiveRefundAsync(client, parse.GetValue(options.Wallet)!, refund);
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
                var payment = await MarketPayment.PayAmountAsync(info.Mints, sats, client.Http, walletDir, mints, Memo, parse.GetValue(options.MaxSat), ct);
                result = await PaidAsync(client, walletDir, parse.GetValue(options.MaxSat), HttpMethod.Post, path, () => null, ct, payment);
            }
            else
            {
                var extra = parse.GetValue(duration) ?? TimeSpan.FromHours(1);
                result = await PaidAsync(client, walletDir, parse.GetValue(options.MaxSat), HttpMethod.Post, path,
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

    private static Argument<string> IdArgument() => new("id") { Description = "The workload id (printed by submit)" };

    /// <summary>The options every workload command reads.</summary>
    private sealed record WorkloadContext(Option<string> Market, Option<string> Data, Option<string> Wallet, Option<ulong> MaxSat)
    {
        /// <summary>A client of the market that carries this data directory's owner key.</summary>
        public WorkloadClient Client(ParseResult parse) =>
            new(parse.GetValue(Market)!, new ConsumerKeys(parse.GetValue(Data)!).LoadOrCreateOwnerKey());
    }

    private static bool IsX25519PublicKey(string text)
    {
        var bytes = new byte[text.Length];
        return Convert.TryFromBase64String(text, bytes, out var written) && written == SealedBox.PublicKeySize
            && PublicKey.TryImport(KeyAgreementAlgorithm.X25519, bytes.AsSpan(0, written), KeyBlobFormat.RawPublicKey, out _);
    }
}

/// <summary>What <c>GET /api/payments/info</c> tells a paying client: the mints whose ecash the market takes.</summary>
internal sealed record PaymentsInfo(IReadOnlyList<string> Mints);

/// <summary>The last line of <c>workload logs --json --follow</c>: how the workload ended.</summary>
internal sealed record JsonObjectEnd(LogEndView End);

/// <summary><c>workload access --json</c>: the opened receipt.</summary>
internal sealed record AccessJson(string Host, int Port, string Credential, DateTimeOffset ValidUntil, long Epoch, string Provider);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, UseStringEnumConverter = true)]
[JsonSerializable(typeof(PaymentsInfo))]
[JsonSerializable(typeof(JsonObjectEnd))]
[JsonSerializable(typeof(AccessJson))]
internal sealed partial class WorkloadCliJson : JsonSerializerContext;
