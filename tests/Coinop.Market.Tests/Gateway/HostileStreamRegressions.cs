using System.Net;
using System.Text;
using System.Text.Json;
using Coinop.Core.Protocol;
using Coinop.Market.Inference.Chat;
using Coinop.Market.Tests.Payments;
using Coinop.Market.Tests.TestProviders;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using static Coinop.Market.Tests.Gateway.HostileLink;
using static Coinop.Market.Tests.Gateway.HostileStreamFrames;
using static Coinop.Market.Tests.Gateway.HostileStreamTests;

namespace Coinop.Market.Tests.Gateway;

/// <summary>
/// Each failure <see cref="HostileStreamTests"/> found, kept as a plain case: a hostile provider's output reaches the
/// consumer as a clean answer or a clean error, and is charged only as far as the market can count it.
/// </summary>
public class HostileStreamRegressions
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private const string Hello = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hello\"}}]}\n\n";

    public static TheoryData<Api, string> BadUnicode => new()
    {
        { Api.Chat, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\\ud800b\"}}]}" },
        { Api.Messages, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\\ud800b\"}}]}" },
        { Api.Responses, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\\udc00\"}}]}" },
        { Api.Chat, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x" + RawMarker + "y\"}}]}" },
        { Api.Messages, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x" + RawMarker + "y\"}}]}" },
        { Api.Responses, "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"" + RawMarker + "\",\"function\":{\"name\":\"f\"}}]}}]}" },
        { Api.Messages, "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\\ud800\"}]}" },
        { Api.Chat, "{\"\\ud800\":1,\"choices\":[]}" },
    };

    [Theory]
    [MemberData(nameof(BadUnicode))]
    public async Task An_unpaired_surrogate_or_bytes_that_are_not_UTF8_end_a_started_stream_with_a_clean_error_event(Api api, string data)
    {
        await using var market = await PaidMarket.StartAsync();
        var key = await FundedKeyAsync(market);
        await using var hostile = await SoloAsync(market, async (job, run) =>
        {
            await run.SendAsync(Hello);
            // The bad character straddles two frames.
            var bytes = Bytes("data: " + data + "\n\n");
            await run.SendAsync(bytes.AsMemory(0, bytes.Length / 2));
            await run.SendAsync(bytes.AsMemory(bytes.Length / 2));
            await run.DoneAsync();
        });

        // Before: a 500 from the error middleware, or the stream aborted, or bytes that are not UTF-8 relayed as they came.
        var (status, body) = await PostAsync(market, api, key, stream: true);
        Assert.Equal(HttpStatusCode.OK, status);
        AssertCleanStream(api, body, body);
        AssertEndsWithError(api, body);
        await market.AssertBalancedAsync();
    }

    [Theory]
    [InlineData("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"a\\ud800\"}}\n\n")]
    [InlineData("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"" + RawMarker + "\"}}\n\n")]
    [InlineData("event: content_block_delta\u0001\u00ff\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n")]
    public async Task A_native_Anthropic_stream_with_bad_unicode_or_a_bad_event_name_ends_with_a_clean_error_event(string bad)
    {
        await using var market = await PaidMarket.StartAsync();
        var key = await FundedKeyAsync(market);
        await using var hostile = await SoloAsync(market, async (job, run) =>
        {
            await run.SendAsync("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n");
            await run.SendAsync(Bytes(bad));
            await run.DoneAsync();
        }, anthropicNative: true);

        // Before: the count threw (the stream was aborted) or the bytes went through as they came.
        var (status, body) = await PostAsync(market, Api.MessagesNative, key, stream: true);
        Assert.Equal(HttpStatusCode.OK, status);
        AssertCleanStream(Api.MessagesNative, body, body);
        AssertEndsWithError(Api.MessagesNative, body);
        Assert.DoesNotContain('\u0001', body);
        await market.AssertBalancedAsync();
    }

    public static TheoryData<Api, string> BadWholeAnswers => new()
    {
        { Api.Chat, "{\"choices\":[{\"index\":0,\"message\":{\"content\":\"a\\ud800b\"}}]}" },
        { Api.Messages, "{\"choices\":[{\"index\":0,\"message\":{\"content\":\"x" + RawMarker + "\"}}]}" },
        { Api.Responses, "{\"choices\":[{\"index\":0,\"message\":{\"content\":\"ok\",\"tool_calls\":[{\"id\":\"\\udc00\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}}]}" },
        { Api.Chat, "{\"choices\":[{\"index\":0,\"message\":{\"content\":\"ok\",\"tool_calls\":[{\"function\":{\"name\":\"f\",\"input\":{\"k\":\"\\ud800\"}}}]}}]}" },
        { Api.Messages, "{\"choices\":[{\"index\":0,\"message\":{\"content\":\"ok\"},\"finish_reason\":\"" + RawMarker + "\"}]}" },
    };

    [Theory]
    [MemberData(nameof(BadWholeAnswers))]
    public async Task A_whole_answer_with_an_unpaired_surrogate_or_bytes_that_are_not_UTF8_is_a_provider_failure_and_costs_nothing(Api api, string answer)
    {
        await using var market = await PaidMarket.StartAsync();
        var key = await FundedKeyAsync(market);
        await using var hostile = await SoloAsync(market, async (job, run) =>
        {
            await run.SendAsync(Bytes(answer));
            await run.DoneAsync();
        });
        var before = await BalanceAsync(market, key);

        // Before: a 500 (the translation or the count threw), or a 200 carrying bytes that are not UTF-8, billed.
        var (status, body) = await PostAsync(market, api, key, stream: false);
        Assert.Equal(HttpStatusCode.BadGateway, status);
        Assert.True(Json(body)?.RootElement.TryGetProperty("error", out _) == true, body);
        Assert.Equal(before, await BalanceAsync(market, key));
        await market.AssertBalancedAsync();
    }

    [Fact]
    public async Task Events_framed_oddly_reach_the_chat_consumer_as_their_data_lines_only()
    {
        await using var market = await PaidMarket.StartAsync();
        var key = await FundedKeyAsync(market);
        await using var hostile = await SoloAsync(market, async (job, run) =>
        {
            await run.SendAsync(": a comment\n\n");
            await run.SendAsync("id: 7\nretry: 1\ndata:{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"one\"}}]}\r\n\r\n");
            await run.SendAsync("event: message_stop\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" two\"}}]}\n\n");
            await run.SendAsync("{\"choices\":[{\"index\":0,\"delta\":{\"content\":\" never\"}}]}\n\n");
            await run.SendAsync("data: [DONE]\n\ndata: [DONE]\n\n");
            await run.SendAsync("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" three\"}}]}\n\n");
            await run.DoneAsync();
        });

        // Before: the provider's own framing went through (CRs, id and event fields, a line without a field).
        var (status, body) = await PostAsync(market, Api.Chat, key, stream: true);
        Assert.Equal(HttpStatusCode.OK, status);
        AssertCleanStream(Api.Chat, body, body);
        Assert.Equal("one two three", ChatText(body));
        Assert.DoesNotContain("event:", body, StringComparison.Ordinal);
        Assert.DoesNotContain("id: 7", body, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("data: 42\n\n")]
    [InlineData("data: [1,2]\n\n")]
    [InlineData("data: {\"choices\":[]} {}\n\n")]
    [InlineData("data: {\"choices\":\r[{\"index\":0,\"delta\":{\"content\":\"cr inside\"}}]}\n\n")]
    [InlineData("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"cr\"}}]\r}\r\r")]
    [InlineData("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"never ended\"}}]")]
    public async Task Data_that_is_not_one_JSON_object_on_one_line_ends_the_chat_stream_with_an_error(string output)
    {
        await using var market = await PaidMarket.StartAsync();
        var key = await FundedKeyAsync(market);
        await using var hostile = await SoloAsync(market, async (job, run) =>
        {
            await run.SendAsync(Hello);
            await run.SendAsync(output);
            await run.DoneAsync();
        });

        // Before: relayed as it came, then the market's [DONE] after it: a stream a client cannot parse, billed as whole.
        var (status, body) = await PostAsync(market, Api.Chat, key, stream: true);
        Assert.Equal(HttpStatusCode.OK, status);
        AssertCleanStream(Api.Chat, body, body);
        AssertEndsWithError(Api.Chat, body);
    }

    [Theory]
    [InlineData(Api.Chat, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\\ud800\"}}]}\n\n")]
    [InlineData(Api.Messages, "data: {\"error\":{\"message\":\"the backend broke\"}}\n\n")]
    [InlineData(Api.Responses, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]\n\n")]
    public async Task A_first_frame_whose_later_event_is_bad_ends_the_started_stream_with_its_error_event(Api api, string bad)
    {
        await using var market = await PaidMarket.StartAsync();
        var key = await FundedKeyAsync(market);
        // One frame: a good event (written to the consumer's response, not yet flushed), then a bad one.
        await using var hostile = await SoloAsync(market, async (job, run) =>
        {
            await run.SendAsync(Hello + bad);
            await run.DoneAsync();
        });

        // Before: the job counted as not started (nothing flushed) and was retried; with no other provider the stream just
        // stopped after "hello", with neither its end nor an error (another provider's answer would have followed it).
        var (status, body) = await PostAsync(market, api, key, stream: true);
        Assert.Equal(HttpStatusCode.OK, status);
        AssertCleanStream(api, body, body);
        AssertEndsWithError(api, body);
        await market.AssertBalancedAsync();
    }

    [Fact]
    public async Task A_broken_stream_is_charged_no_more_than_the_market_counts_in_what_it_relayed()
    {
        // Twenty events, each starting five tool calls by name alone (pieces of output, but no text), then a failure.
        // Before: charged a token per tool call started (100, at the 100-token reservation), though the market counted none.
        var events = Enumerable.Range(0, 20).Select(e => "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":["
            + string.Join(',', Enumerable.Range(e * 5, 5).Select(i => $"{{\"index\":{i},\"id\":\"call_{i}\",\"function\":{{\"name\":\"f\"}}}}")) + "]}}]}\n\n");
        await AssertBrokenStreamChargedWithinWhatWasReceivedAsync(Api.Responses, [.. events]);
    }

    [Theory]
    [InlineData(Api.Responses)]
    [InlineData(Api.Messages)]
    [InlineData(Api.Chat)]
    public async Task A_stream_cut_short_after_its_text_is_charged_no_more_than_the_consumer_received(Api api)
    {
        static string Delta(string delta, string extra = "") =>
            $"data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":null}}]{extra}}}\n\n";
        // The sample HostileStreamTests found (seed 2pmmzYTgKLfq): text, 78 tool calls started by name alone, a tool call
        // at index -1, 200,000 characters of text and a failure. The charge was right; the check had not counted the
        // text a Responses stream cut short carries only in its delta events.
        await AssertBrokenStreamChargedWithinWhatWasReceivedAsync(api,
        [
            Delta("{\"content\":\"fc1Irl\"}"),
            Delta("{\"tool_calls\":[" + string.Join(',', Enumerable.Range(0, 78).Select(i => $"{{\"index\":{i * 7919},\"function\":{{\"name\":\"n\"}}}}")) + "]}"),
            Delta("{\"tool_calls\":[{\"index\":-1,\"id\":\"x\",\"function\":{\"name\":\"g\",\"arguments\":\"{}\"}}]}"),
            Delta("{\"content\":\"" + new string('b', 200_000) + "\"}"),
            Delta("{}", ",\"finish_reason\":\"stop\""),
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7}}\n\n",
        ]);
    }

    /// <summary>The provider streams <paramref name="events"/> and fails: the consumer pays at most for what it received.</summary>
    private static async Task AssertBrokenStreamChargedWithinWhatWasReceivedAsync(Api api, string[] events)
    {
        await using var market = await PaidMarket.StartAsync();
        var key = await FundedKeyAsync(market);
        await using var hostile = await SoloAsync(market, async (job, run) =>
        {
            foreach (var e in events)
            {
                await run.SendAsync(e);
            }

            await run.ErrorAsync(JobErrorCodes.Internal, "gone", outputSent: true);
        });
        var before = await BalanceAsync(market, key);

        var (status, body) = await PostAsync(market, api, key, stream: true);
        var spent = before - await BalanceAsync(market, key);
        Assert.Equal(HttpStatusCode.OK, status);
        var (_, request) = Request(api, stream: true);
        var most = MostChargeableMsat(Encoding.UTF8.GetByteCount(request), body, stream: true);
        Assert.True(spent <= most, $"charged {spent} msat, more than the {most} the market can count in what the consumer received: {Shorten(body)}");
        await market.AssertBalancedAsync();
    }

    [Fact]
    public async Task More_tool_calls_than_an_answer_makes_end_the_stream_with_an_error()
    {
        await using var market = await PaidMarket.StartAsync();
        var key = await FundedKeyAsync(market);
        // One event of thousands of tool calls, each under a new index: work and memory per index, quadratic before.
        var calls = string.Join(',', Enumerable.Range(0, 20_000).Select(i => $"{{\"index\":{i},\"function\":{{\"name\":\"n\"}}}}"));
        await using var hostile = await SoloAsync(market, async (job, run) =>
        {
            await run.SendAsync(Hello);
            await run.SendAsync("data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[" + calls + "]}}]}\n\n");
            await run.DoneAsync();
        });

        var (status, body) = await PostAsync(market, Api.Messages, key, stream: true);
        Assert.Equal(HttpStatusCode.OK, status);
        AssertCleanStream(Api.Messages, body, Shorten(body));
        AssertEndsWithError(Api.Messages, body);
        Assert.True(body.Split("event: content_block_start\n").Length - 1 <= ChatStreamReader.MaxToolCalls + 1, "blocks beyond the bound");
        await market.AssertBalancedAsync();
    }

    [Fact]
    public async Task Arguments_of_a_tool_call_that_never_names_itself_are_held_only_so_far()
    {
        await using var market = await PaidMarket.StartAsync();
        var key = await FundedKeyAsync(market);
        var piece = "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"" + new string('a', 300_000) + "\"}}]}}]}\n\n";
        await using var hostile = await SoloAsync(market, async (job, run) =>
        {
            await run.SendAsync(Hello);
            for (var i = 0; i < 5; i++)
            {
                await run.SendAsync(piece);
            }

            await run.DoneAsync();
        });

        // Before: every piece was held (and kept again for the whole stream) until the end started the call unnamed.
        var (status, body) = await PostAsync(market, Api.Messages, key, stream: true);
        Assert.Equal(HttpStatusCode.OK, status);
        AssertCleanStream(Api.Messages, body, Shorten(body));
        AssertEndsWithError(Api.Messages, body);
        await market.AssertBalancedAsync();
    }

    [Fact]
    public async Task A_streamed_response_keeps_no_more_text_than_a_whole_answer_may_have()
    {
        await using var market = await PaidMarket.StartAsync(builder: b => b.Services.Configure<Coinop.Market.Inference.InferenceOptions>(o => o.MaxBufferedResponseBytes = 64 * 1024));
        var key = await FundedKeyAsync(market);
        var piece = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" + new string('t', 10_000) + "\"}}]}\n\n";
        await using var hostile = await SoloAsync(market, async (job, run) =>
        {
            for (var i = 0; i < 10; i++)
            {
                await run.SendAsync(piece);
            }

            await run.DoneAsync();
        });

        // Before: the draft kept all of it, however long the stream ran (a response is stored whole).
        var (status, body) = await PostAsync(market, Api.Responses, key, stream: true);
        Assert.Equal(HttpStatusCode.OK, status);
        AssertCleanStream(Api.Responses, body, Shorten(body));
        AssertEndsWithError(Api.Responses, body);
        await market.AssertBalancedAsync();
    }

    [Theory]
    [InlineData(Api.Chat)]
    [InlineData(Api.Messages)]
    [InlineData(Api.Responses)]
    public async Task A_stream_that_never_ends_is_ended_by_the_deadline_with_an_error_event(Api api)
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var market = await MarketUnderTest.StartAsync(o => o.HeartbeatMinTtl = TimeSpan.FromMinutes(10),
            builder: b => b.Services.AddSingleton<TimeProvider>(time), cancellationToken: Ct);
        await using var hostile = await TestProvider.ConnectAsync(market.Url, "endless", cancellationToken: Ct);
        // Some output, then neither more nor an end. (Not output without end: the consumer below stops reading while the
        // clock moves 31 s, and a write left pending that long had the connection reset now and then.)
        hostile.Script = async (job, run) =>
        {
            await run.SendAsync(Hello);
            await Task.Delay(Timeout.Infinite, run.Cancelled).ContinueWith(_ => { }, TaskScheduler.Default);
        };
        await hostile.OfferAsync(Ct, 8, new ModelOffer(SoloModel, "vllm", 0, 0, 8192, 8));
        var (path, body) = Request(api, stream: true);
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Add("X-Coinop-Timeout", "30");

        using var response = await market.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, Ct);
        await using var stream = await response.Content.ReadAsStreamAsync(Ct);
        var first = new byte[1];
        Assert.Equal(1, await stream.ReadAsync(first, Ct)); // the stream is under way
        time.Advance(TimeSpan.FromSeconds(31));
        using var rest = new MemoryStream();
        await stream.CopyToAsync(rest, Ct).WaitAsync(TimeSpan.FromSeconds(60), Ct);

        var text = Encoding.UTF8.GetString(first) + Encoding.UTF8.GetString(rest.ToArray());
        AssertCleanStream(api, text, Shorten(text));
        AssertEndsWithError(api, text);
        Assert.Contains("deadline passed", text.TrimEnd('\n').Split("\n\n")[^1], StringComparison.Ordinal);
        Assert.Equal("deadline", (await hostile.WaitForAsync<JobCancel>(_ => true).WaitAsync(TimeSpan.FromSeconds(30), Ct)).Reason);
    }

    // ---- helpers ----------------------------------------------------------------------------------

    private static byte[] Bytes(string text) =>
        new Attack([text], [], Ending.Done, 0, 0) { Raw = [0xff, 0xfe] }.Bytes;

    private static async Task<TestProvider> SoloAsync(PaidMarket market, JobScript script, bool anthropicNative = false)
    {
        var hostile = await TestProvider.ConnectAsync(market.Url, "hostile", cancellationToken: Ct);
        hostile.Script = async (job, run) =>
        {
            try
            {
                await script(job, run);
            }
            catch (OperationCanceledException) when (run.Cancelled.IsCancellationRequested)
            {
                // The market cancelled the attempt (bad output).
            }
        };
        await hostile.OfferAsync(Ct, 8, new ModelOffer(SoloModel, "vllm", SoloInputMsatPerMtok, SoloOutputMsatPerMtok, 8192, 8, AnthropicNative: anthropicNative));
        return hostile;
    }

    private static async Task<(HttpStatusCode Status, string Body)> PostAsync(PaidMarket market, Api api, string key, bool stream)
    {
        var (path, body) = Request(api, stream);
        using var response = await HostileStreamTests.PostAsync(market, path, body, key);
        var text = StrictUtf8(await response.Content.ReadAsByteArrayAsync(Ct), "the body is not UTF-8");
        return (response.StatusCode, text);
    }

    private static void AssertEndsWithError(Api api, string body)
    {
        var last = body.TrimEnd('\n').Split("\n\n")[^1];
        switch (api)
        {
            case Api.Chat:
                Assert.StartsWith("data: {\"error\":", last, StringComparison.Ordinal);
                Assert.DoesNotContain("[DONE]", body, StringComparison.Ordinal);
                break;
            default:
                Assert.StartsWith("event: error\n", last, StringComparison.Ordinal);
                break;
        }
    }

    private static string ChatText(string body)
    {
        var text = new StringBuilder();
        foreach (var line in body.Split('\n').Where(l => l.StartsWith("data: {", StringComparison.Ordinal)))
        {
            using var json = JsonDocument.Parse(line["data: ".Length..]);
            if (json.RootElement.TryGetProperty("choices", out var choices) && choices.GetArrayLength() > 0
                && choices[0].GetProperty("delta").TryGetProperty("content", out var content))
            {
                text.Append(content.GetString());
            }
        }

        return text.ToString();
    }
}
