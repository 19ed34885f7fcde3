using System.Numerics;

namespace Coinop.Ecash;

/// <summary>
/// Notes to hold a payment in so that any whole amount of change up to the total can be handed back from them without
/// asking the mint again: 1, 2, 4 … 2^(k−1) (the largest k with 2^k − 1 ≤ total) and the rest in powers of two. For a
/// change c ≤ 2^k − 1 the bits of c are there; for a larger c, all of the rest (less than 2^k) and the bits of c − rest.
/// Costs about twice the notes of <see cref="Amounts.Split"/>. A mint that is down when the change is due does not matter.
/// </summary>
public static class ChangeSplit
{
    /// <summary>The notes, ascending: any amount from 0 to <paramref name="total"/> is the sum of some of them.</summary>
    public static List<ulong> Split(ulong total)
    {
        if (total == 0)
        {
            return [];
        }

        // 2^k ≤ total + 1 (for total = 2^64 − 1, k = 63 and the rest is 2^63: still at most 2^k, which is all the proof needs).
        var k = 63 - BitOperations.LeadingZeroCount(total == ulong.MaxValue ? total : total + 1);
        var ladder = (1UL << k) - 1;
        var notes = new List<ulong>();
        for (var bit = 0; bit < k; bit++)
        {
            notes.Add(1UL << bit);
        }

        notes.AddRange(Amounts.Split(total - ladder));
        notes.Sort();
        return notes;
    }

    /// <summary>
    /// Chooses notes (powers of two) summing exactly to <paramref name="target"/>: the indexes of the chosen ones, or null
    /// when no choice does. Largest first: with powers of two (each divides the next) this finds a choice whenever one exists.
    /// </summary>
    public static List<int>? Pick(IReadOnlyList<ulong> notes, ulong target)
    {
        var order = Enumerable.Range(0, notes.Count).Where(i => notes[i] > 0 && Amounts.IsPowerOfTwo(notes[i])).OrderByDescending(i => notes[i]).ToList();
        var chosen = new List<int>();
        var left = target;
        foreach (var i in order)
        {
            if (left == 0)
            {
                break;
            }

            if (notes[i] <= left)
            {
                chosen.Add(i);
                left -= notes[i];
            }
        }

        return left == 0 ? chosen : null;
    }
}
