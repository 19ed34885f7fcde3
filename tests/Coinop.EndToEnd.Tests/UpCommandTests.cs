using System.ClientModel;
using Coinop.TestKit;
using OpenAI;
using OpenAI.Chat;

namespace Coinop.EndToEnd.Tests;

/// <summary>The README's first command, as a user runs it.</summary>
public class UpCommandTests
{
    [Fact]
    public async Task Up_serves_an_OpenAI_client_and_stops_cleanly_on_ctrl_c()
    {
        await using var cluster = new Cluster();
        var port = Ports.GetFree();
        var up = cluster.Start("up", ["up", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--data", cluster.Dir("up")]);
        await up.WaitForLineAsync("Ctrl-C stops everything", cancellationToken: TestContext.Current.CancellationToken);
        Assert.Contains($"http://127.0.0.1:{port}/v1", up.Output, StringComparison.Ordinal);

        var chat = new ChatClient("sim-small", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri($"http://127.0.0.1:{port}/v1") });
        ChatCompletion answer = await chat.CompleteChatAsync([new UserChatMessage("Hello")], cancellationToken: TestContext.Current.CancellationToken);
        Assert.False(string.IsNullOrWhiteSpace(answer.Content[0].Text));

        var cli = cluster.Start("chat", ["chat", "--market", $"http://127.0.0.1:{port}", "--model", "sim-small", "Hello"]);
        Assert.Equal(0, await cli.WaitForExitAsync());
        Assert.Equal(answer.Content[0].Text, cli.Output.Trim());

        up.Interrupt();
        Assert.Equal(0, await up.WaitForExitAsync());
        Assert.Contains("coinop up: stopped", up.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cli_errors_are_one_line_with_a_non_zero_exit()
    {
        await using var cluster = new Cluster();
        var (_, market) = await cluster.StartMarketAsync("market", 0, "--free");

        var unknown = cluster.Start("chat", ["chat", "--market", market, "--model", "nope", "hi"]);
        Assert.NotEqual(0, await unknown.WaitForExitAsync());
        var line = Assert.Single(unknown.Output.Trim().Split('\n'));
        Assert.StartsWith("coinop: ", line, StringComparison.Ordinal);

        var badFlag = cluster.Start("bad", ["provider", "--market", "not a url", "--data", cluster.Dir("p")]);
        Assert.Equal(2, await badFlag.WaitForExitAsync());
        Assert.Single(badFlag.Output.Trim().Split('\n'));
    }
}
