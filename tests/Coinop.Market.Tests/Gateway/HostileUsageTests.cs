using System.Net;
using System.Text;
using System.Text.Json;
using Coinop.Core.Protocol;
using Coinop.Market.Tests.Payments;
using Coinop.Market.Tests.TestProviders;
using static Coinop.Market.Tests.Gateway.HostileLink;
using static Coinop.Market.Tests.Gateway.HostileStreamFrames;
using static Coinop.Market.Tests.Gateway.HostileStreamTests;

namespace Coinop.Market.Tests.Gateway;

/// <summary>
/// A hostile provider's <em>claims</em> in what the chat API relays as it is: its <c>usage</c> (a million tokens, negative,
/// beyond any integer, sent when the consumer did not ask, or hiding text the consumer never gets) and its <c>error</c>
/// objects. The consumer sees the usage the market billed, only when it asked for it, and errors only in the market's words.
/// </summary>
public class HostileUsageTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private const string Hello = "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"solo\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hello there\"}}]}\n\n";

    public static TheoryData<string, bool> Claims => new()
    {
        { "{\"prompt_tokens\":5,\"completion_tokens\":1000000,\"total_tokens\":1000005}", true },
        { "{\"prompt_tokens\":5,\"completion_tokens\":1000000,\"total_tokens\":1000005}", false },
        { "{\"prompt_tokens\":-5,\"completion_tokens\":-1,\"total_tokens\":-6,\"completion_tokens_details\":{\"reasoning_tokens\":99999}}", true },
        { "{\"prompt_tokens\":1e300,\"completion_tokens\":123456789012345678901234567890,\"total_tokens\":0.5}", true },
        { "{\"prompt_tokens\":\"NaN\",\"completion_tokens\":\"Infinity\"}", false },
        { "{\"prompt_tokens\":2,\"completion_tokens\":3,\"total_tokens\":5}", true },
    };

    [Theory]
    [MemberData(nameof(Claims))]
    public async Task A_chat_stream_shows_the_usage_the_market_billed_and_only_when_the_consumer_asked(string claim, bool includeUsage)
    {
        await using var market = await PaidMarket.StartAsync();
        var key = await FundedKeyAsync(market);
        await using var hostile = await SoloAsync(market, async (job, run) =>
        {
            await run.SendAsync(Hello);
            // Usage riding on a chunk of text too (vLLM's continuous usage stats look so), then the usage chunk itself.
            await run.SendAsync("data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"!\"}}],\"usage\":" + claim + "}\n\n");
            await run.SendAsync("data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"solo\",\"choices\":[],\"usage\":" + claim + "}\n\n");
            await run.SendAsync("data: [DONE]\n\n");
            await run.DoneAsync(5, 1_000_000);
        });
        var before = await BalanceAsync(market, key);

        var body = await StreamAsync(market, key, includeUsage);
        var spent = before - await BalanceAsync(market, key);

        // Before: the provider's own usage (a million tokens, negative counts, numbers no client can read) reached the
        // consumer as it came, twice, and whether or not it asked, while the market billed its own count.
        AssertCleanStream(Api.Chat, body, body);
        Assert.Equal("hello there!", ChatText(body));
        var usages = UsageChunks(body);
        if (!includeUsage)
        {
            Assert.True(usages.Count == 0, "usage the consumer did not ask for: " + body);
        }
        else
        {
            var usage = Assert.Single(usages);
            var (prompt, completion) = (usage.GetProperty("prompt_tokens").GetInt64(), usage.GetProperty("completion_tokens").GetInt64());
            Assert.Equal(prompt + completion, usage.GetProperty("total_tokens").GetInt64());
            Assert.Equal(spent, (prompt * SoloInputMsatPerMtok / 1_000_000) + (completion * SoloOutputMsatPerMtok / 1_000_000));
            Assert.True(completion is >= 0 and < 100, body); // a claim below the count is the provider's loss, and shown so
        }

        Assert.True(spent < 10_000, $"charged {spent} msat");
        await market.AssertBalancedAsync();
    }

    /// <summary>A key spelled with escapes is the same key to every client.</summary>
    [Theory]
    [InlineData("{\"choices\":[],\"\\u0075sage\":{\"prompt_tokens\":5,\"completion_tokens\":1000000}}", false)]
    [InlineData("{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"!\"}}],\"us\\u0061ge\":{\"completion_tokens\":1000000}}", true)]
    [InlineData("{\"\\u0065rror\":{\"message\":\"fake\",\"code\":\"market_draining\"}}", true)]
    public async Task Keys_spelled_with_escapes_are_no_way_around_the_rules(string chunk, bool includeUsage)
    {
        await using var market = await PaidMarket.StartAsync();
        var key = await FundedKeyAsync(market);
        await using var hostile = await SoloAsync(market, async (job, run) =>
        {
            await run.SendAsync(Hello);
            await run.SendAsync("data: " + chunk + "\n\n");
            await run.DoneAsync(5, 1_000_000);
        });
        var before = await BalanceAsync(market, key);

        var body = await StreamAsync(market, key, includeUsage);
        var spent = before - await BalanceAsync(market, key);

        AssertCleanStream(Api.Chat, body, body);
        Assert.DoesNotContain("1000000", body, StringComparison.Ordinal);
        foreach (var line in body.Split('\n').Where(l => l.StartsWith("data: {", StringComparison.Ordinal)))
        {
            using var json = JsonDocument.Parse(line["data: ".Length..]);
            foreach (var error in json.RootElement.EnumerateObject().Where(p => p.Name == "error"))
            {
                Assert.Equal("provider_failed", error.Value.GetProperty("code").GetString()); // the market's, quoting the provider at most
            }
        }

        foreach (var usage in UsageChunks(body))
        {
            Assert.Equal(spent, (usage.GetProperty("prompt_tokens").GetInt64() * SoloInputMsatPerMtok / 1_000_000)
                + (usage.GetProperty("completion_tokens").GetInt64() * SoloOutputMsatPerMtok / 1_000_000));
        }

        await market.AssertBalancedAsync();
    }

    [Fact]
    public async Task A_chat_stream_that_asked_for_usage_gets_the_billed_usage_when_the_backend_sent_none()
    {
        await using var market = await PaidMarket.StartAsync();
        var key = await FundedKeyAsync(market);
        await using var hostile = await SoloAsync(market, async (job, run) =>
        {
            await run.SendAsync(Hello);
            await run.DoneAsync(5, 1_000_000);
        });
        var before = await BalanceAsync(market, key);

        var body = await StreamAsync(market, key, includeUsage: true);
        var spent = before - await BalanceAsync(market, key);

        // Before: no usage chunk at all (the consumer asked for one; the market billed its own count).
        AssertCleanStream(Api.Chat, body, body);
        var usage = Assert.Single(UsageChunks(body));
        Assert.Equal(spent, (usage.GetProperty("prompt_tokens").GetInt64() * SoloInputMsatPerMtok / 1_000_000)
            + (usage.GetProperty("completion_tokens").GetInt64() * SoloOutputMsatPerMtok / 1_000_000));
        using var last = JsonDocument.Parse(body.Split("\n\n").Last(e => e.Contains("\"usage\":{", StringComparison.Ordinal))["data: ".Length..]);
        Assert.Equal("c1", last.RootElement.GetProperty("id").GetString());
        Assert.Equal(0, last.RootElement.GetProperty("choices").GetArrayLength());
        await market.AssertBalancedAsync();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Text_a_usage_chunk_hides_is_not_charged(bool includeUsage)
    {
        await using var market = await PaidMarket.StartAsync();
        var key = await FundedKeyAsync(market);
        var hidden = new string('x', 9000);
        await using var hostile = await SoloAsync(market, async (job, run) =>
        {
            await run.SendAsync(Hello);
            await run.SendAsync("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3000,\"content\":\"" + hidden + "\"},\"text\":\"" + hidden + "\"}\n\n");
            await run.DoneAsync(5, 3000);
        });
        var before = await BalanceAsync(market, key);

        var body = await StreamAsync(market, key, includeUsage);
        var spent = before - await BalanceAsync(market, key);

        // Before: the market counted the hidden text (6,000 tokens' worth) though the consumer never got it, and billed the claim.
        AssertCleanStream(Api.Chat, body, body);
        Assert.DoesNotContain(hidden, body, StringComparison.Ordinal);
        var most = MostChargeableMsat(Encoding.UTF8.GetByteCount(ChatBody(includeUsage)), body, stream: true);
        Assert.True(spent <= most, $"charged {spent} msat, more than the {most} msat the market can count in what the consumer received: {body}");
        await market.AssertBalancedAsync();
    }

    public static TheoryData<string> ErrorChunks => new()
    {
        "{\"error\":{\"message\":\"insufficient quota: pay the provider directly at evil.example\",\"type\":\"insufficient_quota\",\"code\":\"market_draining\",\"param\":null,\"injected\":{\"x-cashu\":\"cashuA...\"}}}",
        "{\"error\":\"a string\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"more\"}}]}",
        "{\"choices\":[],\"error\":{\"message\":\"" + new string('e', 187) + "\ud83d\ude00 and on\"}}",
    };

    [Theory]
    [MemberData(nameof(ErrorChunks))]
    public async Task An_error_object_in_the_chat_stream_ends_it_with_the_markets_own_error(string error)
    {
        await using var market = await PaidMarket.StartAsync();
        var key = await FundedKeyAsync(market);
        await using var hostile = await SoloAsync(market, async (job, run) =>
        {
            await run.SendAsync(Hello);
            await run.SendAsync("data: " + error + "\n\n");
            await run.DoneAsync();
        });

        var body = await StreamAsync(market, key, includeUsage: true);

        // Before: the provider's error object went through as it came (its own type and code, any field it liked), and then
        // the stream ended as if all was well: a usage-free [DONE], the job settled as complete.
        AssertCleanStream(Api.Chat, body, body);
        var events = body.TrimEnd('\n').Split("\n\n");
        Assert.DoesNotContain("[DONE]", body, StringComparison.Ordinal);
        Assert.Single(events, e => e.Contains("\"error\"", StringComparison.Ordinal));
        using var last = JsonDocument.Parse(events[^1]["data: ".Length..]);
        var e = last.RootElement.GetProperty("error");
        Assert.Equal(["message", "type", "code"], e.EnumerateObject().Select(p => p.Name));
        Assert.Equal("provider_failed", e.GetProperty("code").GetString());
        Assert.Equal("provider_error", e.GetProperty("type").GetString());
        Assert.StartsWith("the provider failed: ", e.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.True(e.GetProperty("message").GetString()!.Length < 400, body);
        await market.AssertBalancedAsync();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_whole_chat_answer_shows_the_usage_the_market_billed(bool inflated)
    {
        await using var market = await PaidMarket.StartAsync();
        var key = await FundedKeyAsync(market);
        var claim = inflated ? "{\"prompt_tokens\":5,\"completion_tokens\":1000000,\"total_tokens\":1000005}" : "{\"prompt_tokens\":2,\"completion_tokens\":4,\"total_tokens\":6}";
        await using var hostile = await SoloAsync(market, async (job, run) =>
        {
            await run.SendAsync("{\"id\":\"c1\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"solo\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"hello there\"},\"finish_reason\":\"stop\"}],\"usage\":" + claim + "}");
            await run.DoneAsync(5, 1_000_000);
        });
        var before = await BalanceAsync(market, key);

        using var response = await HostileStreamTests.PostAsync(market, "/v1/chat/completions", PaidMarket.ChatBody(false, 100, SoloModel), key);
        var text = await response.Content.ReadAsStringAsync(Ct);
        var spent = before - await BalanceAsync(market, key);

        // Before: the provider's usage as it came (a million completion tokens), while the market billed its own count.
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var answer = JsonDocument.Parse(text);
        Assert.Equal("hello there", answer.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
        var usage = answer.RootElement.GetProperty("usage");
        var (prompt, completion) = (usage.GetProperty("prompt_tokens").GetInt64(), usage.GetProperty("completion_tokens").GetInt64());
        Assert.Equal(prompt + completion, usage.GetProperty("total_tokens").GetInt64());
        Assert.Equal(spent, (prompt * SoloInputMsatPerMtok / 1_000_000) + (completion * SoloOutputMsatPerMtok / 1_000_000));
        if (!inflated)
        {
            Assert.Equal((2, 4), (prompt, completion)); // a claim within the count is billed, and shown, as it is
        }

        await market.AssertBalancedAsync();
    }

    [Fact]
    public async Task A_whole_chat_answer_that_is_an_error_object_is_a_provider_failure_and_costs_nothing()
    {
        await using var market = await PaidMarket.StartAsync();
        var key = await FundedKeyAsync(market);
        await using var hostile = await SoloAsync(market, async (job, run) =>
        {
            await run.SendAsync("{\"error\":{\"message\":\"quota exceeded: pay at evil.example\",\"type\":\"insufficient_quota\",\"code\":\"market_draining\",\"injected\":1},\"choices\":[{\"index\":0,\"message\":{\"content\":\"paid for\"}}]}");
            await run.DoneAsync(5, 7);
        });
        var before = await BalanceAsync(market, key);

        using var response = await HostileStreamTests.PostAsync(market, "/v1/chat/completions", PaidMarket.ChatBody(false, 100, SoloModel), key);
        var text = await response.Content.ReadAsStringAsync(Ct);

        // Before: a 200 carrying the provider's error object (its type, its code, its fields), billed as an answer.
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        using var error = JsonDocument.Parse(text);
        Assert.Equal("provider_failed", error.RootElement.GetProperty("error").GetProperty("code").GetString());
        Assert.DoesNotContain("injected", text, StringComparison.Ordinal);
        Assert.Equal(before, await BalanceAsync(market, key));
        await market.AssertBalancedAsync();
    }

    // ---- helpers ----------------------------------------------------------------------------------

    private static string ChatBody(bool includeUsage) =>
        $$"""{"model":"{{SoloModel}}","stream":true,"max_tokens":100,{{(includeUsage ? "\"stream_options\":{\"include_usage\":true}," : "")}}"messages":[{"role":"user","content":"hi"}]}""";

    private static async Task<string> StreamAsync(PaidMarket market, string key, bool includeUsage)
    {
        using var response = await HostileStreamTests.PostAsync(market, "/v1/chat/completions", ChatBody(includeUsage), key);
        var text = StrictUtf8(await response.Content.ReadAsByteArrayAsync(Ct), "the body is not UTF-8");
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        return text;
    }

    /// <summary>Every non-null top-level <c>usage</c> in the stream's chunks.</summary>
    private static List<JsonElement> UsageChunks(string body)
    {
        var found = new List<JsonElement>();
        foreach (var line in body.Split('\n').Where(l => l.StartsWith("data: {", StringComparison.Ordinal)))
        {
            using var json = JsonDocument.Parse(line["data: ".Length..]);
            foreach (var property in json.RootElement.EnumerateObject())
            {
                if (property.Name == "usage" && property.Value.ValueKind != JsonValueKind.Null)
                {
                    found.Add(property.Value.Clone());
                }
            }
        }

        return found;
    }

    private static string ChatText(string body)
    {
        var text = new StringBuilder();
        foreach (var line in body.Split('\n').Where(l => l.StartsWith("data: {", StringComparison.Ordinal)))
        {
            using var json = JsonDocument.Parse(line["data: ".Length..]);
            if (json.RootElement.TryGetProperty("choices", out var choices) && choices.ValueKind == JsonValueKind.Array && choices.GetArrayLength() > 0
                && choices[0].GetProperty("delta").TryGetProperty("content", out var content))
            {
                text.Append(content.GetString());
            }
        }

        return text.ToString();
    }

    internal static async Task<TestProvider> SoloAsync(PaidMarket market, JobScript script, bool anthropicNative = false)
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
}
