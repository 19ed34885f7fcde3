using System.Text;
using System.Text.Json;
using Coinop.Storage.Workloads;
using Microsoft.AspNetCore.Http;

namespace Coinop.Market.Workloads;

/// <summary>A workload's output for its owner: a page of it, or followed live as server-sent events.</summary>
public static class WorkloadLogsApi
{
    private const int LogPage = 500;

    /// <summary>
    /// The output so far (<c>?after=SEQ</c> to continue) as JSON, or followed as server-sent events (<c>?follow=true</c> or
    /// <c>Accept: text/event-stream</c>): one <c>log</c> event per chunk, then <c>end</c> once the workload is finished
    /// and everything it printed was sent.
    /// </summary>
    public static async Task LogsAsync(HttpContext http, string id, IWorkloadStore store, IWorkloadLogStore logs, WorkloadLogFeed feed)
    {
        var ct = http.RequestAborted;
        if (await WorkloadOwners.FindOwnedAsync(http, id, store) is not { } stored)
        {
            return;
        }

        var query = http.Request.Query;
        var after = 0L;
        if (query.TryGetValue("after", out var afterText) && !long.TryParse(afterText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out after))
        {
            await WorkloadsApi.BadRequest(http, "'after' must be a sequence number");
            return;
        }

        var follow = query.TryGetValue("follow", out var followText)
            ? string.Equals(followText, "true", StringComparison.OrdinalIgnoreCase) || followText == "1"
            : http.Request.Headers.Accept.Any(a => a?.Contains("text/event-stream", StringComparison.OrdinalIgnoreCase) == true);
        if (!follow)
        {
            var page = await logs.ReadAsync(id, after, LogPage, ct);
            await http.Response.WriteAsJsonAsync(new LogsView([.. page.Select(WorkloadViews.Entry)], page.Count > 0 ? page[^1].Seq : after, stored.Workload.State),
                WorkloadJsonContext.Default.LogsView, cancellationToken: ct);
            return;
        }

        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        await http.Response.Body.FlushAsync(ct);
        try
        {
            var flushed = false;
            while (true)
            {
                // Listen before reading, so output stored between the read and the wait still wakes us.
                var woken = feed.WaitAsync(id, ct);
                var finished = (await store.FindAsync(id, ct))!.Workload;
                if (finished.IsTerminal && !flushed)
                {
                    // Its last output may still be queued for the store: read only once that is stored.
                    await feed.FlushedAsync(ct);
                    flushed = true;
                }

                var page = await logs.ReadAsync(id, after, LogPage, ct);
                foreach (var entry in page)
                {
                    await WriteEventAsync(http, "log", JsonSerializer.Serialize(WorkloadViews.Entry(entry), WorkloadJsonContext.Default.LogEntryView), ct);
                    after = entry.Seq;
                }

                await http.Response.Body.FlushAsync(ct);
                if (page.Count == LogPage)
                {
                    continue;
                }

                if (finished.IsTerminal)
                {
                    feed.Signal(id); // nothing will wake this workload's followers again: drop the wait it set up
                    await WriteEventAsync(http, "end", JsonSerializer.Serialize(new LogEndView(finished.State, finished.Reason), WorkloadJsonContext.Default.LogEndView), ct);
                    await http.Response.Body.FlushAsync(ct);
                    return;
                }

                await woken;
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The consumer stopped following.
        }
    }

    private static async Task WriteEventAsync(HttpContext http, string name, string data, CancellationToken ct) =>
        await http.Response.Body.WriteAsync(Encoding.UTF8.GetBytes($"event: {name}\ndata: {data}\n\n"), ct);
}
