using System.Text;

namespace Coinop.SimBackend.Generation;

/// <summary>
/// The simulator's deterministic "model": output words are drawn from a fixed vocabulary by a generator seeded
/// with a hash of the model and prompt, so the same request always gets the same answer. Its tokenizer counts a
/// run of letters or digits as one token and any other visible character as one more, so an answer of N words
/// is exactly N tokens.
/// </summary>
public static class SimText
{
    private static readonly string[] Vocabulary =
    [
        "the", "market", "provider", "token", "answer", "simulated", "model", "quick", "brown", "fox",
        "jumps", "over", "lazy", "dog", "coin", "operated", "compute", "request", "stream", "window",
        "latency", "budget", "price", "sats", "lightning", "ecash", "mint", "proof", "ledger", "route",
        "choice", "power", "two", "random", "peak", "average", "drain", "deploy", "fence", "lease",
        "backend", "socket", "frame", "chunk", "heartbeat", "capacity", "queue", "deadline", "cancel", "retry",
        "is", "a", "of", "to", "and", "in", "for", "with", "on", "by",
        "this", "that", "every", "fast",
    ];

    // Each word as UTF-8 bytes, with and without the separating space, so streaming writes copy bytes only.
    private static readonly byte[][] First = [.. Vocabulary.Select(Encoding.UTF8.GetBytes)];
    private static readonly byte[][] Next = [.. Vocabulary.Select(w => Encoding.UTF8.GetBytes(" " + w))];

    /// <summary>A stable 64-bit FNV-1a hash of the model and prompt (string.GetHashCode is randomised per process).</summary>
    public static ulong Seed(string model, string prompt)
    {
        var hash = 14695981039346656037UL;
        foreach (var c in model)
        {
            hash = (hash ^ c) * 1099511628211UL;
        }

        hash = (hash ^ 0xFF) * 1099511628211UL;
        foreach (var c in prompt)
        {
            hash = (hash ^ c) * 1099511628211UL;
        }

        return hash;
    }

    /// <summary>How many tokens the simulator answers with when nothing fixes the length: 8 to 32.</summary>
    public static int NaturalLength(ulong seed) => 8 + (int)(Mix(seed) % 25);

    /// <summary>The UTF-8 bytes of output token <paramref name="index"/> (a leading space after the first).</summary>
    public static ReadOnlySpan<byte> Token(ulong seed, int index)
    {
        var word = (int)(Mix(seed + (ulong)index * 0x9E3779B97F4A7C15UL) >> 58);
        return index == 0 ? First[word] : Next[word];
    }

    /// <summary>Counts tokens the way the simulator's tokenizer does.</summary>
    public static int CountTokens(ReadOnlySpan<char> text)
    {
        var count = 0;
        var inWord = false;
        foreach (var c in text)
        {
            if (char.IsLetterOrDigit(c))
            {
                if (!inWord)
                {
                    count++;
                    inWord = true;
                }
            }
            else
            {
                inWord = false;
                if (!char.IsWhiteSpace(c))
                {
                    count++;
                }
            }
        }

        return count;
    }

    /// <summary>A deterministic unit vector for an input (embeddings).</summary>
    public static void Embedding(ulong seed, Span<float> vector)
    {
        double norm = 0;
        for (var i = 0; i < vector.Length; i++)
        {
            var v = (Mix(seed + (ulong)i * 0x9E3779B97F4A7C15UL) >> 11) * (1.0 / (1UL << 53)) * 2 - 1;
            vector[i] = (float)v;
            norm += v * v;
        }

        var scale = norm > 0 ? 1 / Math.Sqrt(norm) : 0;
        for (var i = 0; i < vector.Length; i++)
        {
            vector[i] = (float)(vector[i] * scale);
        }
    }

    /// <summary>SplitMix64's finaliser: spreads nearby seeds over the whole range.</summary>
    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
