using System.Diagnostics;
using BenchmarkDotNet.Running;
using Coinop.Bench;

// `cpu` measures the mint's elliptic-curve operations per CPU-second of one thread: unlike wall time, it stays
// meaningful on a machine busy with other work. Anything else goes to BenchmarkDotNet.
if (args is ["cpu", ..])
{
    var bench = new ProofVerificationBenchmarks();
    bench.Setup();
    // Proof verification now (k·Y in constant time) and as it was before (k·Y by libsecp256k1's variable-time
    // pubkey_tweak_mul), interleaved round by round (order alternating) so a machine whose speed drifts affects both alike.
    var rounds = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 6;
    var (now, before) = (new List<double>(), new List<double>());
    // Both variants run untimed first, long enough for tiered JIT to reach its optimized code (a first round measured
    // while the hot loops were still tier 0 came out 8% low, whichever variant went first).
    var warm = Stopwatch.StartNew();
    while (warm.Elapsed < TimeSpan.FromSeconds(2))
    {
        bench.VerifyProof();
        bench.VerifyProofBefore();
    }

    for (var round = 0; round < rounds; round++)
    {
        var first = round % 2 == 0;
        if (first)
        {
            now.Add(Measure("verify a proof: now", 20_000, () => bench.VerifyProof() ? 0 : throw new InvalidOperationException("a valid proof did not verify")));
        }

        before.Add(Measure("verify a proof: before", 20_000, () => bench.VerifyProofBefore() ? 0 : throw new InvalidOperationException("a valid proof did not verify")));
        if (!first)
        {
            now.Add(Measure("verify a proof: now", 20_000, () => bench.VerifyProof() ? 0 : throw new InvalidOperationException("a valid proof did not verify")));
        }
    }

    static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2) / 2 + values.Order().ElementAt((values.Count - 1) / 2) / 2;
    Console.WriteLine($"verify a proof, per CPU-second over {rounds} rounds: now median {Median(now):N0} ({now.Min():N0}-{now.Max():N0}), " +
        $"before median {Median(before):N0} ({before.Min():N0}-{before.Max():N0}); now/before per round {string.Join(", ", now.Zip(before, (a, b) => (a / b).ToString("0.000", System.Globalization.CultureInfo.InvariantCulture)))}");

    Measure("verify a proof: BouncyCastle (before libsecp256k1)", 10_000, () => bench.Comparison.BouncyCastleVerify() ? 0 : throw new InvalidOperationException("a valid proof did not verify"));
    Measure("verify a proof: NBitcoin.Secp256k1 (managed)", 10_000, () => bench.Comparison.ManagedVerify() ? 0 : throw new InvalidOperationException("a valid proof did not verify"));

    // Where a verification's time goes: libsecp256k1's multiplication, the square roots of hash_to_curve, SHA-256.
    var lib = new Secp256k1Net.Secp256k1();
    var point = Coinop.Ecash.Crypto.Secp256k1.Compressed(Coinop.Ecash.Crypto.Bdhke.HashToCurve("coinop"));
    var (native, product, key, block, digest) = (new byte[64], new byte[64], new byte[32], new byte[36], new byte[32]);
    key[0] = 0x5a;
    key[31] = 7;
    Measure("  of which one point parse (a square root; hash_to_curve needs one, CurveX rules out the rest)", 50_000, () => lib.EcPubkeyParse(native, point));
    var y = Coinop.Ecash.Crypto.Bdhke.HashToCurve("coinop");
    Secp256k1Net.EcdhHashFunction keepX = (output, x, _, _) =>
    {
        x.CopyTo(output);
        return 1;
    };
    Measure("  of which k·Y in constant time (secp256k1_ecdh, called directly: what the mint does)", 20_000, () => Coinop.Ecash.Crypto.NativeEcdh.Multiply(y.Native, key, product));
    Measure("  k·Y in constant time through Secp256k1.Net's Ecdh and its delegate", 20_000, () => lib.Ecdh(digest, y.Native, key, keepX, IntPtr.Zero));
    Measure("  k·Y in variable time (pubkey_tweak_mul, before)", 20_000, () =>
    {
        native.CopyTo(product, 0);
        return lib.EcPubkeyTweakMul(product, key);
    });
    Measure("  of which one SHA-256 of 36 bytes (hash_to_curve needs three on average)", 200_000, () =>
    {
        System.Security.Cryptography.SHA256.HashData(block, digest);
        return 0;
    });
    for (var round = 0; round < 4; round++)
    {
        if (round % 2 == 0)
        {
            Measure("hash_to_curve alone", 20_000, () => bench.HashToCurve());
        }

        Measure("hash_to_curve as before (SHA256.HashData for every hash)", 20_000, () => bench.HashToCurveBefore());
        if (round % 2 == 1)
        {
            Measure("hash_to_curve alone", 20_000, () => bench.HashToCurve());
        }
    }

    for (var round = 0; round < 2; round++)
    {
        Measure("sign an output with its DLEQ proof", 5_000, () => bench.SignWithDleq());
        Measure("sign an output with its DLEQ proof, as before (k·B_ in variable time)", 5_000, () => bench.SignWithDleqBefore());
        Measure("make a proof of change for the mint itself", 5_000, () => bench.IssueToSelf());
        Measure("make a proof of change for the mint itself, as before (two variable-time k·P)", 5_000, () => bench.IssueToSelfBefore());
    }

    Measure("the same by blind, sign, unblind", 5_000, () => bench.IssueByRoundTrip());
    return;
}

