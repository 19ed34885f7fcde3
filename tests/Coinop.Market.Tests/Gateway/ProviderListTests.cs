using System.Net;
using System.Text.Json;
using Coinop.Market.Tests.TestProviders;

namespace Coinop.Market.Tests.Gateway;

/// <summary><c>GET /api/providers</c> paged (<c>?limit=&amp;cursor=</c>) for large markets, and <c>/v1/models</c> following offers.</summary>
public class ProviderListTests
{
    [Fact]
    public async Task Pages_walked_by_their_next_links_list_every_provider_once_in_the_unpaged_shape()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        var providers = new List<TestProvider>();
        for (var i = 0; i < 5; i++)
        {
            providers.Add(await market.ProviderAsync("llama3", ct, name: $"p{i}"));
        }

        using var all = JsonDocument.Parse(await market.Http.GetStringAsync("/api/providers", ct));

        var seen = new List<JsonElement>();
        var next = "/api/providers?limit=2";
        var pages = 0;
        while (next is not null)
        {
            using var response = await market.Http.GetAsync(next, ct);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            using var page = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
            Assert.True(page.RootElement.GetArrayLength() <= 2);
            seen.AddRange(page.RootElement.EnumerateArray().Select(e => e.Clone()));
            next = response.Headers.TryGetValues("Link", out var links) ? links.Single().Split('<', '>')[1] : null;
            pages++;
        }

        Assert.Equal(3, pages); // 2 + 2 + 1
        var ids = seen.Select(e => e.GetProperty("id").GetString()!).ToList();
        Assert.Equal(ids.Order(StringComparer.Ordinal), ids);
        Assert.Equal(all.RootElement.EnumerateArray().Select(e => e.GetProperty("id").GetString()!).Order(StringComparer.Ordinal), ids);
        foreach (var view in seen)
        {
            var same = all.RootElement.EnumerateArray().Single(e => e.GetProperty("id").GetString() == view.GetProperty("id").GetString());
            Assert.Equal(same.GetProperty("online").GetBoolean(), view.GetProperty("online").GetBoolean());
            Assert.Equal(same.GetProperty("public_key").GetString(), view.GetProperty("public_key").GetString());
            Assert.Equal(same.GetProperty("models").GetArrayLength(), view.GetProperty("models").GetArrayLength());
        }

        foreach (var p in providers)
        {
            await p.DisposeAsync();
        }
    }

    [Theory]
    [InlineData("/api/providers?limit=0")]
    [InlineData("/api/providers?limit=1001")]
    [InlineData("/api/providers?limit=ten")]
    [InlineData("/api/providers?limit=-1")]
    [InlineData("/api/providers?cursor=")]
    [InlineData("/api/providers?cursor=%27%20OR%201=1--")]
    [InlineData("/api/providers?limit=5&cursor=PABC")]
    public async Task A_bad_limit_or_cursor_is_a_400_with_a_reason(string path)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);

        using var response = await market.Http.GetAsync(path, ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        using var error = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        Assert.False(string.IsNullOrEmpty(error.RootElement.GetProperty("error").GetString()));
    }

    [Fact]
    public async Task Models_follow_a_provider_that_changes_its_offers()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var provider = await market.ProviderAsync("llama3", ct);
        Assert.Contains("\"llama3\"", await market.Http.GetStringAsync("/v1/models", ct), StringComparison.Ordinal);

        await provider.OfferAsync("mistral", ct);

        var models = await market.Http.GetStringAsync("/v1/models", ct);
        Assert.Contains("\"mistral\"", models, StringComparison.Ordinal);
        Assert.DoesNotContain("\"llama3\"", models, StringComparison.Ordinal);
    }
}
