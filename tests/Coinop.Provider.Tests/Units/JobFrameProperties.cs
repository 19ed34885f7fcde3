using Coinop.Core.Protocol;
using Coinop.Provider.Jobs;
using CsCheck;

namespace Coinop.Provider.Tests.Units;

/// <summary>The job's hand-written pieces against the general code they stand in for.</summary>
public class JobFrameProperties
{
    [Fact]
    public void A_job_done_frame_is_what_the_protocol_serializer_writes()
    {
        Gen.Select(Gen.Guid, Gen.Long, Gen.Long, Gen.Long, Gen.Long).Sample((id, fence, input, output, duration) =>
        {
            var usage = new TokenUsage(input, output);
            Assert.Equal(ProtocolJson.Serialize(new JobDone(id, fence, usage, duration)), JobDoneFrame.Write(id, fence, usage, duration));
        });
    }

    [Fact]
    public void A_body_is_an_event_stream_exactly_when_its_parsed_media_type_says_so()
    {
        var part = Gen.Int[0, 13].Select(i => new[] {"text/event-stream", "text/event-stream;", "Text/Event-Stream", "application/json", " text/event-stream ",
            "text/event-stream; charset=utf-8", "text/event-stream ;charset=\"a;b\"", "text/event-streams", "text/", "", ";", "\t", "x=y", ","}[i]);
        Gen.Select(part, part.Array[0, 2]).Sample((first, rest) =>
        {
            var value = first + string.Concat(rest);
            using var content = new ByteArrayContent([]);
            if (!content.Headers.TryAddWithoutValidation("Content-Type", value))
            {
                return;
            }

            Assert.Equal(content.Headers.ContentType?.MediaType == "text/event-stream", JobRun.IsEventStream(content.Headers));
        }, iter: 5000);
    }
}
