using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Coinop.Core.Protocol;
using Coinop.Market.Tests.Payments;
using Coinop.Market.Tests.TestProviders;
using Coinop.Storage.Ledger;
using CsCheck;
using Microsoft.Extensions.DependencyInjection;
using static Coinop.Market.Tests.Gateway.HostileLink;
using static Coinop.Market.Tests.Gateway.HostileStreamFrames;

namespace Coinop.Market.Tests.Gateway;

/// <summary>
/// A hostile provider's output, fuzzed through all three consumer APIs (chat relayed as it is, Anthropic Messages and
/// OpenAI Responses translated), streamed and whole: <see cref="HostileStreamFrames"/> generates it and cuts it into frames
/// anywhere. Whatever it sends, the consumer gets a 200 with a well-formed answer or a clean error (a stream then ends with
/// its API's error event; never a 500, never a stream cut off, never text that is not UTF-8 or JSON that does not parse),
/// is charged no more than the market can count in what it received, an honest consumer streaming alongside gets its
/// answer, and the ledger balances.
/// </summary>
public class HostileStreamTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [MemberData(nameof(PaidMarket.Dialects), MemberType = typeof(PaidMarket))]
    public async Task Any_streamed_output_reaches_every_api_as_a_clean_answer_or_a_clean_error_and_is_charged_within_the_count(Coinop.Storage.SqlDialect dialect)
    {
        await using var market = await PaidMarket.StartAsync(dialect);
        await using var honest = await HonestAsync(market);
        var key = await BalanceKeyAsync(market);
        var hostileKey = await FundedKeyAsync(market);

        // OpenAI chat output through every API, or Anthropic events from a backend that serves Messages itself.
        var attacks = Gen.OneOf(
            Gen.Select(Attacks, Gen.Enum<Api>().Where(a => a != Api.MessagesNative)),
            Gen.Select(NativeAttacks, Gen.Const(Api.MessagesNative)));
        await attacks.SampleAsync(
            sample => RunAsync(market, honest, key, hostileKey, sample.Item1, sample.Item2, stream: true),
            iter: dialect == Coinop.Storage.SqlDialect.Sqlite ? Iterations : Iterations / 4, threads: 1);

        await market.AssertBalancedAsync();
    }

    [Theory]
    [MemberData(nameof(PaidMarket.Dialects), MemberType = typeof(PaidMarket))]
    public async Task Any_whole_answer_reaches_every_api_as_a_clean_answer_or_a_clean_error_and_is_charged_within_the_count(Coinop.Storage.SqlDialect dialect)
    {
        await using var market = await PaidMarket.StartAsync(dialect);
        await using var honest = await HonestAsync(market);
        var key = await BalanceKeyAsync(market);
        var hostileKey = await FundedKeyAsync(market);

        var answers = Gen.OneOf(
            Gen.Select(Answers, Gen.Enum<Api>().Where(a => a != Api.MessagesNative)),
            Gen.Select(NativeAnswers, Gen.Const(Api.MessagesNative)));
        await answers.SampleAsync(
            sample => RunAsync(market, honest, key, hostileKey, sample.Item1, sample.Item2, stream: false),
            iter: dialect == Coinop.Storage.SqlDialect.Sqlite ? Iterations / 2 : Iterations / 8, threads: 1);

        await market.AssertBalancedAsync();
    }

    /// <summary>One attack on one API: a fresh hostile link each time (a failing provider is parked, and must not stop the run).</summary>
    /// <remarks>The hostile provider's consumer pays with <paramref name="hostileKey"/>, so its charge is told apart from the honest consumer's.</remarks>
    internal static async Task RunAsync(PaidMarket market, TestProvider honest, string key, string hostileKey, Attack attack, Api api, bool stream)
    {
        await using var hostile = await TestProvider.ConnectAsync(market.Url, "hostile", cancellationToken: Ct);
        hostile.Script = (job, run) => ScriptAsync(hostile, job, run, attack);
        await hostile.OfferAsync(Ct, 8, new ModelOffer(SoloModel, "vllm", SoloInputMsatPerMtok, SoloOutputMsatPerMtok, 8192, 8, AnthropicNative: api == Api.MessagesNative));
        var ledger = market.Services.GetRequiredService<ILedgerStore>();
        var balanceBefore = await BalanceAsync(market, hostileKey);
        var earnedBefore = (await ledger.EarningsAsync(hostile.ProviderId, Ct)).EarnedMsat;

        // An honest consumer streams alongside, from its own provider.
        var alongside = market.ChatAsync(bearer: key, stream: true);
        var (path, body) = Request(api, stream);
        using var response = await PostAsync(market, path, body, hostileKey);
        var bytes = await response.Content.ReadAsByteArrayAsync(Ct);
        var spent = balanceBefore - await BalanceAsync(market, hostileKey);
        var earned = (await ledger.EarningsAsync(hostile.ProviderId, Ct)).EarnedMsat - earnedBefore;

        var text = StrictUtf8(bytes, $"{api} {(stream ? "stream" : "whole")}: the body is not UTF-8 after {attack}");
        var what = $"{api} {(stream ? "stream" : "whole")} {(int)response.StatusCode}: {Shorten(text)}\nafter {attack}";
        Assert.True(response.StatusCode is HttpStatusCode.OK or HttpStatusCode.BadGateway, what);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            Assert.True(Json(text)?.RootElement.TryGetProperty("error", out _) == true, what);
            Assert.True(text.Length < 4096, what);
            Assert.True(spent == 0, $"charged {spent} msat for an error: {what}");
        }
        else if (stream)
        {
            AssertCleanStream(api, text, what);
        }
        else
        {
            Assert.True(Json(text)?.RootElement.ValueKind == JsonValueKind.Object, what);
        }

        if (api == Api.Chat && response.StatusCode == HttpStatusCode.OK)
        {
            AssertShowsOnlyTheUsageBilled(text, stream, spent, what);
        }
        else if (api == Api.MessagesNative && response.StatusCode == HttpStatusCode.OK)
        {
            AssertNativeShowsOnlyTheUsageBilled(text, stream, spent, what);
        }

        var most = MostChargeableMsat(Encoding.UTF8.GetByteCount(body), text, stream);
        Assert.True(spent <= most, $"charged {spent} msat, more than the {most} msat the market can count in what the consumer received: {what}");
        Assert.True(earned >= 0 && earned <= spent, $"earned {earned} msat of {spent} spent: {what}");

        using (var honestStream = await alongside)
        {
            var honestBody = await honestStream.Content.ReadAsStringAsync(Ct);
            Assert.True(honestStream.StatusCode == HttpStatusCode.OK, honestBody);
            AssertCleanStream(Api.Chat, honestBody, "the honest stream: " + honestBody);
            Assert.Contains("honest", honestBody, StringComparison.Ordinal);
        }

        await AssertHealthyAsync(market, honest, key);
    }

    private static async Task ScriptAsync(TestProvider hostile, JobMessage job, TestJob run, Attack attack)
    {
        try
        {
            foreach (var frame in attack.Frames())
            {
                await run.SendAsync(frame);
            }

            if (attack.Ending == Ending.Error)
            {
                await run.ErrorAsync(JobErrorCodes.Internal, "the end", outputSent: true);
                return;
            }

            await run.DoneAsync(attack.ClaimedInput, attack.ClaimedOutput);
            if (attack.Ending == Ending.DoneThenMoreOutput)
            {
                await hostile.SendChunkAsync(job.JobId, job.Fence, Encoding.UTF8.GetBytes("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"PWNED\"}}]}\n\n"), Ct);
                await run.DoneAsync(attack.ClaimedInput, attack.ClaimedOutput);
            }
        }
        catch (OperationCanceledException) when (run.Cancelled.IsCancellationRequested)
        {
            // The market cancelled the attempt (bad output): the provider stops.
        }
    }

    /// <summary>A balance key holding enough for every sample's reservation.</summary>
    internal static async Task<string> FundedKeyAsync(PaidMarket market) =>
        (await market.PostJsonAsync("/v1/balance/create", new { token = await market.TokenAsync(20_000) })).GetProperty("api_key").GetString()!;

    internal static async Task<long> BalanceAsync(PaidMarket market, string key) =>
        (await market.GetJsonAsync("/v1/balance/info", key)).GetProperty("balance_msat").GetInt64();

    internal static (string Path, string Body) Request(Api api, bool stream) => api switch
    {
        Api.Chat => ("/v1/chat/completions", PaidMarket.ChatBody(stream, 100, SoloModel)),
        Api.Messages or Api.MessagesNative => ("/v1/messages", $$"""{"model":"{{SoloModel}}","max_tokens":100,"stream":{{(stream ? "true" : "false")}},"messages":[{"role":"user","content":"hi"}]}"""),
        _ => ("/v1/responses", $$"""{"model":"{{SoloModel}}","input":"hi","max_output_tokens":100,"stream":{{(stream ? "true" : "false")}}}"""),
    };

    internal static async Task<HttpResponseMessage> PostAsync(PaidMarket market, string path, string body, string key, params (string Name, string Value)[] headers)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        foreach (var (name, value) in headers)
        {
            request.Headers.Add(name, value);
        }

        var response = await market.Http.SendAsync(request, Ct);
        await response.Content.LoadIntoBufferAsync(Ct);
        return response;
    }

    /// <summary>
    /// A stream a client can read to its end: SSE lines only (no CR, every line a field or a comment), every data line one
    /// JSON object of valid Unicode (or <c>[DONE]</c>), and the last event the API's end or its error event.
    /// </summary>
    internal static void AssertCleanStream(Api api, string body, string what)
    {
        Assert.True(body.EndsWith("\n\n", StringComparison.Ordinal), "the stream was cut off: " + what);
        Assert.DoesNotContain('\r', body);
        var events = body[..^2].Split("\n\n");
        var done = 0;
        foreach (var sseEvent in events)
        {
            foreach (var line in sseEvent.Split('\n'))
            {
                Assert.True(line.StartsWith("data: ", StringComparison.Ordinal) || line.StartsWith("event: ", StringComparison.Ordinal) || line.StartsWith(": ", StringComparison.Ordinal),
                    $"not an SSE field: '{Shorten(line)}' in {what}");
                if (line == "data: [DONE]")
                {
                    done++;
                }
                else if (line.StartsWith("data: ", StringComparison.Ordinal))
                {
                    using var json = Json(line["data: ".Length..]);
                    Assert.True(json?.RootElement.ValueKind == JsonValueKind.Object, $"not one JSON object of valid Unicode: '{Shorten(line)}' in {what}");
                }
            }

            Assert.True(sseEvent.Split('\n').Count(l => l.StartsWith("data: ", StringComparison.Ordinal)) <= 1, $"an event of several data lines: {Shorten(sseEvent)} in {what}");
        }

        var last = events[^1];
        var lastName = last.Split('\n').FirstOrDefault(l => l.StartsWith("event: ", StringComparison.Ordinal))?["event: ".Length..];
        var lastData = last.Split('\n').FirstOrDefault(l => l.StartsWith("data: ", StringComparison.Ordinal))?["data: ".Length..];
        switch (api)
        {
            case Api.Chat:
                Assert.True(done <= 1, "[DONE] twice: " + what);
                Assert.True(lastData == "[DONE]" || (done == 0 && lastData?.Contains("\"error\"", StringComparison.Ordinal) == true), "the stream did not end with [DONE] or an error: " + what);
                break;
            case Api.Messages or Api.MessagesNative:
                Assert.True(lastName is "message_stop" or "error", "the stream did not end with message_stop or an error: " + what);
                Assert.True(body.Split("event: message_stop\n").Length <= 2, "message_stop twice: " + what);
                break;
            default:
                Assert.True(lastName is "response.completed" or "response.incomplete" or "error", "the stream did not end with the response or an error: " + what);
                break;
        }
    }

    /// <summary>
    /// Chat relayed as it is shows no usage of the provider's: a stream none (this consumer did not ask for it), a whole
    /// answer only the usage billed (at the hostile offer's 10 and 30 msat a token).
    /// </summary>
    private static void AssertShowsOnlyTheUsageBilled(string text, bool stream, long spent, string what)
    {
        var documents = stream
            ? text.Split('\n').Where(l => l.StartsWith("data: {", StringComparison.Ordinal)).Select(l => l["data: ".Length..])
            : [text];
        foreach (var document in documents)
        {
            using var json = JsonDocument.Parse(document);
            foreach (var usage in json.RootElement.EnumerateObject().Where(p => p.Name == "usage" && p.Value.ValueKind != JsonValueKind.Null))
            {
                Assert.False(stream, "usage the consumer did not ask for: " + what);
                var (input, output) = (usage.Value.GetProperty("prompt_tokens").GetInt64(), usage.Value.GetProperty("completion_tokens").GetInt64());
                Assert.True(spent == (input * 10) + (output * 30), $"shows usage {usage.Value} but charged {spent} msat: {what}");
            }
        }
    }

    /// <summary>
    /// A native Anthropic answer shows only the usage billed: a whole one in its <c>usage</c>, a stream that ends with
    /// <c>message_stop</c> in its one <c>message_delta</c> (its <c>message_start</c> shows zeros); a stream cut off by an
    /// error shows no figures but zeros.
    /// </summary>
    private static void AssertNativeShowsOnlyTheUsageBilled(string text, bool stream, long spent, string what)
    {
        if (!stream)
        {
            using var answer = JsonDocument.Parse(text);
            var usage = answer.RootElement.GetProperty("usage");
            var (input, output) = (usage.GetProperty("input_tokens").GetInt64(), usage.GetProperty("output_tokens").GetInt64());
            Assert.True(spent == (input * 10) + (output * 30), $"shows usage {usage} but charged {spent} msat: {what}");
            return;
        }

        var deltas = 0;
        foreach (var sseEvent in text.TrimEnd('\n').Split("\n\n"))
        {
            var name = sseEvent.Split('\n').FirstOrDefault(l => l.StartsWith("event: ", StringComparison.Ordinal))?["event: ".Length..];
            var data = sseEvent.Split('\n').FirstOrDefault(l => l.StartsWith("data: ", StringComparison.Ordinal))?["data: ".Length..];
            if (data is null)
            {
                continue;
            }

            using var json = JsonDocument.Parse(data);
            Assert.True(json.RootElement.TryGetProperty("type", out var type) && type.GetString() == name, $"event {name} of type {type}: {what}");
            if (name == "message_delta")
            {
                deltas++;
                var usage = json.RootElement.GetProperty("usage");
                var (input, output) = (usage.GetProperty("input_tokens").GetInt64(), usage.GetProperty("output_tokens").GetInt64());
                Assert.True(spent == (input * 10) + (output * 30), $"shows usage {usage} but charged {spent} msat: {what}");
            }
            else if (name == "message_start")
            {
                var usage = json.RootElement.GetProperty("message").GetProperty("usage");
                Assert.True(usage.EnumerateObject().All(f => f.Value.ValueKind == JsonValueKind.Number && f.Value.GetInt64() == 0), $"message_start shows usage {usage}: {what}");
            }
            else
            {
                Assert.False(json.RootElement.TryGetProperty("usage", out _), $"usage in {name}: {what}");
            }
        }

        Assert.True(deltas == (text.Contains("event: message_stop\n", StringComparison.Ordinal) ? 1 : 0), $"{deltas} message_delta events: {what}");
    }

    /// <summary>The document when it is JSON whose every string is valid Unicode (else null).</summary>
    internal static JsonDocument? Json(string text)
    {
        try
        {
            var document = JsonDocument.Parse(text);
            Walk(document.RootElement);
            return document;
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            return null;
        }

        static void Walk(JsonElement e)
        {
            switch (e.ValueKind)
            {
                case JsonValueKind.Object:
                    foreach (var p in e.EnumerateObject())
                    {
                        _ = p.Name;
                        Walk(p.Value);
                    }

                    break;
                case JsonValueKind.Array:
                    foreach (var item in e.EnumerateArray())
                    {
                        Walk(item);
                    }

                    break;
                case JsonValueKind.String:
                    _ = e.GetString();
                    break;
            }
        }
    }

    internal static string StrictUtf8(byte[] bytes, string what)
    {
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            Assert.Fail(what);
            throw;
        }
    }

    internal static string Shorten(string text) => text.Length <= 1500 ? text : text[..1500] + $"…({text.Length})";
}
