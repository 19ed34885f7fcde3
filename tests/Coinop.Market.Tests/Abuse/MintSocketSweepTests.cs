using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Coinop.Ecash.Crypto;
using Coinop.Ecash.Lightning;
using Coinop.Market.Mint;
using Coinop.Storage;
using Coinop.TestKit;
using CsCheck;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Coinop.Market.Tests.Abuse;

/// <summary>
/// The mint's NUT-17 WebSocket (<c>/mint/v1/ws</c>) under attack over real sockets on the real market: a fixed catalogue
/// and CsCheck-generated messages on one attacker connection while a victim watches its own quote on another, the caps
/// on subscriptions and connections, a client that never reads, one that never answers a close and ones that vanish
/// mid-message. Invariants: every answer is a well-formed JSON-RPC answer or a clean close with a code, no exception
/// escapes (nothing logged at Error), the victim keeps its subscription and is told when its quote is paid, and the
/// market still serves.
/// </summary>
public class MintSocketSweepTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string NewY() => Convert.ToHexStringLower(Bdhke.Y(Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32))));

    [Theory]
    [MemberData(nameof(TestMarket.Dialects), MemberType = typeof(TestMarket))]
    public async Task No_hostile_message_gets_anything_but_a_json_rpc_error_or_a_clean_close_and_the_victim_keeps_its_subscription(SqlDialect dialect)
    {
        var errors = new ErrorLogs();
        await using var market = await TestMarket.StartAsync(dialect, services: s => s.AddSingleton<ILoggerProvider>(errors));
        market.Lightning.AutoPay = false;
        var quote = await market.Mint.CreateMintQuoteAsync(8, Ct);
        await using var victim = await RawWebSocket.ConnectAsync(market.Url, "/mint/v1/ws", Ct);
        await victim.SendTextAsync(HostileMintMessages.Subscribe(1, "bolt11_mint_quote", "mine", quote.Quote), Ct);
        Assert.Equal("OK", JsonNode.Parse((await victim.ReceiveAsync(Ct))!.AsText)!["result"]!["status"]!.GetValue<string>());
        Assert.Equal("UNPAID", JsonNode.Parse((await victim.ReceiveAsync(Ct))!.AsText)!["params"]!["payload"]!["state"]!.GetValue<string>());

        var y = NewY();
        await using var sweep = new MintSocketSweep(market.Url, Ct);
        var failures = new List<string>();
        var sent = 0;
        foreach (var attack in HostileMintMessages.Fixed(quote.Quote, y))
        {
            sent++;
            if (await sweep.SendAsync(attack) is { } failure)
            {
                failures.Add(failure);
            }
        }

        Assert.True(failures.Count == 0, $"{failures.Count} of {sent} hostile messages were answered badly:\n\n{string.Join("\n\n", failures)}");

        // Random attacks on top; CsCheck prints the seed of a failure (set CsCheck_Seed to replay it).
        await HostileMintMessages.Generated(quote.Quote, y).SampleAsync(async attack =>
        {
            var failure = await sweep.SendAsync(attack);
            Assert.True(failure is null, failure);
        }, iter: 400, threads: 1);
        TestContext.Current.TestOutputHelper?.WriteLine(string.Join('\n', sweep.Outcomes.OrderBy(o => o.Key, StringComparer.Ordinal).Select(o => $"{o.Value,5} × {o.Key}")));

        // The victim's subscription is still its own: when the quote is paid, it is told (and only it is subscribed as "mine").
        market.Lightning.MarkPaid(Bolt11Invoice.Parse(quote.Request).PaymentHashHex);
        var paid = JsonNode.Parse((await victim.ReceiveAsync(Ct))!.AsText)!;
        Assert.Equal(("mine", "PAID"), (paid["params"]!["subId"]!.GetValue<string>(), paid["params"]!["payload"]!["state"]!.GetValue<string>()));

        using (var info = await market.Http.GetAsync(market.MintUrl + "/v1/info", Ct))
        {
            Assert.Equal(HttpStatusCode.OK, info.StatusCode);
        }

        Assert.True(errors.Entries.Count == 0, "logged at Error:\n" + string.Join('\n', errors.Entries));
    }

    [Theory]
    [MemberData(nameof(TestMarket.Dialects), MemberType = typeof(TestMarket))]
    public async Task Thousands_of_subscriptions_and_connections_from_one_client_meet_a_cap_with_a_json_rpc_error(SqlDialect dialect)
    {
        var errors = new ErrorLogs();
        await using var market = await TestMarket.StartAsync(dialect, services: s => s.AddSingleton<ILoggerProvider>(errors));
        var options = market.App.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<MintOptions>>().Value;

        // 2,000 subscribe requests pipelined on one connection: the first SubscriptionsPerConnection are taken, every other one is refused with -32000.
        await using var ws = await RawWebSocket.ConnectAsync(market.Url, "/mint/v1/ws", Ct);
        var sending = Task.Run(async () =>
        {
            for (var i = 0; i < 2000; i++)
            {
                await ws.SendTextAsync(HostileMintMessages.Subscribe(i, "proof_state", "s" + i, NewY()), Ct);
            }
        }, Ct);
        var (ok, refused) = (0, 0);
        while (ok + refused < 2000)
        {
            var answer = JsonNode.Parse((await ws.ReceiveAsync(Ct))!.AsText)!.AsObject();
            Assert.Null(MintSocketSweep.Problem(answer.ToJsonString(), out _));
            if (answer["method"] is not null)
            {
                continue; // the current state of a subscription taken
            }

            if (answer["result"] is not null)
            {
                ok++;
            }
            else
            {
                Assert.Equal(HostileMintMessages.LimitExceeded, answer["error"]!["code"]!.GetValue<int>());
                Assert.Contains($"at most {options.SubscriptionsPerConnection} subscriptions", answer["error"]!["message"]!.GetValue<string>(), StringComparison.Ordinal);
                refused++;
            }
        }

        await sending;
        Assert.Equal((options.SubscriptionsPerConnection, 2000 - options.SubscriptionsPerConnection), (ok, refused));

        // Connections: up to the cap (this one included), then each further one is told why and closed with 1008.
        var more = new List<RawWebSocket>();
        try
        {
            for (var i = 1; i < options.SubscriptionConnectionsPerClient; i++)
            {
                more.Add(await RawWebSocket.ConnectAsync(market.Url, "/mint/v1/ws", Ct));
            }

            for (var i = 0; i < 50; i++)
            {
                await using var extra = await RawWebSocket.ConnectAsync(market.Url, "/mint/v1/ws", Ct);
                var error = JsonNode.Parse((await extra.ReceiveAsync(Ct))!.AsText)!;
                Assert.Equal(HostileMintMessages.LimitExceeded, error["error"]!["code"]!.GetValue<int>());
                var close = (await extra.ReceiveAsync(Ct))!;
                Assert.Equal(1008, close.CloseCode);
                await extra.SendFrameAsync(RawFrame.Close, close.Payload.AsMemory(0, 2), Ct); // as a wallet does
                Assert.True(await extra.EndedAsync(Ct));
            }

            // Each connection at the cap still works.
            foreach (var open in more)
            {
                await open.SendTextAsync("""{"jsonrpc":"2.0","id":7,"method":"unsubscribe","params":{"subId":"none"}}""", Ct);
                Assert.Equal(HostileMintMessages.InvalidParams, JsonNode.Parse((await open.ReceiveAsync(Ct))!.AsText)!["error"]!["code"]!.GetValue<int>());
            }
        }
        finally
        {
            foreach (var open in more)
            {
                open.Abort();
            }
        }

        Assert.True(errors.Entries.Count == 0, "logged at Error:\n" + string.Join('\n', errors.Entries));
    }

    [Fact]
    public async Task A_client_that_never_reads_is_cut_off_after_the_send_timeout_and_others_are_still_served()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var errors = new ErrorLogs();
        await using var market = await TestMarket.StartAsync(services: s =>
        {
            s.AddSingleton<TimeProvider>(time);
            s.AddSingleton<ILoggerProvider>(errors);
        });
        var sendTimeout = market.App.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<MintOptions>>().Value.SubscriptionSendTimeout;

        // Requests whose answers (each quoting a 32 KiB id back) it never reads: TCP fills both ways, the market's send blocks.
        await using var slow = await RawWebSocket.ConnectAsync(market.Url, "/mint/v1/ws", Ct);
        var id = new string('i', 32 * 1024);
        var flood = Task.Run(async () =>
        {
            try
            {
                for (var i = 0; i < 100_000; i++)
                {
                    await slow.SendTextAsync($$$"""{"jsonrpc":"2.0","id":"{{{id}}}","method":"unsubscribe","params":{"subId":"x"}}""", Ct);
                }

                return "sent everything: the market read 3 GiB for a client that never read an answer";
            }
            catch (IOException)
            {
                return "cut off";
            }
        }, Ct);

        // Time passes on the market's clock until the blocked send gives up and the connection is closed.
        await Eventually.WaitAsync(() =>
        {
            time.Advance(sendTimeout);
            return Task.FromResult<bool?>(flood.IsCompleted);
        }, done => done == true, "the slow client cut off", cancellationToken: Ct);
        Assert.Equal("cut off", await flood);

        // Meanwhile and after, another client is answered.
        await using var other = await RawWebSocket.ConnectAsync(market.Url, "/mint/v1/ws", Ct);
        await other.SendTextAsync("""{"jsonrpc":"2.0","id":1,"method":"unsubscribe","params":{"subId":"x"}}""", Ct);
        Assert.Equal(HostileMintMessages.InvalidParams, JsonNode.Parse((await other.ReceiveAsync(Ct))!.AsText)!["error"]!["code"]!.GetValue<int>());
        Assert.True(errors.Entries.Count == 0, "logged at Error:\n" + string.Join('\n', errors.Entries));
    }

    [Fact]
    public async Task A_connection_the_market_closes_ends_even_when_the_client_never_answers_the_close()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var market = await TestMarket.StartAsync(services: s => s.AddSingleton<TimeProvider>(time));
        var sendTimeout = market.App.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<MintOptions>>().Value.SubscriptionSendTimeout;
        await using var ws = await RawWebSocket.ConnectAsync(market.Url, "/mint/v1/ws", Ct);
        await ws.SendTextAsync(new string('x', MintSubscriptions.MaxMessageBytes + 1), Ct);
        Assert.Equal(HostileMintMessages.TooBig, (await ws.ReceiveAsync(Ct))!.CloseCode);

        // No close comes back from this client: once the market's clock passes the timeout, it ends the connection anyway
        // (it used to wait for the client's close for ever, holding one of the client's connections).
        var ended = ws.EndedAsync(Ct);
        await Eventually.WaitAsync(() =>
        {
            time.Advance(sendTimeout);
            return Task.FromResult<bool?>(ended.IsCompleted);
        }, done => done == true, "the connection ended", cancellationToken: Ct);
        Assert.True(await ended);
    }

    [Theory]
    [MemberData(nameof(TestMarket.Dialects), MemberType = typeof(TestMarket))]
    public async Task Clients_that_vanish_mid_message_or_mid_subscription_give_their_places_back(SqlDialect dialect)
    {
        var errors = new ErrorLogs();
        await using var market = await TestMarket.StartAsync(dialect, services: s => s.AddSingleton<ILoggerProvider>(errors));
        var options = market.App.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<MintOptions>>().Value;
        var subscribe = Encoding.UTF8.GetBytes(HostileMintMessages.Subscribe(1, "proof_state", "s", NewY()));
        for (var i = 0; i < options.SubscriptionConnectionsPerClient * 3; i++)
        {
            var ws = await RawWebSocket.ConnectAsync(market.Url, "/mint/v1/ws", Ct);
            switch (i % 3)
            {
                case 0: // half a message, then a reset
                    await ws.SendFrameAsync(RawFrame.Text, subscribe.AsMemory(0, 20), Ct, fin: false);
                    break;
                case 1: // a frame header promising more than ever comes
                    await ws.SendBytesAsync([0x81, 0xfe, 0x10, 0x00, 1, 2, 3, 4, 0x7b], Ct);
                    break;
                default: // a subscription whose state is on its way
                    await ws.SendFrameAsync(RawFrame.Text, subscribe, Ct);
                    break;
            }

            ws.Abort();
        }

        // Every place is given back: the cap's worth of connections all work.
        await Eventually.WaitAsync(async () =>
        {
            var open = new List<RawWebSocket>();
            try
            {
                for (var i = 0; i < options.SubscriptionConnectionsPerClient; i++)
                {
                    var ws = await RawWebSocket.ConnectAsync(market.Url, "/mint/v1/ws", Ct);
                    open.Add(ws);
                    await ws.SendTextAsync("""{"jsonrpc":"2.0","id":1,"method":"unsubscribe","params":{"subId":"x"}}""", Ct);
                    if (JsonNode.Parse((await ws.ReceiveAsync(Ct))!.AsText)!["error"]!["code"]!.GetValue<int>() != HostileMintMessages.InvalidParams)
                    {
                        return (bool?)false;
                    }
                }

                return true;
            }
            finally
            {
                open.ForEach(w => w.Abort());
            }
        }, ok => ok == true, "every connection's place given back", cancellationToken: Ct);
        Assert.True(errors.Entries.Count == 0, "logged at Error:\n" + string.Join('\n', errors.Entries));
    }
}
