using Coinop.Market.Workloads;
using CsCheck;

namespace Coinop.Market.Tests.Workloads;

/// <summary>
/// The supervisor's per-provider bound, driven as the shell drives it: sessions of a few providers queue commands in
/// any order while the supervisor takes them off the queue in order, checked against a plain model after every step.
/// </summary>
public class ProviderCommandQuotaProperties
{
    /// <summary>One step: provider <c>P</c> queues a command (or the supervisor takes the oldest queued one).</summary>
    private readonly record struct Step(bool Queue, int P);

    private static readonly Gen<(int Limit, Step[] Steps)> Runs =
        Gen.Select(Gen.Int[1, 6], Gen.Select(Gen.Bool, Gen.Int[0, 2], (q, p) => new Step(q, p)).Array[0, 200]);

    [Fact]
    public void A_provider_never_has_more_than_the_limit_queued_and_a_flooder_is_cut_until_its_queue_drains() =>
        Runs.Sample(run =>
        {
            var quota = new ProviderCommandQuota(run.Limit);
            var queue = new Queue<string>(); // the supervisor's channel: what was admitted, in order
            var cut = new HashSet<string>();
            foreach (var step in run.Steps)
            {
                var p = "p" + step.P;
                if (step.Queue)
                {
                    var queuedBefore = queue.Count(q => q == p);
                    var admitted = quota.TryAdmit(p);
                    // Admitted exactly when not cut and under the limit; one provider's state never decides another's.
                    Assert.Equal(!cut.Contains(p) && queuedBefore < run.Limit, admitted);
                    if (admitted)
                    {
                        queue.Enqueue(p);
                    }
                    else
                    {
                        cut.Add(p);
                    }
                }
                else if (queue.TryDequeue(out var taken))
                {
                    // Obeyed only when its provider was not cut after queueing it.
                    Assert.Equal(!cut.Contains(taken), quota.Take(taken));
                    if (!queue.Contains(taken))
                    {
                        cut.Remove(taken); // drained: the provider may come back
                    }
                }

                foreach (var provider in new[] { "p0", "p1", "p2" })
                {
                    Assert.Equal(queue.Count(q => q == provider), quota.Pending(provider));
                    Assert.True(quota.Pending(provider) <= run.Limit);
                    Assert.Equal(cut.Contains(provider), quota.IsCut(provider));
                }
            }
        }, iter: 2000);

    [Fact]
    public void Taking_a_command_never_queued_is_a_bug_not_a_silent_miscount()
    {
        var quota = new ProviderCommandQuota(2);
        Assert.Throws<InvalidOperationException>(() => quota.Take("p"));
    }
}
