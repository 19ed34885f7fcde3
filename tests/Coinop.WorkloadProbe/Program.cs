using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Coinop.Provider.Workloads;
using Coinop.Provider.Workloads.Bridge;
using Coinop.Provider.Workloads.Limits;
using Coinop.Provider.Workloads.Sandboxes;
using Microsoft.Extensions.Logging.Abstractions;

return args switch
{
    ["agent", var kind, var dir] => await AgentAsync(kind, dir, Cgroups.Detect()),
    ["agent", var kind, var dir, "no-cgroups"] => await AgentAsync(kind, dir, Cgroups.None("no cgroups asked for")),
    ["echo", var port] => await EchoAsync(int.Parse(port, System.Globalization.CultureInfo.InvariantCulture)),
    ["bridge-attack", var dir, var target] => await BridgeAttackAsync(dir, target),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: coinop-workload-probe agent bubblewrap|process DIR [no-cgroups] | echo PORT | bridge-attack DIR HOST_SOCKET");
    return 2;
}

// Starts a long-running copy, prints every pid of it, then waits to be killed.
static async Task<int> AgentAsync(string kind, string dir, Cgroups cgroups)
{
    var options = new LocalSandboxOptions();
    var sandbox = kind == "bubblewrap"
        ? await LocalSandbox.CreateBubblewrapAsync(options, cgroups, TimeProvider.System, NullLogger.Instance, CancellationToken.None)
        : LocalSandbox.CreateProcess(options, cgroups, TimeProvider.System, NullLogger.Instance);
    var spec = new CopySpec("probe", 1, "sh", ["-c", "sleep 600 & echo started; wait"], new Dictionary<string, string>(), 1, 64);
    var folders = await sandbox.PrepareAsync(spec, Path.Combine(dir, "copy"), CancellationToken.None);
    var copy = await sandbox.StartAsync(new SandboxLaunch(spec, folders), CancellationToken.None);
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

// The agent side of the bridge attack, for running as an unprivileged user: a bubblewrap copy that swaps the bridge's
// socket for a link to TARGET and then serves an echo port; a client goes through the port bridge and prints the reply.
static async Task<int> BridgeAttackAsync(string dir, string target)
{
    const string Script = """
        S=/run/coinop-bridge/port.sock
        for i in $(seq 100); do [ -S "$S" ] && break; [ -d /run/coinop-bridge ] || break; sleep 0.1; done
        if rm -f "$S" 2>/dev/null && ln -s "$1" "$S" 2>/dev/null; then echo "swapped $S for a link to $1"; else echo "could not swap the bridge socket"; fi
        exec "$2" "$3" echo "$4"
        """;
    var sandbox = await LocalSandbox.CreateBubblewrapAsync(new LocalSandboxOptions(), Cgroups.Detect(), TimeProvider.System, NullLogger.Instance, CancellationToken.None);
    var spec = new CopySpec("attack", 1, "sh", [], new Dictionary<string, string> { ["DOTNET_GCHeapHardLimit"] = "0x4000000" }, 1, 4096, Port: 7070, AccessCredential: "cred-attack");
    await using var folders = await sandbox.PrepareAsync(spec, Path.Combine(dir, "copy"), CancellationToken.None);
    var stage = Directory.CreateDirectory(Path.Combine(folders.Work, "probe")).FullName;
    foreach (var file in Directory.EnumerateFiles(AppContext.BaseDirectory).Where(f => f.EndsWith(".dll", StringComparison.Ordinal) || f.EndsWith(".json", StringComparison.Ordinal)))
    {
        File.Copy(file, Path.Combine(stage, Path.GetFileName(file)));
    }

    var dotnet = Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", "..", "dotnet"));
    spec = spec with { Args = ["-c", Script, "attack", target, dotnet, "/work/probe/coinop-workload-probe.dll", "7070"] };
    await using var copy = await sandbox.StartAsync(new SandboxLaunch(spec, folders), CancellationToken.None);
    var seen = new StringBuilder();
    await foreach (var chunk in copy.Output.ReadAllAsync())
    {
        seen.Append(Encoding.UTF8.GetString(chunk.Data.Span));
        if (seen.ToString().Contains("listening", StringComparison.Ordinal))
        {
            break;
        }
    }

    Console.WriteLine(seen.ToString().Trim());
    await using var bridge = PortBridge.Start(new IPEndPoint(IPAddress.Loopback, 0), "cred-attack", copy.ConnectToPortAsync, TimeSpan.FromSeconds(5), NullLogger.Instance);
    using var client = new TcpClient();
    await client.ConnectAsync(IPAddress.Loopback, bridge.Port);
    var stream = client.GetStream();
    await stream.WriteAsync(PortBridge.Preamble("cred-attack").Concat("hello through the bridge"u8.ToArray()).ToArray());
    client.Client.Shutdown(SocketShutdown.Send);
    string reply;
    try
    {
        reply = await new StreamReader(stream).ReadToEndAsync();
    }
    catch (IOException)
    {
        reply = "";
    }

    Console.WriteLine("reply: " + reply);
    return 0;
}
