using System.Text.Json;
using Coinop.Market.Tests.TestProviders;
using Coinop.TestKit;

namespace Coinop.Market.Tests.Inference;

public class ChatCliTests
{
    private static async Task<(int Exit, string Output)> CoinopAsync(params string[] args)
    {
        await using var cli = ChildProcess.StartCoinop("coinop", args);
        var exit = await cli.WaitForExitAsync(TimeSpan.FromSeconds(60));
        return (exit, cli.Output);
    }

    [Fact]
    public async Task Chat_prints_the_answer_whole_or_streamed()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var provider = await market.ProviderAsync("llama3", ct, script: Scripts.Answer("the answer is 42"));

        var whole = await CoinopAsync("chat", "--market", market.Url, "--model", "llama3", "--max-tokens", "20", "what is it?");
        var streamed = await CoinopAsync("chat", "--market", market.Url, "--model", "llama3", "--stream", "what is it?");

        Assert.Equal((0, "the answer is 42\n"), whole);
        Assert.Equal((0, "the answer is 42\n"), streamed);
        Assert.Equal(20, provider.Jobs.First().Request.GetProperty("max_tokens").GetInt32());
        Assert.Equal("what is it?", provider.Jobs.First().Request.GetProperty("messages")[0].GetProperty("content").GetString());
    }

    [Fact]
    public async Task Chat_reports_a_market_error_in_one_line_with_a_nonzero_exit()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var provider = await market.ProviderAsync("llama3", ct);

        var (exit, output) = await CoinopAsync("chat", "--market", market.Url, "--model", "nope", "hi");

        Assert.Equal(1, exit);
        Assert.Equal("coinop: 404 no provider online offers model 'nope'\n", output);
    }

    [Fact]
    public async Task Providers_prints_a_table_or_json()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var provider = await market.ProviderAsync("llama3", ct, name: "gpu-box", inSats: 1200, outSats: 3400);

        var (tableExit, table) = await CoinopAsync("providers", "--market", market.Url);
        var (jsonExit, json) = await CoinopAsync("providers", "--market", market.Url, "--json");

        Assert.Equal(0, tableExit);
        Assert.Contains("gpu-box", table, StringComparison.Ordinal);
        Assert.Contains("llama3 1200:3400", table, StringComparison.Ordinal);
        Assert.Equal(0, jsonExit);
        using var doc = JsonDocument.Parse(json);
        Assert.Equal(provider.ProviderId, doc.RootElement[0].GetProperty("id").GetString());
    }
}
