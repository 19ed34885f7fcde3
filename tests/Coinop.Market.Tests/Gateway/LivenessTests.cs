using System.Net.WebSockets;
using Coinop.Core.Protocol;
using Coinop.Market.Gateway;
using Coinop.Market.Tests.TestProviders;
using Coinop.TestKit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Coinop.Market.Tests.Gateway;

public class LivenessTests
{
    [Fact]
    public async Task A_provider_silent_past_TTL_plus_grace_is_closed_with_4408_and_marked_offline()
    {
        var ct = TestContext.Current.CancellationToken;
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var market = await MarketUnderTest.StartAsync(builder: b => b.Services.AddSingleton<TimeProvider>(time), cancellationToken: ct);
        await using var provider = await market.ProviderAsync("llama3", ct);

        // Heartbeats push the deadline back: 10 s TTL + 10 s grace from the last one.
        time.Advance(TimeSpan.FromSeconds(15));
        var ack = await provider.HeartbeatAsync(ct);
        Assert.Equal(10_000, ack.NextTtlMs);
        time.Advance(TimeSpan.FromSeconds(19));
        Assert.False(provider.Closed.IsCompleted);
        Assert.Equal(ProviderLivenessState.Online, market.App.Services.GetRequiredService<ProviderLiveness>().StateOf(provider.ProviderId));

        time.Advance(TimeSpan.FromSeconds(2));

        Assert.Equal((WebSocketCloseStatus)CloseCodes.HeartbeatTimeout, (await provider.Closed.WaitAsync(ct)).Status);
        await Eventually.TrueAsync(async () => !(await market.Registry.FindAsync(provider.ProviderId, ct))!.Online, ct);
        Assert.Equal(ProviderLivenessState.Offline, market.App.Services.GetRequiredService<ProviderLiveness>().StateOf(provider.ProviderId));
    }

    [Fact]
    public async Task Each_provider_is_held_to_its_own_deadline_and_a_replaced_session_leaves_none_behind()
    {
        var ct = TestContext.Current.CancellationToken;
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var market = await MarketUnderTest.StartAsync(builder: b => b.Services.AddSingleton<TimeProvider>(time), cancellationToken: ct);
        var liveness = market.App.Services.GetRequiredService<ProviderLiveness>();
        await using var beating = await market.ProviderAsync("llama3", ct, name: "beating");
        await using var silent = await market.ProviderAsync("llama3", ct, name: "silent");
        await using var replaced = await market.ProviderAsync("llama3", ct, name: "replaced");

        // All three are due at +20 s (10 s TTL + 10 s grace). At +15 s one heartbeats and one links again (a new session,
        // due at +35 s): the first session's deadline must not close the second.
        time.Advance(TimeSpan.FromSeconds(15));
        await beating.HeartbeatAsync(ct);
        await using var again = await TestProvider.ConnectAsync(market.Url, "replaced", replaced.Key, cancellationToken: ct);
        Assert.NotNull(again.AuthOk);

        time.Advance(TimeSpan.FromSeconds(6));
        Assert.Equal((WebSocketCloseStatus)CloseCodes.HeartbeatTimeout, (await silent.Closed.WaitAsync(ct)).Status);
        Assert.Equal(ProviderLivenessState.Offline, liveness.StateOf(silent.ProviderId));
        Assert.Equal(ProviderLivenessState.Online, liveness.StateOf(beating.ProviderId));
        Assert.Equal(ProviderLivenessState.Online, liveness.StateOf(again.ProviderId));
        Assert.Equal((WebSocketCloseStatus)CloseCodes.Replaced, (await replaced.Closed.WaitAsync(ct)).Status);

        time.Advance(TimeSpan.FromSeconds(13)); // +34 s
        Assert.Equal(ProviderLivenessState.Online, liveness.StateOf(beating.ProviderId));
        Assert.Equal(ProviderLivenessState.Online, liveness.StateOf(again.ProviderId));

        time.Advance(TimeSpan.FromSeconds(2)); // +36 s: both past their deadline
        Assert.Equal((WebSocketCloseStatus)CloseCodes.HeartbeatTimeout, (await beating.Closed.WaitAsync(ct)).Status);
        Assert.Equal((WebSocketCloseStatus)CloseCodes.HeartbeatTimeout, (await again.Closed.WaitAsync(ct)).Status);
        Assert.Equal(ProviderLivenessState.Offline, liveness.StateOf(beating.ProviderId));
        Assert.Equal(ProviderLivenessState.Offline, liveness.StateOf(again.ProviderId));
    }

