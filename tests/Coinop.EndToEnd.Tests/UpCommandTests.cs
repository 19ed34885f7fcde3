using System.ClientModel;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Coinop.TestKit;
using OpenAI;
using OpenAI.Chat;

namespace Coinop.EndToEnd.Tests;

/// <summary>The README's first command, as a user runs it.</summary>
public class UpCommandTests
{
    [Fact]
    public async Task Up_funds_a_wallet_that_pays_for_chat_and_for_an_OpenAI_client_then_stops_cleanly_on_ctrl_c()
    {
        await using var cluster = new Cluster();
        var ct = TestContext.Current.CancellationToken;
        var port = Ports.GetFree();
        var market = $"http://127.0.0.1:{port}";
        var data = cluster.Dir("up");
        var wallet = Path.Combine(data, "wallet");
        var up = cluster.Start("up", ["up", "--port", port.ToString(CultureInfo.InvariantCulture), "--data", data]);
        await up.WaitForLineAsync("Ctrl-C stops everything", cancellationToken: ct);
        Assert.Contains($"{market}/v1", up.Output, StringComparison.Ordinal);
        Assert.Contains("10,000 sat just minted through the FAKE Lightning backend", up.Output, StringComparison.Ordinal);

        // Unpaid, the market asks for money the way NUT-24 says.
        using (var unpaid = await cluster.Http.PostAsync($"{market}/v1/chat/completions",
            new StringContent("""{"model":"sim-small","messages":[{"role":"user","content":"Hello"}]}""", Encoding.UTF8, "application/json"), ct))
        {
            Assert.Equal(HttpStatusCode.PaymentRequired, unpaid.StatusCode);
            Assert.StartsWith("creqA", unpaid.Headers.GetValues("X-Cashu").Single(), StringComparison.Ordinal);
        }

        // coinop chat pays from the wallet up funded and keeps the change.
        var chat = cluster.Start("chat", ["chat", "--market", market, "--model", "sim-small", "--wallet", wallet, "Hello"]);
        Assert.Equal(0, await chat.WaitForExitAsync());
        Assert.Contains("paid ", chat.Output, StringComparison.Ordinal);
        var answer = chat.Output.Split('\n')[0].Trim();
        Assert.False(string.IsNullOrWhiteSpace(answer));

        // The README's SDK path: a wallet token becomes a balance key, and the key is the OpenAI API key.
        var send = cluster.Start("send", ["wallet", "--data", wallet, "send", "500"]);
        Assert.Equal(0, await send.WaitForExitAsync());
        var token = send.Output.Trim().Split('\n')[^1].Trim();
        using var created = await cluster.Http.PostAsync($"{market}/v1/balance/create",
            new StringContent(JsonSerializer.Serialize(new { token }), Encoding.UTF8, "application/json"), ct);
        Assert.Equal(HttpStatusCode.OK, created.StatusCode);
        var apiKey = JsonDocument.Parse(await created.Content.ReadAsStringAsync(ct)).RootElement.GetProperty("api_key").GetString()!;
        var sdk = new ChatClient("sim-small", new ApiKeyCredential(apiKey), new OpenAIClientOptions { Endpoint = new Uri($"{market}/v1") });
        ChatCompletion viaSdk = await sdk.CompleteChatAsync([new UserChatMessage("Hello")], cancellationToken: ct);
        Assert.Equal(answer, viaSdk.Content[0].Text); // same deterministic simulator answer, paid either way

        up.Interrupt();
        Assert.Equal(0, await up.WaitForExitAsync());
        Assert.Contains("coinop up: stopped", up.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Up_free_serves_an_OpenAI_client_without_payment()
    {
        await using var cluster = new Cluster();
        var port = Ports.GetFree();
        var up = cluster.Start("up", ["up", "--free", "--port", port.ToString(CultureInfo.InvariantCulture), "--data", cluster.Dir("up")]);
        await up.WaitForLineAsync("Ctrl-C stops everything", cancellationToken: TestContext.Current.CancellationToken);

        var chat = new ChatClient("sim-small", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri($"http://127.0.0.1:{port}/v1") });
        ChatCompletion answer = await chat.CompleteChatAsync([new UserChatMessage("Hello")], cancellationToken: TestContext.Current.CancellationToken);
        Assert.False(string.IsNullOrWhiteSpace(answer.Content[0].Text));
        up.Terminate();
        Assert.Equal(0, await up.WaitForExitAsync());
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
