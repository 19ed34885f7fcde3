using System.CommandLine;
using System.Net.Http.Json;
using System.Text.Json;
using Coinop.Cli.Shared;
using Coinop.Core.Sealing;
using Coinop.Core.Text;
using Coinop.Core.Workloads;
using Coinop.Market.Workloads;
using NSec.Cryptography;

namespace Coinop.Cli.Workloads;

/// <summary>
/// <c>coinop workload submit</c>: the spec from its options, access receipts sealed to this consumer's X25519 key (or
/// <c>--seal-to</c>), a checkpointed workload's key sealed to the providers for an id chosen here, the payment, and
/// with <c>--wait</c> polling until the workload is live or has ended. The workload id is printed last.
/// </summary>
internal static class WorkloadSubmit
{
    public static Command Create(WorkloadContext options)
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

    private static bool IsX25519PublicKey(string text)
    {
        var bytes = new byte[text.Length];
        return Convert.TryFromBase64String(text, bytes, out var written) && written == SealedBox.PublicKeySize
            && PublicKey.TryImport(KeyAgreementAlgorithm.X25519, bytes.AsSpan(0, written), KeyBlobFormat.RawPublicKey, out _);
    }
}
