using System.Globalization;
using Coinop.Core.Pricing;
using Microsoft.AspNetCore.Http;

namespace Coinop.Market.Inference;

/// <summary>The consumer's routing headers: a price ceiling and a deadline.</summary>
public static class ConsumerHeaders
{
    /// <summary><c>IN:OUT</c> in sats per million tokens: providers above either part are not considered.</summary>
    public const string MaxPrice = "X-Coinop-Max-Price";

    /// <summary>Seconds the consumer is willing to wait for the whole job.</summary>
    public const string Timeout = "X-Coinop-Timeout";

    /// <summary>The longest deadline a consumer may ask for.</summary>
    public static readonly TimeSpan LongestTimeout = TimeSpan.FromDays(1);

    public static bool TryRead(HttpRequest request, TimeSpan defaultTimeout, out ModelPrice? ceiling, out TimeSpan timeout, out ApiError? error)
    {
        ceiling = null;
        timeout = defaultTimeout;
        error = null;
        if (request.Headers.TryGetValue(MaxPrice, out var priceText))
        {
            if (priceText.Count != 1)
            {
                error = ApiError.InvalidHeader($"{MaxPrice}: give it once");
                return false;
            }

            if (!ModelPrice.TryParseSats(priceText[0], out var price, out var why))
            {
                error = ApiError.InvalidHeader($"{MaxPrice}: {why}");
                return false;
            }

            ceiling = price;
        }

        if (request.Headers.TryGetValue(Timeout, out var timeoutText))
        {
            if (timeoutText.Count != 1
                || !double.TryParse(timeoutText[0], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var seconds)
                || seconds <= 0 || seconds > LongestTimeout.TotalSeconds)
            {
                error = ApiError.InvalidHeader($"{Timeout}: '{timeoutText}' is not a number of seconds between 0 and 86400");
                return false;
            }

            timeout = TimeSpan.FromSeconds(seconds);
        }

        return true;
    }
}
