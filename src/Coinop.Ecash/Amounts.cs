using System.Numerics;

namespace Coinop.Ecash;

/// <summary>
/// Ecash amounts: every note is a power of two up to 2^63, so any amount up to 2^64-1 splits into at most 64
/// notes. Sums are computed without overflow (a bag of 2^63 notes exceeds ulong) and fees per NUT-02.
/// </summary>
public static class Amounts
{
    /// <summary>The largest note value a keyset has.</summary>
    public const ulong MaxNote = 1UL << 63;

    public static bool IsPowerOfTwo(ulong amount) => BitOperations.IsPow2(amount);

    /// <summary>Splits <paramref name="amount"/> into its powers of two, ascending (the order NUT-03 recommends).</summary>
    public static List<ulong> Split(ulong amount)
    {
        var parts = new List<ulong>(BitOperations.PopCount(amount));
        for (var bit = 0; bit < 64; bit++)
        {
            var v = 1UL << bit;
            if ((amount & v) != 0)
            {
                parts.Add(v);
            }
        }

        return parts;
    }

    /// <summary>Sums amounts; false when the total does not fit in 64 bits.</summary>
    public static bool TrySum(IEnumerable<ulong> amounts, out ulong sum)
    {
        UInt128 total = 0;
        foreach (var a in amounts)
        {
            total += a;
            if (total > ulong.MaxValue)
            {
                sum = 0;
                return false;
            }
        }

        sum = (ulong)total;
        return true;
    }

    /// <summary>NUT-02 input fee: the per-input fees in parts per thousand, summed, rounded up to whole units.</summary>
    public static ulong InputFee(IEnumerable<ulong> perInputFeePpk)
    {
        UInt128 ppk = 0;
        foreach (var f in perInputFeePpk)
        {
            ppk += f; // at most 2^64 inputs of 2^64 ppk each: UInt128 cannot overflow
        }

        var fee = (ppk + 999) / 1000;
        return fee > ulong.MaxValue ? ulong.MaxValue : (ulong)fee; // an unpayable fee, never a wrapped-around one
    }
}
