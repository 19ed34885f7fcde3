using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.DependencyInjection;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;

namespace Coinop.ProxyFloor;

/// <summary>
/// One YARP hop with its defaults (pooled keep-alive connections upstream, X-Forwarded-* headers added), every path
/// to one destination, the answer streamed through unbuffered.
/// </summary>
internal static class YarpHop
{
    public static WebApplication Build(string urls, string upstream, int? ioQueues)
    {
        var builder = Hosts.Builder(urls, ioQueues);
        // YARP's session affinity asks for a data protector at start; an in-memory one writes no keys to the home folder.
        builder.Services.AddDataProtection().UseEphemeralDataProtectionProvider();
        builder.Services.AddReverseProxy().LoadFromMemory(
            [new RouteConfig { RouteId = "all", ClusterId = "upstream", Match = new RouteMatch { Path = "{**path}" } }],
            [new ClusterConfig
            {
                ClusterId = "upstream",
                Destinations = new Dictionary<string, DestinationConfig> { ["upstream"] = new() { Address = upstream } },
                HttpRequest = new ForwarderRequestConfig { AllowResponseBuffering = false },
            }]);
        var app = builder.Build();
        app.MapReverseProxy();
        return app;
    }
}
