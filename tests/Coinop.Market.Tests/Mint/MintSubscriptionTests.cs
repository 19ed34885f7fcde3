using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using Coinop.Ecash.Crypto;
using Coinop.Ecash.Lightning;
using Coinop.Ecash.MintApi;
using Coinop.Ecash.Wallet;
using Coinop.TestKit;
using Microsoft.Extensions.DependencyInjection;

namespace Coinop.Market.Tests.Mint;

/// <summary>NUT-17 subscriptions over a real WebSocket, NUT-19 replays of lost answers, and <c>/v1/info</c> announcing both.</summary>
public class MintSubscriptionTests
{
    [Fact]
    public async Task Subscriptions_send_the_current_state_then_each_change_of_a_mint_quote_a_melt_quote_and_proofs()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await TestMarket.StartAsync();
        market.Lightning.AutoPay = false;
        using var ws = await ConnectAsync(market, ct);

        // A mint quote: UNPAID at once, then PAID when the node sees the invoice paid.
        var quote = await market.Mint.CreateMintQuoteAsync(8, ct);
        await SendAsync(ws, """{"jsonrpc":"2.0","id":0,"method":"subscribe","params":{"kind":"bolt11_mint_quote","subId":"q1","filters":["QUOTE"]}}""".Replace("QUOTE", quote.Quote, StringComparison.Ordinal), ct);
        var answer = await ReceiveAsync(ws, ct);
        Assert.Equal("OK", answer["result"]!["status"]!.GetValue<string>());
        Assert.Equal(0, answer["id"]!.GetValue<int>());
        Assert.Equal("UNPAID", (await ReceiveAsync(ws, ct))["params"]!["payload"]!["state"]!.GetValue<string>());
        market.Lightning.MarkPaid(Bolt11Invoice.Parse(quote.Request).PaymentHashHex);
        var paid = await ReceiveAsync(ws, ct);
        Assert.Equal("q1", paid["params"]!["subId"]!.GetValue<string>());
        Assert.Equal(quote.Quote, paid["params"]!["payload"]!["quote"]!.GetValue<string>());
        Assert.Equal("PAID", paid["params"]!["payload"]!["state"]!.GetValue<string>());
        await SendAsync(ws, """{"jsonrpc":"2.0","id":1,"method":"unsubscribe","params":{"subId":"q1"}}""", ct);
        Assert.Equal("OK", (await ReceiveAsync(ws, ct))["result"]!["status"]!.GetValue<string>());

        // Proofs: UNSPENT, then SPENT when they are swapped.
        market.Lightning.AutoPay = true;
        var proofs = await market.MintProofsAsync(8, [8]);
        var y = Convert.ToHexStringLower(Bdhke.Y(proofs[0].Secret));
        await SendAsync(ws, $$$"""{"jsonrpc":"2.0","id":2,"method":"subscribe","params":{"kind":"proof_state","subId":"p1","filters":["{{{y}}}"]}}""", ct);
        Assert.Equal("OK", (await ReceiveAsync(ws, ct))["result"]!["status"]!.GetValue<string>());
        var unspent = (await ReceiveAsync(ws, ct))["params"]!["payload"]!;
        Assert.Equal((y, "UNSPENT"), (unspent["Y"]!.GetValue<string>(), unspent["state"]!.GetValue<string>()));
        await market.Mint.SwapForFreshAsync(proofs, ct);
        Assert.Equal("SPENT", (await ReceiveAsync(ws, ct))["params"]!["payload"]!["state"]!.GetValue<string>());

