using System.Net;
using System.Net.Sockets;
using Coinop.Provider.Workloads;
using Coinop.Provider.Workloads.Limits;
using Coinop.Provider.Workloads.Sandboxes;
using Microsoft.Extensions.Logging.Abstractions;

return args switch
{
    ["agent", var kind, var dir] => await AgentAsync(kind, dir),
    ["echo", var port] => await EchoAsync(int.Parse(port, System.Globalization.CultureInfo.InvariantCulture)),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: coinop-workload-probe agent bubblewrap|process DIR | echo PORT");
    return 2;
}

// Starts a long-running copy, prints every pid of it, then waits to be killed.
static async Task<int> AgentAsync(string kind, string dir)
{
    var options = new LocalSandboxOptions();
    var cgroups = Cgroups.Detect();
    var sandbox = kind == "bubblewrap"
        ? await LocalSandbox.CreateBubblewrapAsync(options, cgroups, TimeProvider.System, NullLogger.Instance, CancellationToken.None)
        : LocalSandbox.CreateProcess(options, cgroups, TimeProvider.System, NullLogger.Instance);
    var work = Directory.CreateDirectory(Path.Combine(dir, "work")).FullName;
    var spec = new CopySpec("probe", 1, "sh", ["-c", "sleep 600 & echo started; wait"], new Dictionary<string, string>(), 1, 64);
    var copy = await sandbox.StartAsync(new SandboxLaunch(spec, work, null, null), CancellationToken.None);
    await foreach (var chunk in copy.Output.ReadAllAsync())
    {
        if (System.Text.Encoding.UTF8.GetString(chunk.Data.Span).Contains("started", StringComparison.Ordinal))
        {
            break;
        }
    }

    Console.WriteLine("copy-pids: " + string.Join(' ', copy.LivePids()));
    await Task.Delay(Timeout.Infinite);
    return 0;
}

// Echoes every byte back on each connection to 127.0.0.1:PORT.
static async Task<int> EchoAsync(int port)
{
    var listener = new TcpListener(IPAddress.Loopback, port);
    listener.Start();
    Console.WriteLine("listening");
    while (true)
    {
        var client = await listener.AcceptTcpClientAsync();
        _ = Task.Run(async () =>
        {
            using (client)
            {
                var stream = client.GetStream();
                await stream.CopyToAsync(stream);
            }
        });
    }
}
