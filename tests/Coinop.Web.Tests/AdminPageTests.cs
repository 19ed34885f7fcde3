using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Microsoft.Playwright;

namespace Coinop.Web.Tests;

/// <summary>The operator's page (<c>/admin</c>), behind the admin token in the market's data directory.</summary>
[Collection(WebCollection.Name)]
public sealed class AdminPageTests(WebMarket market)
{
    [Fact]
    public async Task Without_the_token_the_page_and_its_data_are_refused()
    {
        await using var context = await market.ContextAsync();
        var page = await context.NewPageAsync();
        var response = await page.GotoAsync("/admin");
        Assert.Equal(401, response!.Status);
        await Assertions.Expect(page.Locator("h1")).ToHaveTextAsync("Operator sign-in");
        await Assertions.Expect(page.Locator("#ledger")).ToHaveCountAsync(0);

        await page.FillAsync("#token", "adm_not-the-token");
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page.Locator("h1")).ToHaveTextAsync("Operator sign-in");

        var api = await context.APIRequest.GetAsync("/api/admin/money");
        Assert.Equal(401, api.Status);
        using var bad = new HttpRequestMessage(HttpMethod.Get, market.Url + "/api/admin/providers");
        bad.Headers.Authorization = new AuthenticationHeaderValue("Bearer", market.AdminToken + "x");
        Assert.Equal(HttpStatusCode.Unauthorized, (await market.Http.SendAsync(bad, TestContext.Current.CancellationToken)).StatusCode);
    }

    [Fact]
    public async Task Signed_in_the_page_shows_the_ledger_equal_to_the_summary_with_its_equations_holding()
    {
        // Some money moved first, so the numbers are not all zero.
        await market.RunCliAsync("chat", "--market", market.Url, "--wallet", market.Dir("wallet"), "--model", "sim-small", "--max-tokens", "5", "hello admin");

        await using var context = await market.ContextAsync();
        var page = await SignInAsync(context);
        await Assertions.Expect(page.Locator("#equations .equation")).ToHaveCountAsync(3, new() { Timeout = 30_000 });
        await Assertions.Expect(page.Locator("#equations")).Not.ToContainTextAsync("does not hold");

        using var request = new HttpRequestMessage(HttpMethod.Get, market.Url + "/api/ledger/summary");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", market.AdminToken);
        using var response = await market.Http.SendAsync(request, TestContext.Current.CancellationToken);
        using var summary = JsonDocument.Parse(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken));
        // The page refreshes every few seconds; nothing else moves money meanwhile, so its figures equal the summary's.
        foreach (var (label, field) in (List<(string, string)>)[("Received", "received_msat"), ("Spent", "spent_msat"), ("Refunded", "refunded_msat"),
            ("Balances", "balances_msat"), ("Held", "held_msat"), ("Providers earned", "provider_earned_msat"), ("Owed to providers", "owed_msat"),
            ("Paid out", "paid_out_msat"), ("Market fee", "fee_msat")])
        {
            var msat = summary.RootElement.GetProperty(field).GetInt64();
            var shown = page.Locator("#ledger .stat", new() { Has = page.Locator(".label", new() { HasTextString = label }) }).Locator(".value");
            await Assertions.Expect(shown).ToHaveTextAsync((msat / 1000m).ToString("#,0.###", CultureInfo.InvariantCulture) + " sat");
        }

        Assert.True(summary.RootElement.GetProperty("received_msat").GetInt64() > 0);
        await Assertions.Expect(page.Locator("#provider-list")).ToContainTextAsync("provider-a");
        await Assertions.Expect(page.Locator("#keysets")).ToContainTextAsync("active");
        await WebMarket.ScreenshotAsync(page, "admin-desktop");
    }

    [Fact]
    public async Task The_operator_issues_an_enrollment_code_and_parks_a_provider_from_the_page()
    {
        await using var context = await market.ContextAsync();
        var page = await SignInAsync(context);
        await page.FillAsync("#code-uses", "3");
        await page.ClickAsync("#issue button[type=submit]");
        await Assertions.Expect(page.Locator("#new-code")).ToContainTextAsync("COINOP-", new() { Timeout = 30_000 });
        await Assertions.Expect(page.Locator("#codes")).ToContainTextAsync("0 / 3");

        var row = page.Locator("#provider-list tr", new() { HasText = "provider-a" });
        await row.GetByRole(AriaRole.Button, new() { Name = "Park 10 min (provider-a)" }).ClickAsync();
        await Assertions.Expect(row).ToContainTextAsync("parked", new() { Timeout = 30_000 });
        await row.GetByRole(AriaRole.Button, new() { Name = "Un-park (provider-a)" }).ClickAsync();
        await Assertions.Expect(row).ToContainTextAsync("online", new() { Timeout = 30_000 });
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_page_has_no_serious_accessibility_violations_at_desktop_and_phone_width(bool phone)
    {
        await using var context = await market.ContextAsync(phone);
        var login = await context.NewPageAsync();
        await login.GotoAsync("/admin");
        await Accessibility.AssertNoSeriousViolationsAsync(login);
        await WebMarket.ScreenshotAsync(login, phone ? "admin-sign-in-phone" : "admin-sign-in-desktop");

        var page = await SignInAsync(context);
        await Assertions.Expect(page.Locator("#provider-list")).ToContainTextAsync("provider-a", new() { Timeout = 30_000 });
        await Accessibility.AssertNoSeriousViolationsAsync(page);
        Assert.True(await page.EvaluateAsync<bool>("() => document.documentElement.scrollWidth <= window.innerWidth + 1"), "the page scrolls sideways");
        await WebMarket.ScreenshotAsync(page, phone ? "admin-phone" : "admin-full-desktop");
    }

    private async Task<IPage> SignInAsync(IBrowserContext context)
    {
        var page = await context.NewPageAsync();
        await page.GotoAsync("/admin");
        await page.FillAsync("#token", market.AdminToken);
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page.Locator("h1")).ToHaveTextAsync("Operator", new() { Timeout = 30_000 });
        return page;
    }
}