    [Fact]
    public async Task A_step_of_the_wall_clock_neither_closes_a_provider_that_beats_nor_spares_one_that_is_silent()
    {
        var ct = TestContext.Current.CancellationToken;
        var time = new SteppedWallClock(new FakeTimeProvider(DateTimeOffset.UtcNow));
        await using var market = await MarketUnderTest.StartAsync(builder: b => b.Services.AddSingleton<TimeProvider>(time), cancellationToken: ct);
        var liveness = market.App.Services.GetRequiredService<ProviderLiveness>();
        await using var provider = await market.ProviderAsync("llama3", ct);

        // Due at +20 s; a heartbeat at +15 s moves that to +35 s. Then NTP steps the wall clock an hour ahead.
        time.Monotonic.Advance(TimeSpan.FromSeconds(15));
        await provider.HeartbeatAsync(ct);
        time.Step = TimeSpan.FromHours(1);

        time.Monotonic.Advance(TimeSpan.FromSeconds(6)); // +21 s: the first deadline's turn comes; 14 s are left
        Assert.Equal(ProviderLivenessState.Online, liveness.StateOf(provider.ProviderId));
        Assert.False(provider.Closed.IsCompleted);

        time.Step = -TimeSpan.FromHours(2); // and back, past where it was: silence is still found on time
        time.Monotonic.Advance(TimeSpan.FromSeconds(16)); // +37 s
        Assert.Equal((WebSocketCloseStatus)CloseCodes.HeartbeatTimeout, (await provider.Closed.WaitAsync(ct)).Status);
    }

    /// <summary>A clock whose wall time can be stepped (as NTP does) while its monotonic time and timers run on.</summary>
    private sealed class SteppedWallClock(FakeTimeProvider monotonic) : TimeProvider
    {
        public FakeTimeProvider Monotonic { get; } = monotonic;

        public TimeSpan Step { get; set; }

        public override DateTimeOffset GetUtcNow() => Monotonic.GetUtcNow() + Step;

        public override long GetTimestamp() => Monotonic.GetTimestamp();

        public override long TimestampFrequency => Monotonic.TimestampFrequency;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            Monotonic.CreateTimer(callback, state, dueTime, period);
    }

    [Fact]
    public async Task After_a_restart_providers_that_were_online_are_presumed_alive_for_the_failover_TTL()
    {
        var ct = TestContext.Current.CancellationToken;
        using var dir = new TempDirectory("coinop-restart");
        var first = await MarketUnderTest.StartAsync(dataDir: dir.Path, cancellationToken: ct);
        var returning = await first.ProviderAsync("llama3", ct, name: "returning");
        var gone = await first.ProviderAsync("llama3", ct, name: "gone");
        await first.DisposeAsync(); // a deploy: sockets closed with 1001, the store still says online
        var returningKey = TestProvider.NewKeyFrom(returning.Key);
        await returning.DisposeAsync();
        await gone.DisposeAsync();

        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        // A long heartbeat TTL keeps the returning provider's own deadline out of the way of the failover one.
        await using var second = await MarketUnderTest.StartAsync(o => o.HeartbeatMinTtl = TimeSpan.FromMinutes(10), dataDir: dir.Path,
            builder: b => b.Services.AddSingleton<TimeProvider>(time), cancellationToken: ct);
        var liveness = second.App.Services.GetRequiredService<ProviderLiveness>();
        Assert.Equal(ProviderLivenessState.PresumedOnline, liveness.StateOf(gone.ProviderId));
        Assert.True((await second.Registry.FindAsync(gone.ProviderId, ct))!.Online);

        await using var back = await TestProvider.ConnectAsync(second.Url, "returning", key: returningKey, cancellationToken: ct);
        Assert.Equal(ProviderLivenessState.Online, liveness.StateOf(back.ProviderId));
        time.Advance(TimeSpan.FromSeconds(299));
        Assert.Equal(ProviderLivenessState.PresumedOnline, liveness.StateOf(gone.ProviderId));

        time.Advance(TimeSpan.FromSeconds(2));

        Assert.Equal(ProviderLivenessState.Offline, liveness.StateOf(gone.ProviderId));
        await Eventually.TrueAsync(async () => !(await second.Registry.FindAsync(gone.ProviderId, ct))!.Online, ct);
        Assert.True((await second.Registry.FindAsync(back.ProviderId, ct))!.Online);
    }
}
