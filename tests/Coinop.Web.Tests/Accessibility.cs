using Deque.AxeCore.Commons;
using Deque.AxeCore.Playwright;
using Microsoft.Playwright;

namespace Coinop.Web.Tests;

/// <summary>axe-core over a page: a serious or critical violation fails the test with what and where.</summary>
public static class Accessibility
{
    public static async Task AssertNoSeriousViolationsAsync(IPage page)
    {
        var result = await page.RunAxe();
        var serious = result.Violations.Where(v => v.Impact is "serious" or "critical").ToList();
        Assert.True(serious.Count == 0, $"axe-core found serious violations on {page.Url}:\n" + string.Join("\n", serious.Select(Describe)));
        Assert.True(result.Passes.Length > 0, "axe-core ran no check at all");
    }

    private static string Describe(AxeResultItem v) =>
        $"- {v.Id} ({v.Impact}): {v.Help} at {string.Join(", ", v.Nodes.Take(5).Select(n => string.Join(" ", n.Target)))}";
}
