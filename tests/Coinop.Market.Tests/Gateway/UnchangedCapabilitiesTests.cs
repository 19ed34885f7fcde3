using System.Net.WebSockets;
using System.Text.Json;
using Coinop.Core.Protocol;
using Coinop.Market.Gateway;
using Coinop.Market.Inference;
using Coinop.Market.Tests.TestProviders;
using Coinop.TestKit;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using static Coinop.Market.Tests.Gateway.HostileFrames;
using static Coinop.Market.Tests.Gateway.HostileLink;

namespace Coinop.Market.Tests.Gateway;

/// <summary>
/// A provider repeating the capabilities in force (a hostile one flooding them) costs the market a compare, not a rebuild
/// of its routing index; a change is applied at once. Alone in its collection: <see cref="OfferChanges"/> counts for the
/// whole process, so only here are its moves this test's own.
/// </summary>
[Collection(ExactMetricsCollection.Name)]
public class UnchangedCapabilitiesTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Repeated_identical_capabilities_leave_the_offer_index_alone_and_a_change_is_routed_at_once()
    {
        await using var market = await MarketUnderTest.StartAsync(cancellationToken: Ct);
        await using var provider = await TestProvider.ConnectAsync(market.Url, "repeater", cancellationToken: Ct);
        provider.Script = Scripts.Answer("from the repeater");
        var index = market.App.Services.GetRequiredService<OfferIndex>();
        var original = Frame.Text("capabilities", Json(Capabilities("first-model", workloads: false)));
        Assert.Null(await SendSettledAsync(provider, original));
        var snapshot = index.Current;
        var version = OfferChanges.Version;
        Assert.Single(snapshot.Of("first-model"));

        // A thousand times the same, back to back, then a heartbeat the market answers only after handling them all.
        for (var i = 0; i < 1000; i++)
        {
            await provider.SendRawAsync(original.Bytes, WebSocketMessageType.Text, Ct);
        }

        Assert.Null(await SendSettledAsync(provider, Frame.Text("heartbeat", Json(new HeartbeatMessage(LoadFigures.Idle)))));
        // Before: every one of them moved the version and the next routing decision rebuilt the index.
        Assert.Equal(version, OfferChanges.Version);
        Assert.Same(snapshot, index.Current);

        // A change (another model) is routed by the next request.
        var changed = new CapabilitiesMessage([.. Capabilities("first-model", workloads: false).Models, TestProvider.Offer("second-model")], 2, "hostile/1");
        Assert.Null(await SendSettledAsync(provider, Frame.Text("changed capabilities", Json(changed))));
        Assert.True(OfferChanges.Version > version);
        Assert.Single(index.Current.Of("second-model"));
        using var models = JsonDocument.Parse(await market.Http.GetStringAsync("/v1/models", Ct));
        Assert.Contains(models.RootElement.GetProperty("data").EnumerateArray(), m => m.GetProperty("id").GetString() == "second-model");
        using var chat = await market.Http.PostAsync("/v1/chat/completions", Inference.OpenAiApiTests.Json(
            """{"model":"second-model","messages":[{"role":"user","content":"hi"}]}"""), Ct);
        Assert.Contains("from the repeater", await chat.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);

        // And the first ones again: a change back, applied too.
        Assert.Null(await SendSettledAsync(provider, original));
        Assert.Empty(index.Current.Of("second-model"));
        Assert.Single(index.Current.Of("first-model"));
    }

    [Fact]
    public async Task Repeated_identical_capabilities_of_a_workload_provider_queue_nothing_for_the_supervisor()
    {
        const int limit = 16;
        var database = await TestMarket.CreatePostgresDatabaseAsync();
        var connection = new NpgsqlConnectionStringBuilder(PostgresServer.ConnectionString) { Database = database }.ConnectionString;
        await using var market = await MarketUnderTest.StartAsync(o => (o.Postgres, o.ProviderCommandQueueLimit) = (connection, limit), cancellationToken: Ct);
        await using var provider = await TestProvider.ConnectAsync(market.Url, "repeater", cancellationToken: Ct);
        var capabilities = Frame.Text("capabilities", Json(Capabilities("first-model", workloads: true)));
        Assert.Null(await SendSettledAsync(provider, capabilities));

        // Hold the supervisor on one command, so whatever the repeats queue stays queued and counts against the
        // provider's bound (as in CommandFloodTests).
        await using var hold = await Workloads.SupervisorHold.StartAsync(connection, provider, Ct);

        // Twice the bound of the same capabilities: the provider's state is what it was, so there is nothing to tell.
        for (var i = 0; i < limit * 2; i++)
        {
            await provider.SendRawAsync(capabilities.Bytes, WebSocketMessageType.Text, Ct);
        }

        // Before: each queued a "provider up" for the supervisor (which sends the provider its standby reservations again),
        // and an agent repeating its capabilities while the supervisor was busy was closed as a flooder.
        Assert.Null(await SendSettledAsync(provider, Frame.Text("heartbeat", Json(new HeartbeatMessage(LoadFigures.Idle)))));
        await hold.ReleaseAsync(Ct);
    }
}
