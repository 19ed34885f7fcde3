using Coinop.Core.Routing;

namespace Coinop.Core.Tests.Routing;

public class PowerOfTwoChoicesTests
{
    [Fact]
    public void Picks_the_better_of_two_and_never_the_worst_of_three()
    {
        double[] scores = [5, 1, 9];
        var random = new Random(42);
        var picks = Enumerable.Range(0, 3000).Select(_ => PowerOfTwoChoices.PickIndex(3, i => scores[i], random)).ToList();
        Assert.DoesNotContain(2, picks); // the worst loses every pair it is in
        Assert.True(picks.Count(p => p == 1) > picks.Count(p => p == 0)); // the best wins every pair it is in
    }

    [Fact]
    public void Edge_counts()
    {
        Assert.Equal(-1, PowerOfTwoChoices.PickIndex(0, _ => 0, new Random(1)));
        Assert.Equal(0, PowerOfTwoChoices.PickIndex(1, _ => 0, new Random(1)));
    }

    [Fact]
    public void Price_weighs_in_relative_to_the_cheapest()
    {
        var cheap = PowerOfTwoChoices.Score(100, 0, blendedPrice: 1000, cheapestBlendedPrice: 1000);
        var dear = PowerOfTwoChoices.Score(100, 0, blendedPrice: 2000, cheapestBlendedPrice: 1000);
        Assert.Equal(2 * cheap, dear);
        Assert.Equal(cheap * 3, PowerOfTwoChoices.Score(100, 2, 1000, 1000));
    }
}
