using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Coinop.Core.Protocol;
using Coinop.Market.Tests.Payments;
using Coinop.Market.Tests.TestProviders;
using Coinop.Storage.Ledger;
using Microsoft.Extensions.DependencyInjection;
using static Coinop.Market.Tests.Gateway.HostileFrames;

namespace Coinop.Market.Tests.Gateway;

/// <summary>
/// The market side of the hostile-provider tests: the honest provider, the hostile one past its handshake, the paying
/// consumer, and <see cref="SendSettledAsync"/>, which sends one frame and learns whether the market kept the link.
/// </summary>
internal static class HostileLink
{
    internal const string HonestText = "the honest answer";

    /// <summary>Samples per property on SQLite (the PostgreSQL runs take a quarter): about 15 s for all of them.</summary>
    internal const int Iterations = 200;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    internal const string SoloModel = "solo";

    /// <summary>Prices of the hostile provider's own model, msat per million tokens: 10 msat an input token, 30 an output token.</summary>
    internal const long SoloInputMsatPerMtok = 10_000_000, SoloOutputMsatPerMtok = 30_000_000;

    internal static JsonNode? TryParse(string json)
    {
        try
        {
            return JsonNode.Parse(json);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>The honest provider: it offers llama3, answers <see cref="HonestText"/>, and heartbeats as an agent does (a property runs past its TTL).</summary>
    internal static async Task<TestProvider> HonestAsync(PaidMarket market) =>
        (await market.Market.ProviderAsync("llama3", Ct, name: "honest", script: Scripts.Answer(HonestText))).KeepAlive();

    /// <summary>A hostile provider past the handshake, its capabilities (a model of its own, and workloads) applied.</summary>
    internal static async Task<TestProvider> HostileAsync(PaidMarket market, string name = "hostile")
    {
        var hostile = await TestProvider.ConnectAsync(market.Url, name, cancellationToken: Ct);
        Assert.NotNull(hostile.AuthOk);
        hostile.Script = Scripts.Answer("the hostile answer");
        Assert.Null(await SendSettledAsync(hostile, Frame.Text("capabilities", Json(Capabilities(HostileModel, workloads: true)))));
        return hostile;
    }

    internal static async Task<string> BalanceKeyAsync(PaidMarket market) =>
        (await market.PostJsonAsync("/v1/balance/create", new { token = await market.TokenAsync(500) })).GetProperty("api_key").GetString()!;

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<TestProvider, LoadFigures> LastLoad = [];

    /// <summary>
    /// Sends <paramref name="frame"/>, then a heartbeat, and waits until the market processed both: null when the link is
    /// still open (the heartbeat was acknowledged), else the status it was closed with (null status: aborted). Frames on
    /// a link are handled in order, so the acknowledgement of the heartbeat after the frame proves the frame was handled.
    /// </summary>
    internal static async Task<WebSocketCloseStatus?> SendSettledAsync(TestProvider provider, Frame frame)
    {
        var heartbeat = frame.Type == WebSocketMessageType.Text ? ProtocolJson.TryDeserialize(frame.Bytes) as HeartbeatMessage : null;
        var acks = heartbeat is { Load: not null } ? 2 : 1;
        if (heartbeat?.Load is { } load)
        {
            LastLoad.AddOrUpdate(provider, load);
        }

        var seen = 0;
        var acked = provider.WaitForAsync<HeartbeatAck>(_ => Interlocked.Increment(ref seen) >= acks, afterNow: true);
        try
        {
            await provider.SendRawAsync(frame.Bytes, frame.Type, Ct);
            // The load the provider last reported, so the barrier does not undo what the frame claimed.
            await provider.SendAsync(new HeartbeatMessage(LastLoad.TryGetValue(provider, out var last) ? last : LoadFigures.Idle), Ct);
        }
        catch (Exception ex) when (ex is WebSocketException or ObjectDisposedException or IOException
            || (ex is OperationCanceledException && !Ct.IsCancellationRequested))
        {
            // The market closed the link meanwhile (a send the market's abort interrupted ends as cancelled).
        }

        var done = await Task.WhenAny(acked, provider.Closed).WaitAsync(TimeSpan.FromSeconds(30), Ct);
        return done == acked ? null : Closed(await provider.Closed);
    }

    internal static WebSocketCloseStatus? Closed((WebSocketCloseStatus? Status, string? Reason) closed) => closed.Status ?? Aborted;

    /// <summary>The market answers its routes, and the consumer gets the honest provider's answer, paid from its balance.</summary>
    internal static async Task AssertHealthyAsync(PaidMarket market, TestProvider honest, string key)
    {
        foreach (var path in new[] { "/v1/models", "/api/providers", "/api/market/overview" })
        {
            using var response = await market.Http.GetAsync(path, Ct);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        }

        foreach (var path in new[] { "/api/admin/providers", "/api/admin/traffic", "/api/admin/money" })
        {
            await market.GetJsonAsync(path, market.AdminToken);
        }

        var before = honest.Jobs.Count;
        using var chat = await market.ChatAsync(bearer: key);
        var body = await chat.Content.ReadAsStringAsync(Ct);
        Assert.True(chat.StatusCode == HttpStatusCode.OK, $"the consumer got {(int)chat.StatusCode}: {body}");
        Assert.Equal(HonestText, JsonNode.Parse(body)!["choices"]![0]!["message"]!["content"]!.GetValue<string>());
        Assert.Equal(before + 1, honest.Jobs.Count);
    }

    internal static async Task AssertEarnedNothingAsync(PaidMarket market, IEnumerable<string> providerIds)
    {
        var ledger = market.Services.GetRequiredService<ILedgerStore>();
        foreach (var id in providerIds.Distinct())
        {
            Assert.Equal(0, (await ledger.EarningsAsync(id, Ct)).EarnedMsat);
        }
    }

    internal static async Task<HttpResponseMessage> PostChatAsync(PaidMarket market, string key, string model, bool stream)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent(PaidMarket.ChatBody(stream, 100, model), Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
        var response = await market.Http.SendAsync(request, Ct);
        await response.Content.LoadIntoBufferAsync(Ct);
        return response;
    }
}
