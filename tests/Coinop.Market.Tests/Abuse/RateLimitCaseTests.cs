using System.Net;
using System.Text;
using Dapper;

namespace Coinop.Market.Tests.Abuse;

/// <summary>
/// Routes match paths whatever their case, but the per-client limits on quotes and handshakes were chosen by comparing
/// the path in lower case: <c>/MINT/V1/MINT/QUOTE/BOLT11</c> created quotes and <c>/PROVIDER/CONNECT</c> started
/// handshakes without limit, and so did <c>/provider/connect/</c> (a trailing slash matches the route too). Every
/// spelling counts against the one limit.
/// </summary>
public class RateLimitCaseTests
{
    [Fact]
    public async Task Quotes_and_handshakes_in_any_path_case_count_against_the_limit()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await TestMarket.StartAsync(options: o =>
        {
            (o.RateLimitLoopback, o.QuoteRateLimit, o.HandshakeRateLimit) = (true, 3, 2);
            o.RateLimitWindow = TimeSpan.FromMinutes(10);
        });
        Task<HttpResponseMessage> QuoteAsync(string path) =>
            market.Http.PostAsync(market.Url + path, new StringContent("""{"amount":10,"unit":"sat"}""", Encoding.UTF8, "application/json"), ct);

        foreach (var path in new[] { "/MINT/V1/MINT/QUOTE/BOLT11", "/Mint/v1/mint/quote/bolt11", "/mint/v1/Mint/Quote/bolt11" })
        {
            using var ok = await QuoteAsync(path);
            Assert.True(ok.StatusCode == HttpStatusCode.OK, $"{path}: {(int)ok.StatusCode}"); // the route answers in any case
        }

        using (var refused = await QuoteAsync("/MINT/v1/MINT/QUOTE/bolt11"))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        }

        Assert.Equal(3, await market.Database.ReadAsync(c => c.ExecuteScalarAsync<int>("SELECT COUNT(*) FROM mint_quotes"), ct));

        foreach (var path in new[] { "/PROVIDER/CONNECT", "/provider/connect/" })
        {
            using var attempt = await market.Http.GetAsync(market.Url + path, ct);
            Assert.NotEqual(HttpStatusCode.TooManyRequests, attempt.StatusCode);
            Assert.NotEqual(HttpStatusCode.NotFound, attempt.StatusCode); // the gateway's own refusal of a GET that is no WebSocket
        }

        using var handshake = await market.Http.GetAsync(market.Url + "/Provider/Connect/", ct);
        Assert.Equal(HttpStatusCode.TooManyRequests, handshake.StatusCode);
    }
}
