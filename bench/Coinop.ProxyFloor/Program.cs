using Coinop.ProxyFloor;

// Usage: Coinop.ProxyFloor yarp --urls URL --upstream URL [--io-queues N] (a minimal YARP reverse proxy; N sets
//                                                                          Kestrel's IOQueueCount, 0 as the market)
//        Coinop.ProxyFloor kestrel --urls URL --answers-from URL (a bare Kestrel endpoint answering what the
//                                                                  simulator at URL answered once at start)
// The floor under one .NET hop on this machine, for bench/throughput.sh: what Kestrel alone spends on one HTTP
// exchange, and what Microsoft's own reverse proxy spends forwarding one.
string? Find(string name) => Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
string Get(string name) => Find(name) ?? throw new ArgumentException($"missing {name}");

switch (args.FirstOrDefault())
{
    case "yarp":
        await YarpHop.Build(Get("--urls"), Get("--upstream"), Find("--io-queues") is { } q ? int.Parse(q, System.Globalization.CultureInfo.InvariantCulture) : null).RunAsync();
        return 0;
    case "kestrel":
        var answers = await SimAnswers.CaptureAsync(new Uri(Get("--answers-from")));
        await KestrelEndpoint.Build(Get("--urls"), answers).RunAsync();
        return 0;
    default:
        await Console.Error.WriteLineAsync("usage: Coinop.ProxyFloor yarp --urls URL --upstream URL | kestrel --urls URL --answers-from URL");
        return 2;
}
