using System.Text;
using System.Text.Json;
using Coinop.Core.Protocol;

namespace Coinop.Core.Tests.Protocol;

public class ProtocolJsonTests
{
    [Fact]
    public void Messages_round_trip_with_their_type_tag_first()
    {
        var job = new JobMessage(Guid.NewGuid(), 3, "llama3", WireFormat.OpenAi, "chat/completions", true,
            JsonDocument.Parse("""{"model":"llama3","messages":[]}""").RootElement, 1_700_000_000_000, 262_144);
        var bytes = ProtocolJson.Serialize(job);
        var text = Encoding.UTF8.GetString(bytes);
        Assert.StartsWith("""{"type":"job","job_id":""", text, StringComparison.Ordinal);
        Assert.Contains("\"format\":\"openai\"", text, StringComparison.Ordinal);

        var back = Assert.IsType<JobMessage>(ProtocolJson.TryDeserialize(bytes));
        Assert.Equal(job.JobId, back.JobId);
        Assert.Equal("llama3", back.Request.GetProperty("model").GetString());
    }

    [Fact]
    public void The_type_tag_may_come_anywhere()
    {
        var msg = ProtocolJson.TryDeserialize("""{"next_ttl_ms":10000,"type":"heartbeat_ack"}"""u8);
        Assert.Equal(10_000, Assert.IsType<HeartbeatAck>(msg).NextTtlMs);
    }

    [Theory]
    [InlineData("")]
    [InlineData("not json")]
    [InlineData("""{"type":"nope"}""")]
    [InlineData("""{"no_type":1}""")]
    [InlineData("""[1,2]""")]
    public void Garbage_is_null_not_an_exception(string text)
    {
        Assert.Null(ProtocolJson.TryDeserialize(Encoding.UTF8.GetBytes(text)));
    }

    [Fact]
    public void Chunk_headers_round_trip()
    {
        var id = Guid.NewGuid();
        var frame = new byte[ChunkFrame.HeaderSize + 3];
        ChunkFrame.WriteHeader(frame, id, 42);
        Assert.True(ChunkFrame.TryReadHeader(frame, out var readId, out var fence));
        Assert.Equal((id, 42L), (readId, fence));
        Assert.False(ChunkFrame.TryReadHeader(frame.AsSpan(0, 10), out _, out _));
    }
}
