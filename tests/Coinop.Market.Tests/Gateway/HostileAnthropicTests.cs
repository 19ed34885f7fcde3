using System.Net;
using System.Text;
using System.Text.Json;
using Coinop.Market.Tests.Payments;
using static Coinop.Market.Tests.Gateway.HostileLink;
using static Coinop.Market.Tests.Gateway.HostileStreamFrames;
using static Coinop.Market.Tests.Gateway.HostileStreamTests;
using static Coinop.Market.Tests.Gateway.HostileUsageTests;

namespace Coinop.Market.Tests.Gateway;

/// <summary>
/// A hostile provider's <em>claims</em> in what a native Anthropic backend's Messages output carries past the market, streamed
/// and whole: its <c>usage</c> (a million tokens, negative, beyond any integer, keys spelled with escapes, usage in an event
/// named as something else), text hidden where no client shows it, and its <c>error</c> events. The consumer sees the usage
/// the market billed, pays only for text it was shown, and sees errors only in the market's words.
/// </summary>
public class HostileAnthropicTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private const string Start = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"solo\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n";

    private const string Text = "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
        + "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hello\"}}\n\n"
        + "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" there\"}}\n\n"
        + "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n";

    private const string Stop = "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

    private static string MessageStart(string usage) =>
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"solo\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":" + usage + "}}\n\n";

    private static string MessageDelta(string usage) =>
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":" + usage + "}\n\n";

    public static TheoryData<string> Claims => new()
    {
        "{\"input_tokens\":5,\"output_tokens\":1000000}",
        "{\"input_tokens\":-5,\"output_tokens\":-1,\"cache_read_input_tokens\":99999}",
        "{\"input_tokens\":1e300,\"output_tokens\":123456789012345678901234567890}",
        "{\"input_tokens\":\"NaN\",\"output_tokens\":\"Infinity\"}",
        "{\"\\u0069nput_tokens\":1000000,\"\\u006futput_tokens\":1000000}",
        "{\"input_tokens\":2,\"output_tokens\":3}",
    };

    [Theory]
    [MemberData(nameof(Claims))]
    public async Task A_native_stream_shows_the_usage_the_market_billed(string claim)
    {
        await using var market = await PaidMarket.StartAsync();
        var key = await FundedKeyAsync(market);
        await using var hostile = await SoloAsync(market, async (job, run) =>
        {
            await run.SendAsync(MessageStart(claim));
            await run.SendAsync(Text);
            await run.SendAsync(MessageDelta(claim));
            await run.SendAsync(Stop);
            await run.DoneAsync(5, 1_000_000);
        }, anthropicNative: true);
        var before = await BalanceAsync(market, key);

        var body = await StreamAsync(market, key);
        var spent = before - await BalanceAsync(market, key);

        // Before: the provider's usage reached the consumer as it came (a million tokens, negative counts, numbers no client
        // can read, the provider's own input count or none), while the market billed its own count.
        AssertCleanStream(Api.MessagesNative, body, body);
        Assert.Equal("hello there", AnthropicText(body));
        var (input, output) = ShownUsage(body);
        Assert.Equal(spent, Msat(input, output));
        Assert.True(output is >= 0 and < 100, body); // a claim below the count is the provider's loss, and shown so
        if (claim == "{\"input_tokens\":2,\"output_tokens\":3}")
        {
            Assert.Equal((2, 3), (input, output)); // a claim within the count is billed, and shown, as it is
        }

        await market.AssertBalancedAsync();
    }

    /// <summary>
    /// Clients act on an event's <c>type</c> (the SSE name only picks what to parse), read keys spelled with escapes as the
    /// keys they spell, and keep the last of duplicate keys: none of these is a way around the usage shown.
    /// </summary>
    [Theory]
    [InlineData("event: content_block_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"input_tokens\":5,\"output_tokens\":1000000}}\n\n")]
    [InlineData("event: message_delta\ndata: {\"\\u0074ype\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"\\u0075sage\":{\"input_tokens\":5,\"output_tokens\":1000000}}\n\n")]
    [InlineData("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{},\"usage\":{\"output_tokens\":3},\"usage\":{\"output_tokens\":1000000}}\n\n")]
    [InlineData("data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"input_tokens\":5,\"output_tokens\":1000000}}\n\n")]
    [InlineData("event: ping\ndata: {\"type\":\"ping\",\"type\":\"message_delta\",\"usage\":{\"output_tokens\":1000000}}\n\n")]
    [InlineData("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"content\":[],\"\\u0075sage\":{\"input_tokens\":1000000,\"output_tokens\":1000000}},\"usage\":{\"output_tokens\":1000000}}\n\n")]
    public async Task Usage_in_disguise_is_no_way_around_the_usage_shown(string sseEvent)
    {
        await using var market = await PaidMarket.StartAsync();
        var key = await FundedKeyAsync(market);
        await using var hostile = await SoloAsync(market, async (job, run) =>
        {
            await run.SendAsync(Start);
            await run.SendAsync(Text);
            await run.SendAsync(sseEvent);
            await run.SendAsync(Stop);
            await run.DoneAsync(5, 1_000_000);
        }, anthropicNative: true);
        var before = await BalanceAsync(market, key);

        using var response = await PostAsync(market, "/v1/messages", MessagesBody(stream: true), key);
        var body = StrictUtf8(await response.Content.ReadAsByteArrayAsync(Ct), "the body is not UTF-8");
        var spent = before - await BalanceAsync(market, key);

        Assert.DoesNotContain("1000000", body, StringComparison.Ordinal);
        if (response.StatusCode == HttpStatusCode.OK)
        {
            AssertCleanStream(Api.MessagesNative, body, body);
            if (!body.Contains("event: error\n", StringComparison.Ordinal))
            {
                Assert.Equal(spent, Msat(ShownUsage(body)));
            }
        }

        Assert.True(spent < 10_000, $"charged {spent} msat");
        await market.AssertBalancedAsync();
    }

    [Fact]
    public async Task Text_hidden_where_no_client_shows_it_is_not_charged()
    {
        await using var market = await PaidMarket.StartAsync();
        var key = await FundedKeyAsync(market);
        var hidden = new string('x', 9000);
        await using var hostile = await SoloAsync(market, async (job, run) =>
        {
            await run.SendAsync(MessageStart("{\"input_tokens\":5,\"output_tokens\":1,\"text\":\"" + hidden + "\"}"));
            await run.SendAsync(Text);
            await run.SendAsync("event: ping\ndata: {\"type\":\"ping\",\"text\":\"" + hidden + "\"}\n\n");
            await run.SendAsync("event: x_note\ndata: {\"type\":\"x_note\",\"text\":\"" + hidden + "\"}\n\n");
            await run.SendAsync("data: {\"content\":\"" + hidden + "\"}\n\n");
            await run.SendAsync("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"text\":\"" + hidden + "\"},"
                + "\"usage\":{\"output_tokens\":3000,\"content\":\"" + hidden + "\"},\"thinking\":\"" + hidden + "\"}\n\n");
            await run.SendAsync(Stop);
            await run.DoneAsync(5, 3000);
        }, anthropicNative: true);
        var before = await BalanceAsync(market, key);

        var body = await StreamAsync(market, key);
        var spent = before - await BalanceAsync(market, key);

        // Before: every piece went out as it came, in usage objects and events no client shows, and the market counted it
        // all (15,000 tokens' worth): the provider's claim of 3,000 was billed.
        AssertCleanStream(Api.MessagesNative, body, body);
        Assert.Equal("hello there", AnthropicText(body));
        Assert.DoesNotContain(hidden, body, StringComparison.Ordinal);
        var most = MostChargeableMsat(Encoding.UTF8.GetByteCount(MessagesBody(stream: true)), body, stream: true);
        Assert.True(spent <= most, $"charged {spent} msat, more than the {most} msat the market can count in what the consumer received: {body}");
        Assert.Equal(spent, Msat(ShownUsage(body)));
        await market.AssertBalancedAsync();
    }

    /// <summary>Text a content block starts with is text the consumer is shown: a broken stream charges it as it charges a delta.</summary>
    [Fact]
    public async Task Text_a_content_block_starts_with_is_charged_as_text_when_the_stream_breaks()
    {
        await using var market = await PaidMarket.StartAsync();
        var key = await FundedKeyAsync(market);
        var inStart = true;
        await using var hostile = await SoloAsync(market, async (job, run) =>
        {
            await run.SendAsync(Start);
            await run.SendAsync(inStart
                ? "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"all of it here\"}}\n\n"
                : "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
                    + "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"all of it here\"}}\n\n");
            await run.ErrorAsync(Coinop.Core.Protocol.JobErrorCodes.Internal, "broke", outputSent: true);
        }, anthropicNative: true);

        var charges = new List<long>();
        foreach (var start in new[] { true, false })
        {
            inStart = start;
            var before = await BalanceAsync(market, key);
            using var response = await PostAsync(market, "/v1/messages", MessagesBody(stream: true), key);
            var body = await response.Content.ReadAsStringAsync(Ct);
            AssertCleanStream(Api.MessagesNative, body, body);
            Assert.EndsWith("event: error", body.TrimEnd('\n').Split("\n\n")[^1].Split('\n')[0], StringComparison.Ordinal);
            charges.Add(before - await BalanceAsync(market, key));
        }

        // Before: the same text, shown to the consumer, was charged as a delta but not as the block's start.
        Assert.Equal(charges[1], charges[0]);
        await market.AssertBalancedAsync();
    }

    public static TheoryData<string> ErrorEvents => new()
    {
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"overloaded: pay the provider directly at evil.example\",\"injected\":{\"x-cashu\":\"cashuA...\"}}}\n\n",
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"message\":\"" + new string('e', 187) + "\\ud83d\\ude00 and on\"}}\n\n",
        "data: {\"\\u0074ype\":\"error\",\"error\":{\"type\":\"billing_error\",\"message\":\"nameless\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"misnamed\"}}\n\n",
    };

    [Theory]
    [MemberData(nameof(ErrorEvents))]
    public async Task An_error_event_in_a_native_stream_ends_it_with_the_markets_own_error(string error)
    {
        await using var market = await PaidMarket.StartAsync();
        var key = await FundedKeyAsync(market);
        await using var hostile = await SoloAsync(market, async (job, run) =>
        {
            await run.SendAsync(Start);
            await run.SendAsync(Text);
            await run.SendAsync(error);
            await run.SendAsync(MessageDelta("{\"output_tokens\":4}"));
            await run.SendAsync(Stop);
            await run.DoneAsync(5, 4);
        }, anthropicNative: true);
        var before = await BalanceAsync(market, key);

        var body = await StreamAsync(market, key);
        var spent = before - await BalanceAsync(market, key);

        // Before: the provider's error event went through as it came (its type, its message, any field it liked), and then
        // the stream went on and ended as if all was well: message_stop, the job settled and billed as complete.
        AssertCleanStream(Api.MessagesNative, body, body);
        var events = body.TrimEnd('\n').Split("\n\n");
        Assert.DoesNotContain("message_stop", body, StringComparison.Ordinal);
        Assert.Single(events, e => e.Contains("\"error\"", StringComparison.Ordinal));
        Assert.Equal("event: error", events[^1].Split('\n')[0]);
        using var last = JsonDocument.Parse(events[^1].Split('\n')[1]["data: ".Length..]);
        Assert.Equal(["type", "error"], last.RootElement.EnumerateObject().Select(p => p.Name));
        var e = last.RootElement.GetProperty("error");
        Assert.Equal(["type", "message"], e.EnumerateObject().Select(p => p.Name));
        Assert.Equal("api_error", e.GetProperty("type").GetString());
        Assert.StartsWith("the provider failed: ", e.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.True(e.GetProperty("message").GetString()!.Length < 400, body);
        var most = MostChargeableMsat(Encoding.UTF8.GetByteCount(MessagesBody(stream: true)), body, stream: true);
        Assert.True(spent <= most, $"charged {spent} msat for a broken stream: {body}");
        await market.AssertBalancedAsync();
    }

    [Fact]
    public async Task An_error_event_before_any_output_is_a_provider_failure_and_costs_nothing()
    {
        await using var market = await PaidMarket.StartAsync();
        var key = await FundedKeyAsync(market);
        await using var hostile = await SoloAsync(market, async (job, run) =>
        {
            await run.SendAsync("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"pay at evil.example\"}}\n\n");
            await run.SendAsync(Stop);
            await run.DoneAsync(5, 4);
        }, anthropicNative: true);
        var before = await BalanceAsync(market, key);

        using var response = await PostAsync(market, "/v1/messages", MessagesBody(stream: true), key);
        var text = await response.Content.ReadAsStringAsync(Ct);

        // Before: a 200 stream of the provider's error and the market's message_stop, billed as a complete message.
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        using var error = JsonDocument.Parse(text);
        Assert.Equal("error", error.RootElement.GetProperty("type").GetString());
        Assert.Equal("api_error", error.RootElement.GetProperty("error").GetProperty("type").GetString()); // the market's, quoting the provider at most
        Assert.StartsWith("the provider failed: ", error.RootElement.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal(before, await BalanceAsync(market, key));
        await market.AssertBalancedAsync();
    }

    public static TheoryData<string, bool> WholeClaims => new()
    {
        { "{\"input_tokens\":5,\"output_tokens\":1000000,\"cache_read_input_tokens\":99999}", false },
        { "{\"input_tokens\":-5,\"output_tokens\":1e300}", false },
        { "{\"\\u0069nput_tokens\":1000000,\"output_tokens\":\"NaN\"}", false },
        { "{\"input_tokens\":2,\"output_tokens\":3000,\"text\":\"" + new string('x', 9000) + "\"}", false },
        { "{\"input_tokens\":2,\"output_tokens\":4}", true },
    };

    [Theory]
    [MemberData(nameof(WholeClaims))]
    public async Task A_whole_native_answer_shows_the_usage_the_market_billed(string claim, bool honest)
    {
        await using var market = await PaidMarket.StartAsync();
        var key = await FundedKeyAsync(market);
        await using var hostile = await SoloAsync(market, async (job, run) =>
        {
            await run.SendAsync("{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"solo\",\"content\":[{\"type\":\"text\",\"text\":\"hello there\"}],"
                + "\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"usage\":" + claim + "}");
            await run.DoneAsync(5, 1_000_000);
        }, anthropicNative: true);
        var before = await BalanceAsync(market, key);

        using var response = await PostAsync(market, "/v1/messages", MessagesBody(stream: false), key);
        var text = await response.Content.ReadAsStringAsync(Ct);
        var spent = before - await BalanceAsync(market, key);

        // Before: the provider's usage as it came (a million output tokens, numbers no client reads, text hidden in it), while
        // the market billed its own count, counting the hidden text as output.
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var answer = JsonDocument.Parse(text);
        Assert.Equal("hello there", answer.RootElement.GetProperty("content")[0].GetProperty("text").GetString());
        var usage = answer.RootElement.GetProperty("usage");
        var (input, output) = (usage.GetProperty("input_tokens").GetInt64(), usage.GetProperty("output_tokens").GetInt64());
        Assert.Equal(spent, Msat(input, output));
        Assert.Equal(0, usage.GetProperty("cache_read_input_tokens").GetInt64());
        Assert.DoesNotContain("xxxx", text, StringComparison.Ordinal);
        Assert.True(output is >= 0 and < 100, text);
        if (honest)
        {
            Assert.Equal((2, 4), (input, output));
        }

        await market.AssertBalancedAsync();
    }

    [Theory]
    [InlineData("{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"quota exceeded: pay at evil.example\"},\"content\":[{\"type\":\"text\",\"text\":\"paid for\"}]}")]
    [InlineData("{\"\\u0074ype\":\"error\",\"\\u0065rror\":{\"type\":\"api_error\",\"message\":\"pay at evil.example\"}}")]
    [InlineData("{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":\"paid for\"}],\"error\":{\"message\":\"pay at evil.example\"}}")]
    public async Task A_whole_native_answer_that_is_an_error_is_a_provider_failure_and_costs_nothing(string answer)
    {
        await using var market = await PaidMarket.StartAsync();
        var key = await FundedKeyAsync(market);
        await using var hostile = await SoloAsync(market, async (job, run) =>
        {
            await run.SendAsync(answer);
            await run.DoneAsync(5, 7);
        }, anthropicNative: true);
        var before = await BalanceAsync(market, key);

        using var response = await PostAsync(market, "/v1/messages", MessagesBody(stream: false), key);
        var text = await response.Content.ReadAsStringAsync(Ct);

        // Before: a 200 carrying the provider's error (its type, its message), billed as an answer.
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        using var error = JsonDocument.Parse(text);
        Assert.Equal("error", error.RootElement.GetProperty("type").GetString());
        Assert.Equal("api_error", error.RootElement.GetProperty("error").GetProperty("type").GetString());
        Assert.DoesNotContain("evil.example", text, StringComparison.Ordinal);
        Assert.Equal(before, await BalanceAsync(market, key));
        await market.AssertBalancedAsync();
    }

    // ---- helpers ----------------------------------------------------------------------------------

    private static string MessagesBody(bool stream) =>
        $$"""{"model":"{{SoloModel}}","max_tokens":100,"stream":{{(stream ? "true" : "false")}},"messages":[{"role":"user","content":"hi"}]}""";

    private static long Msat(long input, long output) => (input * SoloInputMsatPerMtok / 1_000_000) + (output * SoloOutputMsatPerMtok / 1_000_000);

    private static long Msat((long Input, long Output) usage) => Msat(usage.Input, usage.Output);

    private static async Task<string> StreamAsync(PaidMarket market, string key)
    {
        using var response = await PostAsync(market, "/v1/messages", MessagesBody(stream: true), key);
        var text = StrictUtf8(await response.Content.ReadAsByteArrayAsync(Ct), "the body is not UTF-8");
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        return text;
    }

    private static IEnumerable<(string Name, JsonDocument Data)> Events(string body)
    {
        foreach (var sseEvent in body.TrimEnd('\n').Split("\n\n"))
        {
            var lines = sseEvent.Split('\n');
            var name = lines.FirstOrDefault(l => l.StartsWith("event: ", StringComparison.Ordinal))?["event: ".Length..] ?? "";
            var data = lines.FirstOrDefault(l => l.StartsWith("data: ", StringComparison.Ordinal));
            if (data is not null)
            {
                yield return (name, JsonDocument.Parse(data["data: ".Length..]));
            }
        }
    }

    /// <summary>
    /// The usage an Anthropic client ends up with: <c>message_start</c>'s, with what the one <c>message_delta</c> says
    /// written over it. Every usage figure anywhere in the stream is a non-negative integer, and no event's name and type differ.
    /// </summary>
    private static (long Input, long Output) ShownUsage(string body)
    {
        long input = -1, output = -1;
        var deltas = 0;
        foreach (var (name, data) in Events(body))
        {
            using (data)
            {
                var root = data.RootElement;
                Assert.Equal(name, root.GetProperty("type").GetString());
                foreach (var usage in Usages(root))
                {
                    foreach (var figure in usage.EnumerateObject())
                    {
                        Assert.True(figure.Value.ValueKind == JsonValueKind.Number && figure.Value.TryGetInt64(out var n) && n >= 0, $"usage {usage} in {body}");
                    }
                }

                if (name == "message_start")
                {
                    var usage = root.GetProperty("message").GetProperty("usage");
                    (input, output) = (usage.GetProperty("input_tokens").GetInt64(), usage.GetProperty("output_tokens").GetInt64());
                }
                else if (name == "message_delta")
                {
                    deltas++;
                    var usage = root.GetProperty("usage");
                    output = usage.GetProperty("output_tokens").GetInt64();
                    input = usage.TryGetProperty("input_tokens", out var i) ? i.GetInt64() : input;
                }
            }
        }

        Assert.True(deltas == 1, "message_delta events: " + deltas + " in " + body);
        return (input, output);
    }

    private static IEnumerable<JsonElement> Usages(JsonElement root)
    {
        foreach (var p in root.EnumerateObject())
        {
            if (p.Name == "usage" && p.Value.ValueKind != JsonValueKind.Null)
            {
                yield return p.Value;
            }
            else if (p.Name == "message" && p.Value.ValueKind == JsonValueKind.Object && p.Value.TryGetProperty("usage", out var u))
            {
                yield return u;
            }
        }
    }

    private static string AnthropicText(string body)
    {
        var text = new StringBuilder();
        foreach (var (name, data) in Events(body))
        {
            using (data)
            {
                if (name == "content_block_delta" && data.RootElement.GetProperty("delta").TryGetProperty("text", out var t))
                {
                    text.Append(t.GetString());
                }
            }
        }

        return text.ToString();
    }
}
