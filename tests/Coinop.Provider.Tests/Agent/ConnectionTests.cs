using System.Net.WebSockets;
using Coinop.Core.Pricing;
using Coinop.Core.Protocol;
using Coinop.Provider.Tests.Infrastructure;
using Coinop.TestKit;

namespace Coinop.Provider.Tests.Agent;

public class ConnectionTests
{
    [Fact]
    public async Task Authenticates_by_signing_the_challenge_then_announces_its_models()
    {
        await using var rig = await Rig.StartAsync(o => (o.Name, o.MaxConcurrent) = ("rig-provider", 3));

        Assert.True(rig.Link.SignatureValid);
        Assert.Equal(rig.Agent.Agent.ProviderId, rig.Link.ProviderId);
        Assert.Equal("rig-provider", rig.Link.Auth!.Name);
        Assert.Null(rig.Link.Auth.EnrollmentCode);

        Assert.Equal(3, rig.Capabilities.MaxConcurrent);
        Assert.Equal(["sim-large", "sim-small"], rig.Capabilities.Models.Select(m => m.Model));
        Assert.All(rig.Capabilities.Models, m =>
        {
            Assert.Equal("simulator", m.Backend); // the simulator is never passed off as a real backend
            Assert.Equal(ModelPrice.Default, new ModelPrice(m.InputMsatPerMtok, m.OutputMsatPerMtok));
            Assert.Equal(3, m.MaxConcurrent);
        });
    }

