using System.Net;
using System.Net.WebSockets;
using Coinop.Core.Protocol;
using Coinop.Market.Hosting;
using Coinop.Market.Tests.Inference;
using Coinop.Market.Tests.TestProviders;
using Coinop.Storage.Providers;

namespace Coinop.Market.Tests.Gateway;

public class HandshakeTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000);

    [Fact]
    public async Task A_provider_that_signs_the_challenge_is_admitted_and_recorded_online()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);

        await using var provider = await TestProvider.ConnectAsync(market.Url, "alpha", cancellationToken: ct);

        Assert.Equal(provider.ProviderId, provider.AuthOk!.ProviderId);
        Assert.Equal(10_000, provider.AuthOk.HeartbeatTtlMs);
        var record = await market.Registry.FindAsync(provider.ProviderId, ct);
        Assert.True(record!.Online);
        Assert.Equal("alpha", record.Name);
        Assert.Equal(provider.PublicKey, record.PublicKey);
    }

    [Fact]
    public async Task A_forged_signature_is_refused_with_4401()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var forger = await TestProvider.ConnectAsync(market.Url, "forger", cancellationToken: ct);
        using var otherKey = TestProvider.NewKey();

        await using var provider = await TestProvider.ConnectAsync(market.Url, sign: c =>
            NSec.Cryptography.SignatureAlgorithm.Ed25519.Sign(otherKey, Core.Identity.ProviderAuth.SigningPayload(c.MarketId, Convert.FromBase64String(c.Nonce))),
            cancellationToken: ct);

        Assert.Equal("bad_signature", provider.AuthFailed!.Reason);
        Assert.Equal((WebSocketCloseStatus)CloseCodes.AuthFailed, (await provider.Closed.WaitAsync(ct)).Status);
        Assert.Null(await market.Registry.FindAsync(provider.ProviderId, ct));
    }

    [Fact]
    public async Task An_answer_replayed_from_another_connection_is_refused()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        var key = TestProvider.NewKey();
        byte[]? captured = null;
        await using var first = await TestProvider.ConnectAsync(market.Url, key: key, sign: c =>
        {
            captured = NSec.Cryptography.SignatureAlgorithm.Ed25519.Sign(key, Core.Identity.ProviderAuth.SigningPayload(c.MarketId, Convert.FromBase64String(c.Nonce)));
            return captured;
        }, cancellationToken: ct);
        Assert.NotNull(first.AuthOk);

        await using var replay = await TestProvider.ConnectAsync(market.Url, key: key, sign: _ => captured!, cancellationToken: ct);

        Assert.Equal("bad_signature", replay.AuthFailed!.Reason);
    }

    [Fact]
    public async Task With_code_enrollment_unknown_keys_need_a_valid_code_and_codes_run_out()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(o => o.Enrollment = EnrollmentMode.Code, cancellationToken: ct);
        var now = DateTimeOffset.UtcNow;
        await market.Registry.CreateEnrollmentCodeAsync(new EnrollmentCodeRecord("ONE", 1, 0, now, now.AddHours(1)), ct);
        await market.Registry.CreateEnrollmentCodeAsync(new EnrollmentCodeRecord("OLD", 5, 0, now.AddHours(-2), now.AddHours(-1)), ct);

        await using var noCode = await TestProvider.ConnectAsync(market.Url, cancellationToken: ct);
        await using var badCode = await TestProvider.ConnectAsync(market.Url, enrollmentCode: "NOPE", cancellationToken: ct);
        await using var expired = await TestProvider.ConnectAsync(market.Url, enrollmentCode: "OLD", cancellationToken: ct);
        var key = TestProvider.NewKey();
        var enrolled = await TestProvider.ConnectAsync(market.Url, key: key, enrollmentCode: "ONE", cancellationToken: ct);
        await using var usedUp = await TestProvider.ConnectAsync(market.Url, enrollmentCode: "ONE", cancellationToken: ct);

        Assert.Equal("enrollment_required", noCode.AuthFailed!.Reason);
        Assert.Equal("enrollment_code_unknown", badCode.AuthFailed!.Reason);
        Assert.Equal("enrollment_code_expired", expired.AuthFailed!.Reason);
        Assert.NotNull(enrolled.AuthOk);
        Assert.Equal("enrollment_code_used_up", usedUp.AuthFailed!.Reason);
        Assert.Equal(1, (await market.Registry.FindEnrollmentCodeAsync("ONE", ct))!.Uses);

        // A known key never needs a code again.
        await enrolled.CloseAsync();
        await using var again = await TestProvider.ConnectAsync(market.Url, key: TestProvider.NewKeyFrom(key), cancellationToken: ct);
        Assert.NotNull(again.AuthOk);
    }

    [Fact]
    public async Task A_second_connection_of_a_provider_replaces_the_first_with_4409()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        var key = TestProvider.NewKey();
        await using var first = await market.ProviderAsync("llama3", ct);
        await using var older = await TestProvider.ConnectAsync(market.Url, key: key, cancellationToken: ct);

        await using var newer = await TestProvider.ConnectAsync(market.Url, key: TestProvider.NewKeyFrom(key), cancellationToken: ct);

        Assert.Equal((WebSocketCloseStatus)CloseCodes.Replaced, (await older.Closed.WaitAsync(ct)).Status);
        Assert.NotNull(newer.AuthOk);
        Assert.Same(market.Directory.Find(newer.ProviderId), market.Directory.Snapshot.Single(s => s.ProviderId == newer.ProviderId));
    }

    [Fact]
    public async Task Nothing_is_routed_to_a_provider_before_its_capabilities_arrive()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var provider = await TestProvider.ConnectAsync(market.Url, cancellationToken: ct);
        const string body = """{"model":"llama3","messages":[{"role":"user","content":"x"}]}""";

        using var before = await market.Http.PostAsync("/v1/chat/completions", OpenAiApiTests.Json(body), ct);
        await provider.OfferAsync("llama3", ct);
        using var after = await market.Http.PostAsync("/v1/chat/completions", OpenAiApiTests.Json(body), ct);

        Assert.Equal(HttpStatusCode.NotFound, before.StatusCode);
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
        Assert.Single(provider.Jobs);
    }

    [Fact]
    public async Task A_closed_socket_marks_the_provider_offline_at_once()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        var provider = await market.ProviderAsync("llama3", ct);

        provider.Kill();
        await Eventually.TrueAsync(async () => !(await market.Registry.FindAsync(provider.ProviderId, ct))!.Online, ct);

        Assert.Empty(market.Directory.Snapshot);
        using var response = await market.Http.PostAsync("/v1/chat/completions",
            OpenAiApiTests.Json("""{"model":"llama3","messages":[{"role":"user","content":"x"}]}"""), ct);
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        await provider.DisposeAsync();
    }

    [Theory]
    [InlineData("not json at all", false)]
    [InlineData("""{"type":"auth_ok","provider_id":"x","heartbeat_ttl_ms":1}""", false)]
    [InlineData("""{"type":"capabilities","models":[{"model":"m","backend":"b","input_msat_per_mtok":-1,"output_msat_per_mtok":0,"max_concurrent":1}],"max_concurrent":1,"agent_version":"x"}""", false)]
    [InlineData("short", true)]
    public async Task A_malformed_frame_closes_the_socket_with_4400(string frame, bool binary)
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var provider = await TestProvider.ConnectAsync(market.Url, cancellationToken: ct);

        await provider.SendRawAsync(System.Text.Encoding.UTF8.GetBytes(frame), binary ? WebSocketMessageType.Binary : WebSocketMessageType.Text, ct);

        Assert.Equal((WebSocketCloseStatus)CloseCodes.ProtocolError, (await provider.Closed.WaitAsync(ct)).Status);
        await Eventually.TrueAsync(() => Task.FromResult(market.Directory.Snapshot.Length == 0), ct);
    }

    [Fact]
    public async Task An_oversized_binary_frame_closes_the_socket_with_4400()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var provider = await TestProvider.ConnectAsync(market.Url, cancellationToken: ct);
        var frame = new byte[ChunkFrame.HeaderSize + 1024 * 1024];
        ChunkFrame.WriteHeader(frame, Guid.NewGuid(), 1);

        try
        {
            await provider.SendRawAsync(frame, WebSocketMessageType.Binary, ct);
        }
        catch (WebSocketException)
        {
            // The market may close the socket before the whole frame is written.
        }

        Assert.Equal((WebSocketCloseStatus)CloseCodes.ProtocolError, (await provider.Closed.WaitAsync(ct)).Status);
    }

    [Fact]
    public async Task Market_shutdown_closes_provider_sockets_with_1001_drain_deploy()
    {
        var ct = TestContext.Current.CancellationToken;
        var market = await MarketUnderTest.StartAsync(cancellationToken: ct);
        await using var provider = await market.ProviderAsync("llama3", ct);

        await market.DisposeAsync();

        var (status, reason) = await provider.Closed.WaitAsync(ct);
        Assert.Equal(WebSocketCloseStatus.EndpointUnavailable, status);
        Assert.Equal(CloseCodes.DrainDeploy, reason);
    }

    [Fact]
    public async Task A_plain_GET_on_the_connect_endpoint_gets_a_JSON_400()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: ct);

        using var response = await market.Http.GetAsync("/provider/connect", ct);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
    }
}

/// <summary>Polls a condition until it holds (only for state that offers nothing to await), failing after a generous timeout.</summary>
public static class Eventually
{
    public static async Task TrueAsync(Func<Task<bool>> condition, CancellationToken ct, TimeSpan? timeout = null)
    {
        var limit = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (!await condition())
        {
            if (DateTime.UtcNow > limit)
            {
                Assert.Fail("the condition did not become true in time");
            }

            await Task.Delay(20, ct);
        }
    }
}
