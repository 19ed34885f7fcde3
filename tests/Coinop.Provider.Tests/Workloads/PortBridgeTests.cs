using System.Net;
using System.Net.Sockets;
using System.Text;
using Coinop.Provider.Workloads.Bridge;
using Coinop.Provider.Workloads.Sandboxes;
using Coinop.TestKit;
using Microsoft.Extensions.Logging.Abstractions;

namespace Coinop.Provider.Tests.Workloads;

public class PortBridgeTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("bubblewrap", "cgroup")]
    [InlineData("bubblewrap", "approximate")]
    [InlineData("process", "cgroup")]
    public async Task Bytes_round_trip_with_the_credential_and_are_counted(string kind, string limits)
    {
        var sandbox = await Sandboxes.CreateAsync(kind, limits);
        using var dir = new TempDirectory();
        // Inside bubblewrap the workload has its own loopback, so any port will do; a plain process shares the host's.
        var port = kind == "bubblewrap" ? 7070 : Ports.GetFree();
        // Without a cgroup the memory limit is RLIMIT_AS, which counts the .NET runtime's address-space reservations
        // (thread stacks, code heaps), not just what it uses: the echo program needs a generous one.
        var spec = Sandboxes.Spec(Probe.DotnetHost, [], memoryMb: 4096, port: port);
        var launch = await Sandboxes.LaunchAsync(sandbox, dir, spec);
        Probe.StageInto(launch.Folders.Work);
        var probeDll = kind == "bubblewrap" ? "/work/probe/coinop-workload-probe.dll" : Path.Combine(launch.Folders.Work, "probe", "coinop-workload-probe.dll");
        // A small heap keeps the GC's reservation within that limit too.
        spec = spec with { Args = [probeDll, "echo", port.ToString(System.Globalization.CultureInfo.InvariantCulture)], Env = new Dictionary<string, string> { ["DOTNET_GCHeapHardLimit"] = "0x4000000" } };
        await using var copy = await sandbox.StartAsync(launch with { Spec = spec }, Ct);
        await WaitForOutputAsync(copy, "listening");

        await using var bridge = PortBridge.Start(new IPEndPoint(IPAddress.Loopback, 0), spec.AccessCredential!, copy.ConnectToPortAsync, TimeSpan.FromSeconds(5), NullLogger.Instance);

        Assert.Equal("hello bridge", await ExchangeAsync(bridge.Port, PortBridge.Preamble(spec.AccessCredential!), "hello bridge"));
        Assert.Equal(12, bridge.BytesIn);
        Assert.Equal(12, bridge.BytesOut);

        Assert.Equal("", await ExchangeAsync(bridge.Port, PortBridge.Preamble("wrong"), "let me in"));
        Assert.Equal("", await ExchangeAsync(bridge.Port, [], "no preamble at all\n"));
        Assert.Equal(24, bridge.TotalBytes);
    }

    /// <summary>Sends the preamble and a message, half-closes, and returns everything the bridge sent back.</summary>
    private static async Task<string> ExchangeAsync(int port, byte[] preamble, string message)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port, Ct);
        var stream = client.GetStream();
        try
        {
            await stream.WriteAsync(preamble.Concat(Encoding.UTF8.GetBytes(message)).ToArray(), Ct);
            client.Client.Shutdown(SocketShutdown.Send);
            using var reader = new StreamReader(stream);
            return await reader.ReadToEndAsync(Ct).WaitAsync(TimeSpan.FromSeconds(30), Ct);
        }
        catch (IOException)
        {
            // Refused: the bridge closed (or reset) the connection.
            return "";
        }
    }

    private static async Task WaitForOutputAsync(IRunningCopy copy, string text)
    {
        var seen = new StringBuilder();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        await foreach (var chunk in copy.Output.ReadAllAsync(timeout.Token))
        {
            seen.Append(Encoding.UTF8.GetString(chunk.Data.Span));
            if (seen.ToString().Contains(text, StringComparison.Ordinal))
            {
                return;
            }
        }

        throw new Xunit.Sdk.XunitException($"the copy ended before printing '{text}': {seen}; exit {(await copy.Exited).ExitCode}");
    }
}
