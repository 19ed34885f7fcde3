using Coinop.Market.Inference;
using CsCheck;

namespace Coinop.Market.Tests.Inference;

/// <summary>Job ids drawn from a per-thread random block are still RFC 9562 version 7 UUIDs, ordered by time, never repeated.</summary>
public class JobIdsTests
{
    [Fact]
    public void An_id_is_a_version_7_uuid_that_carries_its_millisecond()
    {
        Gen.Long[0, 253_402_300_799_999L].Sample(ms =>
        {
            var now = DateTimeOffset.FromUnixTimeMilliseconds(ms);
            var id = JobIds.NewVersion7(now);
            var reference = Guid.CreateVersion7(now);
            Assert.Equal(7, id.Version);
            Assert.Equal(0b10, id.Variant >> 2); // the RFC 9562 variant: the top two bits of the variant nibble are 10
            // The first 48 bits (12 hex digits) are the timestamp, as the runtime's own v7 writes them.
            Assert.Equal(reference.ToString("N")[..12], id.ToString("N")[..12]);
        });
    }

    [Fact]
    public void Ids_sort_by_time_and_never_repeat_across_many_random_blocks()
    {
        var start = DateTimeOffset.FromUnixTimeMilliseconds(1_760_000_000_000);
        var seen = new HashSet<Guid>();
        Guid? previous = null;
        for (var i = 0; i < 5_000; i++)
        {
            var id = JobIds.NewVersion7(start.AddMilliseconds(i));
            Assert.True(seen.Add(id));
            if (previous is { } p)
            {
                Assert.True(string.CompareOrdinal(p.ToString("N"), id.ToString("N")) < 0);
            }

            previous = id;
        }
    }

    [Fact]
    public async Task Threads_draw_different_ids()
    {
        var now = DateTimeOffset.FromUnixTimeMilliseconds(1_760_000_000_000);
        var batches = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => Enumerable.Range(0, 1_000).Select(_ => JobIds.NewVersion7(now)).ToList())));
        var all = batches.SelectMany(b => b).ToList();
        Assert.Equal(all.Count, all.Distinct().Count());
    }
}
