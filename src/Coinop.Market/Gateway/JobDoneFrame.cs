using System.Text.Json;
using Coinop.Core.Protocol;

namespace Coinop.Market.Gateway;

/// <summary>
/// Reads a <c>job_done</c> frame of exactly the shape agents write (<c>type</c>, <c>job_id</c>, <c>fence</c>,
/// <c>usage</c>, <c>duration_ms</c>, in that order, nothing else) with one pass of the JSON reader. The general
/// deserializer cost a tenth of a relayed request's CPU in the market (polymorphic dispatch, a constructor's argument
/// cache, the nested record). Any other frame, even the same message laid out differently, returns null and goes to
/// <see cref="ProtocolJson.TryDeserialize"/>, which decides it as before: this never accepts what that would refuse
/// or reads a value differently (the same reader methods the serializer's converters use).
/// </summary>
public static class JobDoneFrame
{
    public static JobDone? TryRead(ReadOnlySpan<byte> frame)
    {
        if (!frame.StartsWith("{\"type\":\"job_done\","u8))
        {
            return null;
        }

        var reader = new Utf8JsonReader(frame);
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject
                || !Property(ref reader, "type"u8) || reader.TokenType != JsonTokenType.String || !reader.ValueTextEquals("job_done"u8)
                || !Property(ref reader, "job_id"u8) || reader.TokenType != JsonTokenType.String || !reader.TryGetGuid(out var jobId)
                || !Property(ref reader, "fence"u8) || !Int64(ref reader, out var fence)
                || !Property(ref reader, "usage"u8) || reader.TokenType != JsonTokenType.StartObject
                || !Property(ref reader, "input_tokens"u8) || !Int64(ref reader, out var input)
                || !Property(ref reader, "output_tokens"u8) || !Int64(ref reader, out var output)
                || !reader.Read() || reader.TokenType != JsonTokenType.EndObject
                || !Property(ref reader, "duration_ms"u8) || !Int64(ref reader, out var duration)
                || !reader.Read() || reader.TokenType != JsonTokenType.EndObject
                || reader.Read())
            {
                return null;
            }

            return new JobDone(jobId, fence, new TokenUsage(input, output), duration);
        }
        catch (JsonException)
        {
            return null; // not JSON (or something after the object): the general path says so
        }
    }

    /// <summary>Moves to the next property, which must be <paramref name="name"/>, and onto its value.</summary>
    private static bool Property(ref Utf8JsonReader reader, ReadOnlySpan<byte> name) =>
        reader.Read() && reader.TokenType == JsonTokenType.PropertyName && reader.ValueTextEquals(name) && reader.Read();

    private static bool Int64(ref Utf8JsonReader reader, out long value)
    {
        value = 0;
        return reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out value);
    }
}
