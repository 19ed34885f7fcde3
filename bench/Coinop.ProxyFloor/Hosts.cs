using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;

namespace Coinop.ProxyFloor;

/// <summary>The host both modes share, set up as Coinop's hosts are (slim builder, no config reload, no Server header).</summary>
internal static class Hosts
{
    /// <param name="ioQueues">Kestrel's socket I/O queues; null keeps its default (one per core), 0 hands socket
    /// completions straight to the thread pool as the market does.</param>
    public static WebApplicationBuilder Builder(string urls, int? ioQueues = null)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = ["--hostBuilder:reloadConfigOnChange=false"] });
        builder.WebHost.UseUrls(urls.Split(';', StringSplitOptions.RemoveEmptyEntries));
        builder.WebHost.ConfigureKestrel(k => k.AddServerHeader = false);
        if (ioQueues is { } queues)
        {
            builder.WebHost.UseSockets(o => o.IOQueueCount = queues);
        }

        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        return builder;
    }
}