        // A melt quote: UNPAID, then PAID with its preimage.
        var fresh = await market.MintProofsAsync(8);
        var melt = await market.Mint.CreateMeltQuoteAsync(market.Lightning.Invoice(4_000), ct);
        await SendAsync(ws, $$$"""{"jsonrpc":"2.0","id":3,"method":"subscribe","params":{"kind":"bolt11_melt_quote","subId":"m1","filters":["{{{melt.Quote}}}"]}}""", ct);
        Assert.Equal("OK", (await ReceiveAsync(ws, ct))["result"]!["status"]!.GetValue<string>());
        Assert.Equal("UNPAID", (await ReceiveAsync(ws, ct))["params"]!["payload"]!["state"]!.GetValue<string>());
        await market.Mint.MeltAsync(new MeltRequest { Quote = melt.Quote, Inputs = fresh }, ct);
        var melted = (await ReceiveAsync(ws, ct))["params"]!["payload"]!;
        Assert.Equal("PAID", melted["state"]!.GetValue<string>());
        Assert.NotNull(melted["payment_preimage"]);
    }

    [Theory]
    [InlineData("not json", -32700)]
    [InlineData("""{"jsonrpc":"2.0","id":5,"method":"explode","params":{"subId":"x"}}""", -32601)]
    [InlineData("""{"jsonrpc":"2.0","id":5,"method":"subscribe","params":{"kind":"bolt12_mint_quote","subId":"x","filters":["a"]}}""", -32602)]
    [InlineData("""{"jsonrpc":"2.0","id":5,"method":"subscribe","params":{"kind":"bolt11_mint_quote","subId":"x","filters":["no-such-quote"]}}""", -32602)]
    [InlineData("""{"jsonrpc":"2.0","id":5,"method":"subscribe","params":{"kind":"proof_state","subId":"x","filters":["zz"]}}""", -32602)]
    [InlineData("""{"jsonrpc":"2.0","id":5,"method":"subscribe","params":{"kind":"proof_state","subId":"x","filters":[]}}""", -32602)]
    [InlineData("""{"jsonrpc":"2.0","id":5,"method":"subscribe","params":{"kind":"proof_state","filters":["a"]}}""", -32602)]
    [InlineData("""{"jsonrpc":"2.0","id":5,"method":"unsubscribe","params":{"subId":"never"}}""", -32602)]
    [InlineData("[1,2,3]", -32600)]
    public async Task Bad_requests_get_a_json_rpc_error_and_the_connection_stays_usable(string message, int code)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await TestMarket.StartAsync();
        using var ws = await ConnectAsync(market, ct);

        await SendAsync(ws, message, ct);
        var error = await ReceiveAsync(ws, ct);
        Assert.Equal(code, error["error"]!["code"]!.GetValue<int>());

        var quote = await market.Mint.CreateMintQuoteAsync(1, ct);
        await SendAsync(ws, $$$"""{"jsonrpc":"2.0","id":6,"method":"subscribe","params":{"kind":"bolt11_mint_quote","subId":"ok","filters":["{{{quote.Quote}}}"]}}""", ct);
        Assert.Equal("OK", (await ReceiveAsync(ws, ct))["result"]!["status"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_connection_watches_a_bounded_number_of_objects_and_a_huge_message_closes_it()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await TestMarket.StartAsync();
        using var ws = await ConnectAsync(market, ct);
        var ys = Enumerable.Range(0, Market.Mint.MintSubscriptions.MaxWatched + 1)
            .Select(_ => "\"" + Convert.ToHexStringLower(Bdhke.Y(Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)))) + "\"");
        await SendAsync(ws, $$$"""{"jsonrpc":"2.0","id":1,"method":"subscribe","params":{"kind":"proof_state","subId":"many","filters":[{{{string.Join(',', ys)}}}]}}""", ct);
        Assert.Contains("at most", (await ReceiveAsync(ws, ct))["error"]!["message"]!.GetValue<string>(), StringComparison.Ordinal);

        await SendAsync(ws, new string('x', Market.Mint.MintSubscriptions.MaxMessageBytes + 1), ct);
        var buffer = new byte[1024];
        var closed = await ws.ReceiveAsync(buffer, ct);
        Assert.Equal(WebSocketMessageType.Close, closed.MessageType);
        Assert.Equal(WebSocketCloseStatus.MessageTooBig, ws.CloseStatus);
    }

    [Fact]
    public async Task A_retried_swap_mint_or_melt_gets_the_first_answer_again_and_info_lists_what_is_supported()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await TestMarket.StartAsync();
        var active = (await market.Mint.GetActiveKeysetAsync(ct)).Id;

        var quote = await market.Mint.CreateMintQuoteAsync(8, ct);
        var mintOutputs = BlindedOutputs.Create(active, [8]);
        var mintRequest = new MintRequest(quote.Quote, [.. mintOutputs.Select(o => o.Message)]);
        var minted = await market.Mint.MintAsync(mintRequest, ct);
        Assert.Equivalent(minted, await market.Mint.MintAsync(mintRequest, ct), strict: true);
        var proofs = await market.Mint.UnblindAsync(mintOutputs, minted.Signatures, ct);

        var swapOutputs = BlindedOutputs.Create(active, [4, 4]);
        var swapRequest = new SwapRequest(proofs, [.. swapOutputs.Select(o => o.Message)]);
        var swapped = await market.Mint.SwapAsync(swapRequest, ct);
        Assert.Equivalent(swapped, await market.Mint.SwapAsync(swapRequest, ct), strict: true);
        var fours = await market.Mint.UnblindAsync(swapOutputs, swapped.Signatures, ct);

        // Not a replay: the spent inputs with other outputs, or fresh outputs for an issued quote, are still refused.
        await CashuAssert.FailsWith(CashuErrorCode.ProofsAlreadySpent, () => market.Mint.SwapAsync(new SwapRequest(proofs, [.. BlindedOutputs.Create(active, [8]).Select(o => o.Message)]), ct));
        await CashuAssert.FailsWith(CashuErrorCode.QuoteAlreadyIssued, () => market.Mint.MintAsync(new MintRequest(quote.Quote, [.. BlindedOutputs.Create(active, [8]).Select(o => o.Message)]), ct));

        var meltQuote = await market.Mint.CreateMeltQuoteAsync(market.Lightning.Invoice(2_000), ct);
        var meltRequest = new MeltRequest { Quote = meltQuote.Quote, Inputs = [fours[0]], Outputs = [.. BlindedOutputs.Create(active, [1]).Select(o => o.Message)] };
        var melted = await market.Mint.MeltAsync(meltRequest, ct);
        Assert.Equal(MeltQuoteState.Paid, melted.State);
        Assert.Equivalent(melted, await market.Mint.MeltAsync(meltRequest, ct), strict: true);
        await CashuAssert.FailsWith(CashuErrorCode.InvoiceAlreadyPaid, () => market.Mint.MeltAsync(meltRequest with { Inputs = [fours[1]] }, ct));

        var nuts = JsonNode.Parse(await market.Http.GetStringAsync(market.MintUrl + "/v1/info", ct))!["nuts"]!.AsObject();
        Assert.Equal(["4", "5", "7", "8", "9", "12", "17", "19", "20"], nuts.Select(n => n.Key).OrderBy(k => int.Parse(k, System.Globalization.CultureInfo.InvariantCulture)));
        Assert.Equal(["bolt11_mint_quote", "bolt11_melt_quote", "proof_state"], nuts["17"]!["supported"]![0]!["commands"]!.AsArray().Select(c => c!.GetValue<string>()));
        Assert.Null(nuts["19"]!["ttl"]);
        Assert.Equal(["/v1/swap", "/v1/mint/bolt11", "/v1/melt/bolt11"], nuts["19"]!["cached_endpoints"]!.AsArray().Select(e => e!["path"]!.GetValue<string>()));
    }

    [Fact]
    public async Task A_client_gets_a_bounded_number_of_connections_and_each_a_bounded_number_of_subscriptions()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await TestMarket.StartAsync(services: s => s.Configure<Market.Mint.MintOptions>(o =>
        {
            o.SubscriptionConnectionsPerClient = 2;
            o.SubscriptionsPerConnection = 3;
        }));
        using var first = await ConnectAsync(market, ct);
        using var second = await ConnectAsync(market, ct);

        // A third connection from the same address: a JSON-RPC error saying why, then the socket is closed.
        using (var third = await ConnectAsync(market, ct))
        {
            var refused = await ReceiveAsync(third, ct);
            Assert.Equal(-32000, refused["error"]!["code"]!.GetValue<int>());
            Assert.Contains("at most 2 connections", refused["error"]!["message"]!.GetValue<string>(), StringComparison.Ordinal);
            Assert.Equal(WebSocketMessageType.Close, (await third.ReceiveAsync(new byte[256], ct)).MessageType);
            Assert.Equal(WebSocketCloseStatus.PolicyViolation, third.CloseStatus);
        }

        // Subscriptions per connection: the fourth is refused, the connection stays usable, an unsubscribe frees a place.
        for (var i = 0; i < 3; i++)
        {
            await SendAsync(first, Subscribe(i, "s" + i), ct);
            Assert.Equal("OK", (await ReceiveAsync(first, ct))["result"]!["status"]!.GetValue<string>());
            Assert.Equal("UNSPENT", (await ReceiveAsync(first, ct))["params"]!["payload"]!["state"]!.GetValue<string>());
        }

        await SendAsync(first, Subscribe(3, "s3"), ct);
        var tooMany = await ReceiveAsync(first, ct);
        Assert.Equal(-32000, tooMany["error"]!["code"]!.GetValue<int>());
        Assert.Equal(3, tooMany["id"]!.GetValue<int>());
        Assert.Contains("at most 3 subscriptions", tooMany["error"]!["message"]!.GetValue<string>(), StringComparison.Ordinal);
        await SendAsync(first, """{"jsonrpc":"2.0","id":4,"method":"unsubscribe","params":{"subId":"s0"}}""", ct);
        Assert.Equal("OK", (await ReceiveAsync(first, ct))["result"]!["status"]!.GetValue<string>());
        await SendAsync(first, Subscribe(5, "s3"), ct);
        Assert.Equal("OK", (await ReceiveAsync(first, ct))["result"]!["status"]!.GetValue<string>());

        // A connection that closes gives its place back.
        await second.CloseAsync(WebSocketCloseStatus.NormalClosure, null, ct);
        await Eventually.WaitAsync(async () =>
        {
            using var again = await ConnectAsync(market, ct);
            await SendAsync(again, Subscribe(6, "again"), ct);
            return (bool?)((await ReceiveAsync(again, ct))["result"] is not null);
        }, ok => ok == true, "the closed connection's place given back", cancellationToken: ct);

        static string Subscribe(int id, string subId) =>
            $$$"""{"jsonrpc":"2.0","id":{{{id}}},"method":"subscribe","params":{"kind":"proof_state","subId":"{{{subId}}}","filters":["{{{Convert.ToHexStringLower(Bdhke.Y(Guid.NewGuid().ToString()))}}}"]}}""";
    }

    private static async Task<ClientWebSocket> ConnectAsync(TestMarket market, CancellationToken ct)
    {
        var ws = new ClientWebSocket();
        await ws.ConnectAsync(new Uri(market.MintUrl.Replace("http://", "ws://", StringComparison.Ordinal) + "/v1/ws"), ct);
        return ws;
    }

    private static Task SendAsync(ClientWebSocket ws, string text, CancellationToken ct) =>
        ws.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, endOfMessage: true, ct);

    private static async Task<JsonNode> ReceiveAsync(ClientWebSocket ws, CancellationToken ct)
    {
        var buffer = new byte[256 * 1024];
        var length = 0;
        ValueWebSocketReceiveResult result;
        do
        {
            result = await ws.ReceiveAsync(buffer.AsMemory(length), ct);
            length += result.Count;
        }
        while (!result.EndOfMessage);

        return JsonNode.Parse(buffer.AsSpan(0, length))!;
    }
}
