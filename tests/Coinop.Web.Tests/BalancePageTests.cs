using Microsoft.Playwright;

namespace Coinop.Web.Tests;

/// <summary>The balance-key page (<c>/balance</c>): open a balance from a token, pay with it from "Try it", refund it.</summary>
[Collection(WebCollection.Name)]
public sealed class BalancePageTests(WebMarket market)
{
    [Fact]
    public async Task A_balance_key_opened_from_a_token_pays_a_request_and_refunds_to_a_spendable_token()
    {
        var token = await market.TokenAsync(60);
        await using var context = await market.ContextAsync();
        var page = await context.NewPageAsync();
        await page.GotoAsync("/balance");
        await page.FillAsync("#create-token", token);
        await page.ClickAsync("#create button[type=submit]");
        await Assertions.Expect(page.Locator("#balance")).ToHaveTextAsync("60 sat", new() { Timeout = 30_000 });
        await Assertions.Expect(page.Locator("#charges")).ToContainTextAsync("top up");

        // The key stays in the browser: "Try it" on the public page pays with it.
        await page.GotoAsync("/");
        await Assertions.Expect(page.Locator("#pay-key")).ToBeCheckedAsync();
        await Assertions.Expect(page.Locator("#try-model")).ToHaveValueAsync("sim-small", new() { Timeout = 30_000 });
        await page.FillAsync("#try-max", "8");
        await page.ClickAsync("#try-send");
        await Assertions.Expect(page.Locator("#try-cost")).ToContainTextAsync("Charged to your balance key", new() { Timeout = 60_000 });

        await page.GotoAsync("/balance");
        await Assertions.Expect(page.Locator("#charges")).ToContainTextAsync("request", new() { Timeout = 30_000 });
        var balance = (await page.Locator("#balance").TextContentAsync())!;
        Assert.NotEqual("60 sat", balance); // the request was charged
        await WebMarket.ScreenshotAsync(page, "balance-desktop");

        await page.ClickAsync("#refund");
        var refund = page.Locator("#refund-token textarea");
        await Assertions.Expect(refund).ToBeVisibleAsync(new() { Timeout = 30_000 });
        await Assertions.Expect(page.Locator("#balance")).ToHaveTextAsync(new System.Text.RegularExpressions.Regex("^0(\\.\\d+)? sat$"));
        var received = await market.ReceiveAsync(await refund.InputValueAsync());
        Assert.InRange(received, 50, 59);
        await WebMarket.ScreenshotAsync(page, "balance-refunded-desktop");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_page_has_no_serious_accessibility_violations_at_desktop_and_phone_width(bool phone)
    {
        var token = await market.TokenAsync(5);
        await using var context = await market.ContextAsync(phone);
        var page = await context.NewPageAsync();
        await page.GotoAsync("/balance");
        await Accessibility.AssertNoSeriousViolationsAsync(page); // no key yet: the forms to open one
        await page.FillAsync("#create-token", token);
        await page.ClickAsync("#create button[type=submit]");
        await Assertions.Expect(page.Locator("#balance")).ToHaveTextAsync("5 sat", new() { Timeout = 30_000 });
        await Accessibility.AssertNoSeriousViolationsAsync(page);
        Assert.True(await page.EvaluateAsync<bool>("() => document.documentElement.scrollWidth <= window.innerWidth + 1"), "the page scrolls sideways");
        await WebMarket.ScreenshotAsync(page, phone ? "balance-phone" : "balance-key-desktop");
    }
}