    [Fact]
    public async Task Keeps_its_identity_across_restarts_and_presents_an_enrollment_code()
    {
        await using var sim = await SimServer.StartAsync();
        await using var market = await FakeMarket.StartAsync();
        using var dir = new TempDirectory();
        string firstId;
        await using (var first = await RunningAgent.StartAsync(market.Url, dir.Path, o => (o.Backends, o.EnrollmentCode) = ([Backend.Parse("openai=" + sim.Url)], "COINOP-CODE")))
        {
            var link = await market.NextConnectionAsync();
            Assert.Equal("COINOP-CODE", link.Auth!.EnrollmentCode);
            firstId = link.ProviderId!;

            // The data directory belongs to one agent at a time.
            var clash = await Assert.ThrowsAsync<IOException>(() => RunningAgent.StartAsync(market.Url, dir.Path));
            Assert.Contains("another provider agent", clash.Message, StringComparison.Ordinal);
        }

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(dir.Path, "identity.key")));
        await using var second = await RunningAgent.StartAsync(market.Url, dir.Path, o => o.Backends = [Backend.Parse("openai=" + sim.Url)]);
        var again = await market.NextConnectionAsync();
        Assert.True(again.SignatureValid);
        Assert.Equal(firstId, again.ProviderId);
        Assert.Equal(firstId, second.Agent.ProviderId);
    }

    [Fact]
    public async Task Pins_the_first_market_id_and_refuses_to_sign_for_another_until_the_operator_deletes_the_pin()
    {
        await using var sim = await SimServer.StartAsync();
        await using var genuine = await FakeMarket.StartAsync(m => m.MarketId = "market-genuine");
        await using var impostor = await FakeMarket.StartAsync(m => m.MarketId = "market-impostor");
        using var dir = new TempDirectory();
        await using (var first = await RunningAgent.StartAsync(genuine.Url, dir.Path, o => o.Backends = [Backend.Parse("openai=" + sim.Url)]))
        {
            Assert.True((await genuine.NextConnectionAsync()).SignatureValid);
            await first.Logs.WaitForAsync(e => e.Message.Contains("authenticated as provider", StringComparison.Ordinal));
        }

        var pinPath = Path.Combine(dir.Path, "market.id");
        Assert.Equal("market-genuine", File.ReadAllText(pinPath).Trim());

        // The same data directory pointed at another market (a swapped URL, a hijacked name): refused before signing.
        await using (var swapped = await RunningAgent.StartAsync(impostor.Url, dir.Path, o => o.Backends = [Backend.Parse("openai=" + sim.Url)]))
        {
            var refusal = await swapped.Logs.WaitForEventAsync(30);
            Assert.Contains("market-impostor", refusal.Message, StringComparison.Ordinal);
            Assert.Contains(pinPath, refusal.Message, StringComparison.Ordinal);
            Assert.False(swapped.Agent.LinkUp);
            Assert.DoesNotContain(swapped.Logs.Entries, e => e.Message.Contains("authenticated as provider", StringComparison.Ordinal));
        }

        // The operator's reset: delete the pin, and the next market is trusted (and pinned) on first use.
        File.Delete(pinPath);
        await using var moved = await RunningAgent.StartAsync(impostor.Url, dir.Path, o => o.Backends = [Backend.Parse("openai=" + sim.Url)]);
        Assert.True((await impostor.NextConnectionAsync()).SignatureValid);
        await moved.Logs.WaitForAsync(e => e.Message.Contains("authenticated as provider", StringComparison.Ordinal));
        Assert.Equal("market-impostor", File.ReadAllText(pinPath).Trim());
    }

    [Fact]
    public async Task Offers_each_model_once_from_the_preferred_backend_at_the_configured_price()
    {
        await using var openai = await SimServer.StartAsync(o => o.Models = ["m1", "m2"]);
        await using var ollama = await SimServer.StartAsync(o => (o.Models, o.ContextWindow) = (["m2", "m3"], 4096));
        await using var vllm = await SimServer.StartAsync(o => o.Models = ["m3"]);
        await using var market = await FakeMarket.StartAsync();
        using var dir = new TempDirectory();
        await using var agent = await RunningAgent.StartAsync(market.Url, dir.Path, o =>
        {
            o.Backends = [Backend.Parse("openai=" + openai.Url), Backend.Parse("ollama=" + ollama.Url), Backend.Parse("vllm=" + vllm.Url)];
            o.Prices = new() { ["m2"] = new ModelPrice(5_000, 7_000) };
        });
        var link = await market.NextConnectionAsync();
        var offers = (await link.NextAsync<CapabilitiesMessage>()).Models.ToDictionary(m => m.Model);

        Assert.Equal(["m1", "m2", "m3"], offers.Keys.Order());
        // Every backend here is the simulator, and is labelled so; which one won a model shows in the context
        // window, which only Ollama's /api/show reports: m2 came from Ollama, m3 from vLLM (higher priority).
        Assert.All(offers.Values, o => Assert.Equal("simulator", o.Backend));
        Assert.Null(offers["m3"].ContextWindow);
        Assert.Equal((5_000L, 7_000L), (offers["m2"].InputMsatPerMtok, offers["m2"].OutputMsatPerMtok));
        Assert.Equal(ModelPrice.Default.InputMsatPerMtok, offers["m1"].InputMsatPerMtok);
        Assert.Equal(4096, offers["m2"].ContextWindow);   // from Ollama's /api/show
        Assert.True(offers["m2"].Embeddings);             // Ollama lists the capability
        Assert.Null(offers["m1"].ContextWindow);          // a plain OpenAI server does not tell
    }

    [Fact]
    public async Task Announces_nothing_until_a_backend_appears_then_sends_capabilities_again()
    {
        var port = Ports.GetFree();
        await using var market = await FakeMarket.StartAsync();
        using var dir = new TempDirectory();
        await using var agent = await RunningAgent.StartAsync(market.Url, dir.Path, o => o.Backends = [Backend.Parse($"ollama=http://127.0.0.1:{port}")]);
        var link = await market.NextConnectionAsync();
        Assert.Empty((await link.NextAsync<CapabilitiesMessage>()).Models);
        await agent.Logs.WaitForEventAsync(10); // the named backend is down

        await using var sim = await SimServer.StartAsync(port: port);
        var later = await link.NextAsync<CapabilitiesMessage>();
        Assert.Equal(["sim-large", "sim-small"], later.Models.Select(m => m.Model));
        Assert.All(later.Models, m => Assert.Equal(8192, m.ContextWindow));
    }

    [Fact]
    public async Task Failures_before_auth_escalate_the_backoff_and_a_deploy_close_resets_it()
    {
        await using var sim = await SimServer.StartAsync();
        await using var market = await FakeMarket.StartAsync(m => m.RefuseWith = "enrollment_required");
        using var dir = new TempDirectory();
        await using var agent = await RunningAgent.StartAsync(market.Url, dir.Path, o =>
        {
            o.Backends = [Backend.Parse("openai=" + sim.Url)];
            o.ReconnectInitialDelay = TimeSpan.FromMilliseconds(100);
            o.ReconnectMaxDelay = TimeSpan.FromSeconds(10);
        });

        for (var i = 0; i < 3; i++)
        {
            await market.NextConnectionAsync();
        }

        market.RefuseWith = null;
        market.DeployCloseBeforeAuth = true;
        await market.NextConnectionAsync();
        market.DeployCloseBeforeAuth = false;
        var link = await market.NextConnectionAsync();
        await link.NextAsync<CapabilitiesMessage>();
        await link.CloseAsync((WebSocketCloseStatus)CloseCodes.GoingAway, CloseCodes.DrainDeploy);
        var again = await market.NextConnectionAsync();
        await again.NextAsync<CapabilitiesMessage>();

        var delays = agent.Logs.Entries.Where(e => e.EventId == 5).Select(e => Convert.ToInt64(e.Values["DelayMs"], System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(5, delays.Count);
        // 100, 200, 400 ms (each ±20%): refusals escalate.
        Assert.InRange(delays[0], 80, 120);
        Assert.InRange(delays[1], 160, 240);
        Assert.InRange(delays[2], 320, 480);
        // A planned close, before auth or after, goes back to the initial delay.
        Assert.InRange(delays[3], 80, 120);
        Assert.InRange(delays[4], 80, 120);
        Assert.Contains("1001 drain:deploy", agent.Logs.Entries.Last(e => e.EventId == 5).Message, StringComparison.Ordinal);
        Assert.Contains(agent.Logs.Entries, e => e.EventId == 3 && e.Message.Contains("enrollment_required", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_silent_market_is_declared_dead_after_ttl_plus_grace_and_redialled()
    {
        await using var rig = await Rig.StartAsync(
            agent: o => o.LinkGrace = TimeSpan.FromMilliseconds(200),
            market: m => (m.HeartbeatTtlMs, m.AckHeartbeats) = (300, false));

        var dead = await rig.Agent.Logs.WaitForEventAsync(8);
        Assert.Equal(500L, dead.Values["SilentMs"]);
        var closed = await rig.Link.Closed.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        Assert.Null(closed.Status); // aborted, not closed politely
        var again = await rig.Market.NextConnectionAsync();
        Assert.NotEmpty((await again.NextAsync<CapabilitiesMessage>()).Models);
        Assert.NotNull(await again.NextAsync<HeartbeatMessage>());
    }
}
