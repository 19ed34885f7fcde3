using CsCheck;

namespace Coinop.Ecash.Tests.Properties;

/// <summary>The notes a foreign payment is held in: any change up to the total comes from them, and the picker finds it.</summary>
public class ChangeSplitProperties
{
    [Fact]
    public void Any_change_up_to_the_total_is_a_choice_of_the_notes_and_the_notes_sum_to_the_total()
    {
        Gen.Select(Gen.ULong[1, 100_000_000], Gen.Double[0, 1]).Sample((total, fraction) =>
        {
            var notes = ChangeSplit.Split(total);
            Assert.Equal(total, notes.Aggregate(0UL, (s, n) => s + n));
            Assert.All(notes, n => Assert.True(Amounts.IsPowerOfTwo(n)));
            Assert.True(notes.Count <= 2 * 27 + 1); // about twice the notes of a plain split for 10^8 sat
            var change = (ulong)Math.Floor(total * fraction);
            var picked = ChangeSplit.Pick(notes, change);
            Assert.NotNull(picked);
            Assert.Equal(picked.Count, picked.Distinct().Count());
            Assert.Equal(change, picked.Aggregate(0UL, (s, i) => s + notes[i]));
        }, iter: 2000);
    }

    [Fact]
    public void Every_amount_of_small_totals_is_a_choice()
    {
        for (var total = 1UL; total <= 300; total++)
        {
            var notes = ChangeSplit.Split(total);
            for (var change = 0UL; change <= total; change++)
            {
                Assert.NotNull(ChangeSplit.Pick(notes, change));
            }
        }

        Assert.Equal(ulong.MaxValue, ChangeSplit.Split(ulong.MaxValue).Aggregate(0UL, (s, n) => s + n)); // no overflow at the edge
    }

    [Fact]
    public void The_picker_finds_a_choice_whenever_one_exists_among_any_powers_of_two()
    {
        // Against brute force over every subset: a stock partly handed out is any bag of powers of two.
        Gen.Select(Gen.Int[0, 6].Select(b => 1UL << b).List[0, 10], Gen.ULong[0, 130]).Sample((notes, target) =>
        {
            var exists = Enumerable.Range(0, 1 << notes.Count).Any(mask =>
                Enumerable.Range(0, notes.Count).Where(i => (mask & (1 << i)) != 0).Aggregate(0UL, (s, i) => s + notes[i]) == target);
            var picked = ChangeSplit.Pick(notes, target);
            Assert.Equal(exists, picked is not null);
            if (picked is not null)
            {
                Assert.Equal(target, picked.Aggregate(0UL, (s, i) => s + notes[i]));
                Assert.Equal(picked.Count, picked.Distinct().Count());
            }
        }, iter: 2000);
    }
}
