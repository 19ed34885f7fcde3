using System.Diagnostics;
using BenchmarkDotNet.Running;
using Coinop.Bench;

// `cpu` measures proof verifications per CPU-second of one thread: unlike wall time, it stays meaningful on a
// machine busy with other work. Anything else goes to BenchmarkDotNet.
if (args is ["cpu", ..])
{
    var bench = new ProofVerificationBenchmarks();
    bench.Setup();
    for (var i = 0; i < 2000; i++)
    {
        bench.VerifyProof(); // warm up (tiered JIT)
    }

    var process = Process.GetCurrentProcess();
    const int Count = 20_000;
    var cpu = process.TotalProcessorTime;
    var wall = Stopwatch.StartNew();
    for (var i = 0; i < Count; i++)
    {
        if (!bench.VerifyProof())
        {
            throw new InvalidOperationException("a valid proof did not verify");
        }
    }

    process.Refresh();
    var seconds = (process.TotalProcessorTime - cpu).TotalSeconds;
    Console.WriteLine($"{Count} proof verifications: {Count / seconds:N0} per CPU-second ({seconds * 1e6 / Count:N1} µs CPU each; wall {wall.Elapsed.TotalSeconds:N2} s)");
    return;
}

// `workload-heartbeat [PROVIDERS] [COPIES] [SECONDS]` measures what one workload heartbeat costs the market.
if (args is ["workload-heartbeat", ..])
{
    int Arg(int i, int fallback) => args.Length > i ? int.Parse(args[i], System.Globalization.CultureInfo.InvariantCulture) : fallback;
    await WorkloadHeartbeatLoad.RunAsync(Arg(1, 10), Arg(2, 100), Arg(3, 20));
    return;
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
