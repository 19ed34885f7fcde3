namespace Coinop.Core.Routing;

/// <summary>
/// Power-of-two-choices: sample two distinct candidates at random and keep the one with the lower score.
/// Close to best-of-all balance without herding every request onto the single "best" provider.
/// </summary>
public static class PowerOfTwoChoices
{
    public static int PickIndex(int count, Func<int, double> score, Random random)
    {
        switch (count)
        {
            case <= 0:
                return -1;
            case 1:
                return 0;
        }

        var a = random.Next(count);
        var b = random.Next(count - 1);
        if (b >= a)
        {
            b++;
        }

        return score(b) < score(a) ? b : a;
    }

    /// <summary>
    /// The routing score (lower is better): latency estimate × (in-flight + 1) × price relative to the cheapest
    /// candidate. A provider twice as expensive must be twice as fast or idle to win.
    /// </summary>
    public static double Score(double latencyEstimateMs, int inFlight, double blendedPrice, double cheapestBlendedPrice)
    {
        var priceWeight = cheapestBlendedPrice > 0 ? blendedPrice / cheapestBlendedPrice : 1.0;
        if (blendedPrice <= 0)
        {
            priceWeight = 1.0;
        }

        return Math.Max(latencyEstimateMs, 0.001) * (inFlight + 1) * Math.Max(priceWeight, 1.0);
    }
}
