using System.CommandLine;
using System.Text.Json;
using Coinop.Cli.Shared;
using Coinop.Market.Workloads;

namespace Coinop.Cli.Workloads;

/// <summary><c>coinop workload logs</c>: a workload's output as its copies wrote it, once or following it to the end.</summary>
internal static class WorkloadLogs
{
    public static Command Create(WorkloadContext options)
    {
        var id = WorkloadCommands.IdArgument();
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
}

/// <summary>The last line of <c>workload logs --json --follow</c>: how the workload ended.</summary>
internal sealed record JsonObjectEnd(LogEndView End);
