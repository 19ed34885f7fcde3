using System.Text;
using System.Text.Json;
using Coinop.Core.Protocol;
using Coinop.Provider.Jobs;
using CsCheck;

namespace Coinop.Provider.Tests.Units;

/// <summary>
/// <see cref="JobOrderReader"/> against the general deserializer it stands in for: every job the market writes is read
/// here, to the same fields, and no frame (reordered, duplicated, missing or unknown fields, odd values, broken bytes)
/// is ever read here to anything the general path would not give.
/// </summary>
public class JobOrderReaderProperties
{
    private static readonly Gen<string> Text = Gen.OneOf(
        Gen.String[Gen.Char.AlphaNumeric, 0, 12],
        Gen.String[0, 12],
        Gen.Const("é\"\\\n</script>\u2028"),
        Gen.Const(""));

    private static readonly Gen<JsonElement> Request = Gen.OneOf(
        Text.Select(t => JsonSerializer.SerializeToElement(new Dictionary<string, object?>
        {
            ["model"] = t,
            ["messages"] = new[] { new { role = "user", content = t + t } },
            ["stream"] = t.Length % 2 == 0,
            ["max_tokens"] = t.Length,
        })),
        Text.Select(t => JsonSerializer.SerializeToElement(t)),
        Gen.Double.Select(d => JsonSerializer.SerializeToElement(d)),
        Gen.Const(JsonSerializer.SerializeToElement<object?>(null)),
        Gen.Int.Array[0, 5].Select(a => JsonSerializer.SerializeToElement(a)));

    private static readonly Gen<JobMessage> Job =
        Gen.Select(Gen.Guid, Gen.Long, Text, Gen.Bool, Text, Gen.Bool, Request, Gen.Select(Gen.Long, Gen.Int))
            .Select((id, fence, model, anthropic, path, stream, request, numbers) => new JobMessage(
                id, fence, model, anthropic ? WireFormat.Anthropic : WireFormat.OpenAi, path, stream, request, numbers.Item1, numbers.Item2));

    [Fact]
    public void Every_job_the_market_writes_is_read_to_the_same_fields()
    {
        Job.Sample(job =>
        {
            var frame = ProtocolJson.Serialize(job);
            Assert.Equal(JobOrderReader.Outcome.Job, JobOrderReader.TryRead(frame, out var order));
            AssertSame(JobOrder.From(job), order!);
        });
    }

    [Fact]
    public void A_frame_read_here_reads_the_same_through_the_general_path()
    {
        // A job's fields as the market writes them, then rewritten: reordered, dropped, repeated, an unknown one added,
        // spaced out, and sometimes a byte changed.
        var gen = Gen.Select(Job, Gen.Int[0, 11].Array[0, 14], Gen.Bool, Gen.Int[0, 400], Gen.Byte);
        gen.Sample((job, picks, spaced, at, value) =>
        {
            var fields = Fields(ProtocolJson.Serialize(job));
            var chosen = picks.Length == 0 ? fields : picks.Select(i => i < fields.Count ? fields[i] : "\"unknown\":[1,{\"a\":null}]").ToList();
            var text = "{" + string.Join(spaced ? " , " : ",", chosen) + "}";
            var bytes = Encoding.UTF8.GetBytes(spaced ? " " + text + " \n" : text);
            if (at < bytes.Length && value % 3 == 0)
            {
                bytes[at] = value;
            }

            if (JobOrderReader.TryRead(bytes, out var order) == JobOrderReader.Outcome.Job)
            {
                var general = Assert.IsType<JobMessage>(ProtocolJson.TryDeserialize(bytes));
                AssertSame(JobOrder.From(general), order!);
            }
        });
    }

    [Theory]
    [InlineData("""{"type":"job_window","job_id":"6f9619ff-8b86-c011-b42d-00cf4fc964ff","increment":5}""")]
    [InlineData("""{"job_id":"6f9619ff-8b86-c011-b42d-00cf4fc964ff","type":"job"}""")]
    [InlineData("not json")]
    [InlineData("")]
    public void Anything_else_is_left_to_the_general_path(string frame) =>
        Assert.Equal(JobOrderReader.Outcome.Other, JobOrderReader.TryRead(Encoding.UTF8.GetBytes(frame), out _));

    /// <summary>The top-level <c>"name":value</c> texts of a serialized object, in order.</summary>
    private static List<string> Fields(byte[] json)
    {
        using var document = JsonDocument.Parse(json);
        return document.RootElement.EnumerateObject().Select(p => JsonSerializer.Serialize(p.Name) + ":" + p.Value.GetRawText()).ToList();
    }

    private static void AssertSame(JobOrder expected, JobOrder actual)
    {
        Assert.Equal(expected with { Request = Array.Empty<byte>() }, actual with { Request = Array.Empty<byte>() });
        Assert.Equal(expected.Request, actual.Request);
    }
}
