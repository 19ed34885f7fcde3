using Coinop.Market.Workloads;
using CsCheck;

namespace Coinop.Market.Tests.Workloads;

/// <summary>
/// The supervisor's check that a provider's message came over its current link, with reads shared by the messages queued
/// before them (<see cref="ConfirmedLinks"/>), driven as the supervisor drives it: providers' sessions queue messages over
/// their current link or an older one, other nodes claim links (the store's epoch moves on, unseen here), and the loop
/// takes messages in order, reading the store only when no earlier read answers for the message.
/// </summary>
public class ConfirmedLinksProperties
{
    /// <summary>0: provider P queues a message over its newest link; 1: over the link before it; 2: a claim elsewhere; 3: the loop takes one.</summary>
    private readonly record struct Step(int Kind, int P);

    private static readonly Gen<Step[]> Runs = Gen.Select(Gen.Int[0, 3], Gen.Int[0, 2], (k, p) => new Step(k, p)).Array[0, 200];

    [Fact]
    public void A_message_counts_only_if_its_link_was_current_after_it_arrived_and_every_one_the_store_would_admit_is_admitted() =>
        Runs.Sample(steps =>
        {
            var confirmed = new ConfirmedLinks();
            var store = new long[] { 1, 1, 1 }; // each provider's current link epoch in the store
            var queue = new Queue<(int P, long Epoch, long Sequence, bool CurrentOnArrival)>();
            long queued = 0, reads = 0, taken = 0;
            foreach (var step in steps)
            {
                switch (step.Kind)
                {
                    case 0 or 1:
                        var epoch = store[step.P] - step.Kind;
                        queue.Enqueue((step.P, epoch, ++queued, epoch == store[step.P]));
                        break;
                    case 2:
                        store[step.P]++;
                        break;
                    case 3 when queue.Count > 0:
                        var (p, e, sequence, currentOnArrival) = queue.Dequeue();
                        taken++;
                        bool admitted;
                        if (confirmed.Covers("p" + p, e, sequence))
                        {
                            admitted = true;
                        }
                        else
                        {
                            reads++;
                            admitted = store[p] == e; // the store read, after the message arrived
                            if (admitted)
                            {
                                confirmed.Confirmed("p" + p, e, queued);
                            }
                            else
                            {
                                confirmed.Forget("p" + p);
                            }
                        }

                        // Safe: admitted only if the link was current when the message arrived (epochs only grow, so
                        // "current at some moment after it arrived" is "current when it arrived").
                        Assert.True(!admitted || currentOnArrival, $"message {sequence} of p{p} over epoch {e} admitted after its link was revoked");
                        // Never stricter than a read per message: what the store says is current now is admitted.
                        Assert.True(admitted || store[p] != e, $"message {sequence} of p{p} over current epoch {e} refused");
                        break;
                }
            }

            Assert.True(reads <= taken);
        });

    [Fact]
    public void Messages_queued_together_over_a_current_link_cost_one_read_and_a_later_one_is_read_again()
    {
        var confirmed = new ConfirmedLinks();
        // Three messages of p over epoch 4 queued (sequences 1-3), then the first is taken: one read, found current.
        Assert.False(confirmed.Covers("p", 4, 1));
        confirmed.Confirmed("p", 4, upTo: 3);
        Assert.True(confirmed.Covers("p", 4, 2));
        Assert.True(confirmed.Covers("p", 4, 3));
        // Queued after the read began (another node may have claimed the provider since): read again.
        Assert.False(confirmed.Covers("p", 4, 4));
        // Another link of p, older or newer: never answered for by epoch 4's read.
        Assert.False(confirmed.Covers("p", 3, 2));
        Assert.False(confirmed.Covers("p", 5, 2));
        confirmed.Forget("p");
        Assert.False(confirmed.Covers("p", 4, 2));
    }
}
