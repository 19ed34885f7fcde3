using Microsoft.Playwright;

namespace Coinop.Web.Tests;

/// <summary>The public page (<c>/</c>) in a real browser against a real market, provider and simulator.</summary>
[Collection(WebCollection.Name)]
public sealed class PublicPageTests(WebMarket market)
{
    [Fact]
    public async Task The_page_shows_a_provider_that_connects_after_it_loaded_without_a_reload()
    {
        await using var context = await market.ContextAsync();
        var page = await context.NewPageAsync();
        await page.GotoAsync("/");
        await Assertions.Expect(page.Locator("#live")).ToHaveTextAsync("live", new() { Timeout = 30_000 });
        await Assertions.Expect(page.Locator("#providers")).ToContainTextAsync("provider-a");
        await Assertions.Expect(page.Locator("#providers")).Not.ToContainTextAsync("provider-late");
        await page.EvaluateAsync("() => { window.loadedOnce = true; }"); // gone if the page reloads

        var late = await market.StartProviderAsync("provider-late");
        await Assertions.Expect(page.Locator("#providers tr", new() { HasText = "provider-late" })).ToContainTextAsync("online", new() { Timeout = 60_000 });
        Assert.True(await page.EvaluateAsync<bool>("() => window.loadedOnce === true"), "the page reloaded instead of updating live");

        late.KillHard();
        await Assertions.Expect(page.Locator("#providers")).Not.ToContainTextAsync("provider-late", new() { Timeout = 60_000 });
    }

    [Fact]
    public async Task Try_it_with_a_pasted_token_streams_the_answer_and_gives_spendable_change()
    {
        var token = await market.TokenAsync(40);
        await using var context = await market.ContextAsync();
        var page = await context.NewPageAsync();
        await page.GotoAsync("/");
        await Assertions.Expect(page.Locator("#try-model")).ToHaveValueAsync("sim-small", new() { Timeout = 30_000 });
        // Count how often the answer grows: a streamed answer arrives in several pieces, a buffered one in one.
        await page.EvaluateAsync("""
            () => {
              window.answerChanges = 0;
              new MutationObserver(() => window.answerChanges++).observe(document.getElementById("answer"), { childList: true, characterData: true, subtree: true });
            }
            """);
        await page.FillAsync("#try-max", "24");
        await page.FillAsync("#try-prompt", "Tell me about ecash");
        await page.CheckAsync("#pay-token");
        await page.FillAsync("#try-token", token);
        await page.ClickAsync("#try-send");

        var change = page.Locator("#change textarea");
        await Assertions.Expect(change).ToBeVisibleAsync(new() { Timeout = 60_000 });
        var answer = (await page.Locator("#answer").TextContentAsync())!;
        Assert.True(answer.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length >= 10, "answer: " + answer);
        Assert.True(await page.EvaluateAsync<int>("() => window.answerChanges") >= 3, "the answer did not stream");
        await Assertions.Expect(page.Locator("#try-cost")).ToContainTextAsync("of the 40 sat token");
        await Assertions.Expect(page.Locator("#change img.qr")).ToHaveAttributeAsync("src", new System.Text.RegularExpressions.Regex("^blob:"));
        await page.ClickAsync("#change button");
        await Assertions.Expect(page.Locator("#change [role=status]")).ToContainTextAsync("Copied");
        await WebMarket.ScreenshotAsync(page, "try-it-desktop");

        var changeToken = await change.InputValueAsync();
        Assert.StartsWith("cashuB", changeToken);
        var received = await market.ReceiveAsync(changeToken);
        Assert.InRange(received, 1, 39); // the request cost something, and the rest came back and is spendable
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_page_has_no_serious_accessibility_violations_at_desktop_and_phone_width(bool phone)
    {
        await using var context = await market.ContextAsync(phone);
        var page = await context.NewPageAsync();
        await page.GotoAsync("/");
        await Assertions.Expect(page.Locator("#providers")).ToContainTextAsync("provider-a", new() { Timeout = 30_000 });
        // The first paint is measured, not asserted (no timing thresholds in tests): docs/benchmarks.md has the figure.
        const string Timing = """
            () => {
              const nav = performance.getEntriesByType('navigation')[0];
              const paint = performance.getEntriesByName('first-contentful-paint')[0];
              return [paint ? paint.startTime : -1, nav.responseStart - nav.requestStart, nav.responseEnd];
            }
            """;
        var first = await page.EvaluateAsync<double[]>(Timing);
        Assert.True(first[0] > 0, "the page never painted");
        var again = await context.NewPageAsync(); // a second visit: the market warm, the browser's cache revalidating (304)
        await again.GotoAsync("/");
        await Assertions.Expect(again.Locator("#live")).ToHaveTextAsync("live", new() { Timeout = 30_000 });
        var warm = await again.EvaluateAsync<double[]>(Timing);
        await File.AppendAllTextAsync(Path.Combine(WebMarket.ScreenshotDir, "first-paint.txt"), string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{(phone ? "phone" : "desktop")} first contentful paint of /: first visit {first[0]:0} ms (server {first[1]:0} ms), again {warm[0]:0} ms (server {warm[1]:0} ms)\n"),
            TestContext.Current.CancellationToken);
        await Accessibility.AssertNoSeriousViolationsAsync(page);
        // Nothing overflows sideways on a phone.
        Assert.True(await page.EvaluateAsync<bool>("() => document.documentElement.scrollWidth <= window.innerWidth + 1"), "the page scrolls sideways");
        await WebMarket.ScreenshotAsync(page, phone ? "market-phone" : "market-desktop");
    }
}
