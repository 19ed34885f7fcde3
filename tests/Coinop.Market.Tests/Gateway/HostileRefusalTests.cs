using System.Net;
using Coinop.Core.Protocol;
using Coinop.Market.Tests.Payments;
using Coinop.Market.Tests.TestProviders;

namespace Coinop.Market.Tests.Gateway;

/// <summary>
/// A provider answers a job with <c>invalid_request</c>: "the backend refused the request itself". That is its word, which
/// the market cannot check. Taken as final, a provider refusing every request it was given turned each one into the
/// consumer's 400 while an honest provider of the same model had room, and was never parked for it (a refusal is not a
/// provider failure). Before any output, another provider is asked; only when none serves it is the refusal the answer.
/// </summary>
public class HostileRefusalTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_request_one_provider_refuses_as_invalid_is_served_by_another()
    {
        await using var market = await PaidMarket.StartAsync();
        var key = (await market.PostJsonAsync("/v1/balance/create", new { token = await market.TokenAsync(100) })).GetProperty("api_key").GetString()!;

        // The honest provider has one slot, held by a first request (sent before the refuser links) until the refuser has the second.
        var holding = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var honestJobs = 0;
        await using var honest = await TestProvider.ConnectAsync(market.Url, "honest", cancellationToken: Ct);
        honest.Script = async (job, run) =>
        {
            if (Interlocked.Increment(ref honestJobs) == 1)
            {
                await holding.Task.WaitAsync(run.Cancelled);
            }

            await Scripts.Answer("honest answer")(job, run);
        };
        await honest.OfferAsync(Ct, 1, TestProvider.Offer("llama3"));

        var first = market.ChatAsync(bearer: key);
        await honest.WaitForAsync<JobMessage>(_ => true); // the first request holds the honest provider's only slot
        var refuse = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var refuser = await TestProvider.ConnectAsync(market.Url, "refuser", cancellationToken: Ct);
        refuser.Script = async (job, run) =>
        {
            await refuse.Task.WaitAsync(run.Cancelled);
            await run.ErrorAsync(JobErrorCodes.InvalidRequest);
        };
        await refuser.OfferAsync(Ct, 8, TestProvider.Offer("llama3"));

        var second = market.ChatAsync(bearer: key);
        await refuser.WaitForAsync<JobMessage>(_ => true);
        holding.SetResult();
        using (var answered = await first)
        {
            Assert.Equal(HttpStatusCode.OK, answered.StatusCode);
        }

        refuse.SetResult(); // the honest provider's slot is free again
        using var refused = await second;
        var body = await refused.Content.ReadAsStringAsync(Ct);

        Assert.True(refused.StatusCode == HttpStatusCode.OK, $"{(int)refused.StatusCode}: {body}");
        Assert.Contains("honest answer", body, StringComparison.Ordinal);
        Assert.Equal(2, Volatile.Read(ref honestJobs));
        await market.AssertBalancedAsync();
    }

    [Fact]
    public async Task A_request_every_provider_refuses_is_the_consumers_400()
    {
        await using var market = await PaidMarket.StartAsync();
        var key = (await market.PostJsonAsync("/v1/balance/create", new { token = await market.TokenAsync(100) })).GetProperty("api_key").GetString()!;
        await using var a = await market.Market.ProviderAsync("llama3", Ct, name: "a", script: Scripts.Fail(JobErrorCodes.InvalidRequest));
        await using var b = await market.Market.ProviderAsync("llama3", Ct, name: "b", script: Scripts.Fail(JobErrorCodes.InvalidRequest));

        using var refused = await market.ChatAsync(bearer: key);

        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("the backend refused the request", await refused.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
        Assert.Equal(2, a.Jobs.Count + b.Jobs.Count); // each asked once, neither parked for the consumer's mistake
        Assert.False(market.Market.Directory.Find(a.ProviderId)!.IsParked);
        Assert.False(market.Market.Directory.Find(b.ProviderId)!.IsParked);
        var s = await market.AssertBalancedAsync();
        Assert.Equal(0, s.SpentMsat);
    }
}
