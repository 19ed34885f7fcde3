using System.Diagnostics;
using BenchmarkDotNet.Running;
using Coinop.Bench;

// `cpu` measures the mint's elliptic-curve operations per CPU-second of one thread: unlike wall time, it stays
// meaningful on a machine busy with other work. Anything else goes to BenchmarkDotNet.
if (args is ["cpu", ..])
{
    var bench = new ProofVerificationBenchmarks();
    bench.Setup();
    // Side by side, interleaved twice so a machine whose speed drifts affects all three alike.
    for (var round = 0; round < 2; round++)
    {
        Measure("verify a proof: libsecp256k1 (Secp256k1.Net, what Coinop uses)", 20_000, () => bench.VerifyProof() ? 0 : throw new InvalidOperationException("a valid proof did not verify"));
        Measure("verify a proof: BouncyCastle (before)", 10_000, () => bench.Comparison.BouncyCastleVerify() ? 0 : throw new InvalidOperationException("a valid proof did not verify"));
        Measure("verify a proof: NBitcoin.Secp256k1 (managed)", 10_000, () => bench.Comparison.ManagedVerify() ? 0 : throw new InvalidOperationException("a valid proof did not verify"));
    }

    Measure("hash_to_curve alone", 20_000, () => bench.HashToCurve());
    Measure("sign an output with its DLEQ proof", 5_000, () => bench.SignWithDleq());
    Measure("make a proof of change for the mint itself", 5_000, () => bench.IssueToSelf());
    Measure("the same by blind, sign, unblind", 5_000, () => bench.IssueByRoundTrip());
    return;
}

static void Measure(string name, int count, Func<object> operation)
{
    for (var i = 0; i < count / 10 + 500; i++)
    {
        operation(); // warm up (tiered JIT)
    }

    using var process = Process.GetCurrentProcess();
    var cpu = process.TotalProcessorTime;
    var wall = Stopwatch.StartNew();
    for (var i = 0; i < count; i++)
    {
        operation();
    }

    process.Refresh();
    var seconds = (process.TotalProcessorTime - cpu).TotalSeconds;
    Console.WriteLine($"{name}: {count / seconds:N0} per CPU-second ({seconds * 1e6 / count:N1} µs CPU each; wall {wall.Elapsed.TotalSeconds:N2} s for {count:N0})");
}

// `translation` measures the CPU a request's translation costs, side by side with the pass-through it replaces.
if (args is ["translation", ..])
{
    var t = new TranslationBenchmarks();
    t.Setup();
    Measure("request: OpenAI chat, passed through (baseline)", 20_000, () => t.ChatRequest());
    Measure("request: Anthropic Messages -> chat", 20_000, () => t.AnthropicRequest());
    Measure("request: Responses -> chat", 20_000, () => t.ResponsesRequest());
    Measure("count_tokens (gpt-4o, exact)", 20_000, () => t.CountTokens());
    Measure("answer, whole: chat passed through (baseline)", 20_000, () => t.ChatAnswer());
    Measure("answer, whole: chat -> Anthropic message", 20_000, () => t.AnthropicAnswer());
    Measure("answer, whole: chat -> Responses response", 20_000, () => t.ResponsesAnswer());
    Measure($"answer, {t.StreamChunks}-chunk stream: chat passed through (baseline)", 2_000, () => t.ChatStream());
    Measure($"answer, {t.StreamChunks}-chunk stream: chat -> Anthropic events", 2_000, () => t.AnthropicStream());
    Measure($"answer, {t.StreamChunks}-chunk stream: chat -> Responses events", 2_000, () => t.ResponsesStream());
    return;
}

// `workload-heartbeat [PROVIDERS] [COPIES] [SECONDS]` measures what one workload heartbeat costs the market.
if (args is ["workload-heartbeat", ..])
{
    int Arg(int i, int fallback) => args.Length > i ? int.Parse(args[i], System.Globalization.CultureInfo.InvariantCulture) : fallback;
    await WorkloadHeartbeatLoad.RunAsync(Arg(1, 10), Arg(2, 100), Arg(3, 20));
    return;
}

// `providers URL PID [COUNT] [IDLE_SECONDS] [SOURCES]`: idle providers linked to a market process (bench/providers.sh).
if (args is ["providers", var marketUrl, var marketPid, ..])
{
    int Arg(int i, int fallback) => args.Length > i ? int.Parse(args[i], System.Globalization.CultureInfo.InvariantCulture) : fallback;
    await ProviderScaleLoad.RunAsync(marketUrl, int.Parse(marketPid, System.Globalization.CultureInfo.InvariantCulture), Arg(3, 10_000), Arg(4, 60), Arg(5, 4));
    return;
}

// `router [PROVIDERS]`: one routing decision over that many linked providers, in process.
if (args is ["router", ..])
{
    RouterBenchmark.Run(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 10_000);
    return;
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
