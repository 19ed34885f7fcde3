using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Coinop.Ecash;
using Coinop.Ecash.Tokens;
using Coinop.Market.Payments;

namespace Coinop.Bench;

/// <summary>
/// `payment-parsing [ROUNDS]`: the CPU-only steps of taking a payment, per call, in process: decoding an
/// <c>X-Cashu</c> token (V4, the shape the load test pays with) and keying it by its proofs, and naming an <c>sk-</c>
/// key's balance account (a SHA-256 of the key). What decoding a token once per request instead of twice saves, and
/// whether a balance key's account name is worth caching.
/// </summary>
public static class PaymentParsing
{
    public static void Run(int rounds)
    {
        var token = TokenCodec.EncodeV4(new Token("http://127.0.0.1:8080", "sat", [NewProof(4)]));
        var twoProofs = TokenCodec.EncodeV4(new Token("http://127.0.0.1:8080", "sat", [NewProof(1), NewProof(2)]));
        var key = PaymentKeys.NewApiKey();
        for (var round = 1; round <= rounds; round++)
        {
            Measure(round, $"token decode + key, 1 proof ({token.Length} chars)", 20_000, () => TokenCodec.TryDecode(token, out var t, out _) ? PaymentKeys.TokenKey(t!) : null);
            Measure(round, $"token decode + key, 2 proofs ({twoProofs.Length} chars)", 20_000, () => TokenCodec.TryDecode(twoProofs, out var t, out _) ? PaymentKeys.TokenKey(t!) : null);
            Measure(round, "sk- key's balance account (SHA-256)", 200_000, () => PaymentKeys.ApiKeyAccount(key));
        }
    }

    private static Proof NewProof(ulong amount) => new()
    {
        Amount = amount,
        Id = "00ad268c4d1f5826",
        Secret = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)),
        C = "02" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)),
        Dleq = new DleqProof
        {
            E = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)),
            S = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)),
            R = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)),
        },
    };

    private static void Measure(int round, string name, int count, Func<string?> step)
    {
        for (var i = 0; i < count / 10; i++)
        {
            _ = step() ?? throw new InvalidOperationException(name + " failed");
        }

        var started = Stopwatch.GetTimestamp();
        for (var i = 0; i < count; i++)
        {
            _ = step();
        }

        var us = Stopwatch.GetElapsedTime(started).TotalMicroseconds / count;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"round {round}: {name}: {us:0.00} µs a call"));
    }
}