static double Measure(string name, int count, Func<object> operation)
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
    return count / seconds;
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

// `ledger [ROUNDS] [REQUESTS] [PRELOAD] [PACE_MS]`: a balance-key request's two store transactions in process, schema and
// checkpointing before and after, side by side (LedgerStoreLoad).
if (args is ["ledger", ..])
{
    int Arg(int i, int fallback) => args.Length > i ? int.Parse(args[i], System.Globalization.CultureInfo.InvariantCulture) : fallback;
    await LedgerStoreLoad.RunAsync(Arg(1, 5), Arg(2, 3000), Arg(3, 5000), Arg(4, 0));
    return;
}

// `payment-parsing [ROUNDS]`: decoding an X-Cashu token and naming a balance key's account, per call (PaymentParsing).
if (args is ["payment-parsing", ..])
{
    PaymentParsing.Run(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 3);
    return;
}

// `ledger-postgres [ROUNDS] [REQUESTS] [PACE_MS]`: a balance-key request's two store transactions on PostgreSQL, the
// accounts changed one statement each (before) and in one statement (after), taking turns (LedgerPostgresLoad).
if (args is ["ledger-postgres", ..])
{
    int Arg(int i, int fallback) => args.Length > i ? int.Parse(args[i], System.Globalization.CultureInfo.InvariantCulture) : fallback;
    await LedgerPostgresLoad.RunAsync(Arg(1, 3), Arg(2, 500), Arg(3, 0));
    return;
}

// `account-statements [ROUNDS] [COUNT] [PACE_MS]`: a settle's five account changes as one statement or five (AccountStatementCost).
if (args is ["account-statements", ..])
{
    AccountStatementCost.Run(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 5,
        args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 5000,
        args.Length > 3 ? int.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture) : 0);
    return;
}

// `sqlite-transaction [ROUNDS] [COUNT]`: the fixed cost of one SQLite write transaction (SqliteTransactionCost).
if (args is ["sqlite-transaction", ..])
{
    int Arg(int i, int fallback) => args.Length > i ? int.Parse(args[i], System.Globalization.CultureInfo.InvariantCulture) : fallback;
    SqliteTransactionCost.Run(Arg(1, 5), Arg(2, 5000));
    return;
}

// `providers URL PID [COUNT] [IDLE_SECONDS] [SOURCES]`: idle providers linked to a market process (bench/providers.sh).
if (args is ["providers", var marketUrl, var marketPid, ..])
{
    int Arg(int i, int fallback) => args.Length > i ? int.Parse(args[i], System.Globalization.CultureInfo.InvariantCulture) : fallback;
    await ProviderScaleLoad.RunAsync(marketUrl, int.Parse(marketPid, System.Globalization.CultureInfo.InvariantCulture), Arg(3, 10_000), Arg(4, 60), Arg(5, 4));
    return;
}

// `verify-loop SECONDS`: only the mint's proof verification, in a loop (for perf record).
if (args is ["verify-loop", var loopSeconds])
{
    var bench = new ProofVerificationBenchmarks();
    bench.Setup();
    var until = Stopwatch.StartNew();
    long n = 0;
    while (until.Elapsed.TotalSeconds < double.Parse(loopSeconds, System.Globalization.CultureInfo.InvariantCulture))
    {
        for (var i = 0; i < 1000; i++)
        {
            _ = bench.VerifyProof() ? 0 : throw new InvalidOperationException("a valid proof did not verify");
        }

        n += 1000;
    }

    Console.WriteLine($"{n / until.Elapsed.TotalSeconds:N0} per wall-second");
    return;
}

// `router [PROVIDERS]`: one routing decision over that many linked providers, in process.
if (args is ["router", ..])
{
    RouterBenchmark.Run(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 10_000);
    return;
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
