using System.Net;
using Coinop.Market.Abuse;
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

    /// <summary>
    /// One host is usually given a whole IPv6 /64: counted per address, a client rotating its source address through
    /// its /64 was never limited (the mint's WebSocket already counted per /64). IPv4 addresses stay apart.
    /// </summary>
    [Theory]
    [InlineData("2001:db8::1", "2001:db8::ffff:ffff", true)]
    [InlineData("2001:db8:0:0:1234:5678:9abc:def0", "2001:db8::1", true)]
    [InlineData("2001:db8::1", "2001:db8:0:1::1", false)]
    [InlineData("203.0.113.1", "::ffff:203.0.113.1", true)]
    [InlineData("203.0.113.1", "203.0.113.2", false)]
    public void A_client_is_its_ipv4_address_or_its_ipv6_slash_64(string a, string b, bool same)
    {
        var (ka, kb) = (ClientRateLimits.PartitionKey("quote", IPAddress.Parse(a)), ClientRateLimits.PartitionKey("quote", IPAddress.Parse(b)));
        Assert.Equal(same, ka == kb);
        Assert.NotEqual(ka, ClientRateLimits.PartitionKey("handshake", IPAddress.Parse(a)));
    }
}
