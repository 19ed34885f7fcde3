using System.Text;
using Coinop.Core.Protocol;
using Coinop.Market.Gateway;
using CsCheck;

namespace Coinop.Market.Tests.Gateway;

/// <summary>
/// The market's one-pass <c>job_done</c> reader against the general deserializer: it reads every frame an agent writes
/// exactly as that does, and for any other frame either defers (null) or agrees; never a value the general path would
/// not give.
/// </summary>
public class JobDoneFrameProperties
{
    private static readonly Gen<JobDone> Dones = Gen.Select(Gen.Guid, Gen.Long, Gen.Long, Gen.Long, Gen.Long,
        (id, fence, input, output, duration) => new JobDone(id, fence, new TokenUsage(input, output), duration));

    /// <summary>Ways a frame can differ from what an agent writes: each is still JSON, some still a valid job_done.</summary>
    private static readonly Func<string, string>[] Variants =
    [
        f => f,
        f => f[..^1] + ",\"extra\":1}",
        f => f.Replace("\"fence\":", "\"fence\":1,\"fence\":"),
        f => f.Replace("{\"type\":\"job_done\",", "{\"type\":\"job_done\",\"duration_ms\":7,"),
        f => f.Replace("\"usage\":{", "\"usage\":{\"extra\":[1,2],"),
        f => f.Replace("\"job_id\":\"", "\"job_id\":\"x"),
        f => f.Replace("\"duration_ms\":", "\"duration_ms\":1.5,\"d\":"),
        f => f + " ",
        f => f + "x",
        f => f[..^1],
        f => f.Replace("\"output_tokens\"", "\"output_tokens\\u0022"),
        f => f.Replace("\"input_tokens\"", "\"input\\u005ftokens\""),
        f => f.Replace("job_done", "job_error"),
        f => f.Replace("\"usage\":{", "\"usage\":null,\"u\":{"),
    ];

    [Fact]
    public void An_agents_frame_reads_as_the_general_deserializer_reads_it() =>
        Dones.Sample(done =>
        {
            var frame = ProtocolJson.Serialize(done);
            var fast = JobDoneFrame.TryRead(frame);
            Assert.NotNull(fast);
            Assert.Equal(ProtocolJson.TryDeserialize(frame), fast);
            Assert.Equal(done, fast);
        });

    [Fact]
    public void Any_other_frame_is_deferred_or_read_the_same() =>
        Gen.Select(Dones, Gen.Int[0, Variants.Length - 1]).Sample((done, v) =>
        {
            var frame = Encoding.UTF8.GetBytes(Variants[v](Encoding.UTF8.GetString(ProtocolJson.Serialize(done))));
            if (JobDoneFrame.TryRead(frame) is { } fast)
            {
                Assert.Equal(ProtocolJson.TryDeserialize(frame), fast);
            }
        });

    [Fact]
    public void A_frame_laid_out_differently_is_left_to_the_general_path() =>
        Dones.Sample(done =>
        {
            var frame = Encoding.UTF8.GetString(ProtocolJson.Serialize(done));
            Assert.Null(JobDoneFrame.TryRead(Encoding.UTF8.GetBytes(frame[..^1] + ",\"extra\":1}")));
            Assert.Null(JobDoneFrame.TryRead(Encoding.UTF8.GetBytes(frame.Replace("{\"type\":\"job_done\",", "{\"type\":\"job_done\",\"duration_ms\":7,"))));
        });
}
