using System.CommandLine;
using System.Text.Json;
using Coinop.Cli.Shared;
using Coinop.Core.Sealing;
using Coinop.Market.Workloads;

namespace Coinop.Cli.Workloads;

/// <summary>
/// <c>coinop workload access</c>: opens the workload's access receipt with this consumer's key; the market only passes
/// it on sealed, so where the port is and the credential to present are known to the consumer alone.
/// </summary>
internal static class WorkloadAccess
{
    public static Command Create(WorkloadContext options)
    {
        var id = WorkloadCommands.IdArgument();
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
}

/// <summary><c>workload access --json</c>: the opened receipt.</summary>
internal sealed record AccessJson(string Host, int Port, string Credential, DateTimeOffset ValidUntil, long Epoch, string Provider);

