using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Coinop.Cli.Shared;
using Coinop.Core.Sealing;
using Coinop.Core.Workloads;
using Coinop.Market.Workloads;

namespace Coinop.Cli.Workloads;

/// <summary>
/// <c>coinop workload verify ID</c> (or <c>--file STATUS.json</c>, offline): checks a workload's usage records and access
/// receipts without trusting the market (see <see cref="UsageAudit"/>), prints each copy's usage and the totals against what
/// was charged, and exits non-zero on any mismatch.
/// </summary>
internal static class WorkloadVerify
{
    public static Command Create(Option<string> market, Option<string> data)
    {
        var id = new Argument<string?>("id") { Description = "The workload to verify (its status is read from the market)", Arity = ArgumentArity.ZeroOrOne };
        var file = new Option<string?>("--file") { Description = "Verify a saved status instead (the output of 'workload status --json'); needs no market" };
        var command = new Command("verify", "Check every usage record's signature and windows and every access receipt; totals against what was charged") { id, file };
        command.SetAction(async (parse, ct) =>
        {
            var view = parse.GetValue(file) is { } path
                ? ReadFile(path)
                : await FetchAsync(parse.GetValue(market), parse.GetValue(data)!, parse.GetValue(id) ?? throw new CliException("name the workload (ID) or pass --file STATUS.json"), ct);
            if (parse.GetValue(id) is { } wanted && wanted != view.Id)
            {
                throw new CliException($"the status is of workload {view.Id}, not {wanted}");
            }

            var result = Audit(view, new ConsumerKeys(parse.GetValue(data)!));
            Print(view, result);
            if (!result.Ok)
            {
                await Console.Error.WriteLineAsync($"coinop: workload {view.Id}: {result.Mismatches.Count} mismatches");
                return 1;
            }

            return 0;
        });
        return command;
    }

    /// <summary>Opens the receipts with the consumer's key (when this data directory has one) and audits the evidence.</summary>
    private static UsageAuditResult Audit(WorkloadView view, ConsumerKeys keys)
    {
        var receipts = view.Receipts ?? (view.Access is { } access ? [access] : []);
        NSec.Cryptography.Key? consumer = null;
        if (receipts.Count > 0)
        {
            try
            {
                consumer = keys.Load();
            }
            catch (CliException)
            {
                // No key here: the receipts cannot be opened, which the audit reports for each one.
            }
        }

        using (consumer)
        {
            var relayed = receipts.Select(r => new RelayedReceipt(r.Epoch, r.Provider, consumer is null ? null : AccessReceipt.Open(consumer, r.Sealed))).ToList();
            var servedBy = view.History.Select(h => h.Provider).OfType<string>().ToHashSet(StringComparer.Ordinal);
            return UsageAudit.Check(view.Id, view.Usage, servedBy, relayed, new ChargedMoney(view.PaidMsat, view.SpentMsat, view.RateMsatPerSecond));
        }
    }

    private static void Print(WorkloadView view, UsageAuditResult result)
    {
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine($"workload {view.Id} ({Core.Text.WireEnum.Name(view.State)}): {view.Usage.Count} usage records, {result.ReceiptsChecked} access receipts");
        foreach (var c in result.Copies)
        {
            Console.WriteLine(string.Create(inv,
                $"  epoch {c.Epoch} on {c.ProviderId}: {c.Records} records, {DateTimeOffset.FromUnixTimeMilliseconds(c.WindowStart):HH:mm:ss.fff}–{DateTimeOffset.FromUnixTimeMilliseconds(c.WindowEnd):HH:mm:ss.fff}, " +
                $"{c.WallSeconds:0.###} s, {c.CpuCoreSeconds:0.###} core-s, {c.MemoryMibSeconds:0.#} MiB-s, {c.NetBytes} net bytes"));
        }

        Console.WriteLine(string.Create(inv,
            $"usage    {result.WallSeconds:0.###} s, {result.CpuCoreSeconds:0.###} core-s, {result.MemoryMibSeconds:0.#} MiB-s, {result.NetBytes} net bytes"));
        if (view.SpentMsat is { } spent && view.RateMsatPerSecond > 0)
        {
            Console.WriteLine(string.Create(inv,
                $"charged  {spent} msat of {view.PaidMsat} paid = {spent / view.RateMsatPerSecond:0.###} s at {view.RateMsatPerSecond:0.###} msat/s (settled to {view.SettledUntil:u})"));
        }
        else
        {
            Console.WriteLine("charged  nothing (a free market)");
        }

        foreach (var mismatch in result.Mismatches)
        {
            Console.WriteLine("MISMATCH " + mismatch);
        }

        if (result.Ok)
        {
            Console.WriteLine("ok       every record and receipt verifies");
        }
    }

    private static WorkloadView ReadFile(string path)
    {
        try
        {
            var view = JsonSerializer.Deserialize(File.ReadAllBytes(path), WorkloadJsonContext.Default.WorkloadView);
            return view is { Id: not null, Usage: not null, History: not null }
                ? view
                : throw new CliException($"{path} is not a workload status (no id, usage or history)");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new CliException($"cannot read {path}: {ex.Message}");
        }
        catch (JsonException ex)
        {
            throw new CliException($"{path} is not a workload status: {ex.Message}");
        }
    }

    private static async Task<WorkloadView> FetchAsync(string? market, string data, string id, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(market))
        {
            throw new CliException("--market is required (or verify a saved status with --file)");
        }

        // The market shows a workload only to its owner: the key kept in this data directory at submit.
        using var client = new WorkloadClient(market, new ConsumerKeys(data).LoadOrCreateOwnerKey());
        return await client.GetAsync("api/workloads/" + Uri.EscapeDataString(id), WorkloadJsonContext.Default.WorkloadView, ct);
    }
}
