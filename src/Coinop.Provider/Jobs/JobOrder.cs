using System.Runtime.InteropServices;
using System.Text.Json;
using Coinop.Core.Protocol;

namespace Coinop.Provider.Jobs;

/// <summary>
/// A job as this agent runs it: the fields of the market's <see cref="JobMessage"/> it uses, with the request body as
/// the bytes the market sent (posted to the backend as they are, never parsed).
/// </summary>
internal sealed record JobOrder(Guid JobId, long Fence, string Model, string Path, byte[] Request, long DeadlineUnixMs, int WindowBytes)
{
    /// <summary>A job the general deserializer read (a frame <see cref="JobOrderReader"/> left to it); one without a request posts <c>null</c>.</summary>
    public static JobOrder From(JobMessage job) =>
        new(job.JobId, job.Fence, job.Model, job.Path,
            job.Request.ValueKind == JsonValueKind.Undefined ? "null"u8.ToArray() : JsonMarshal.GetRawUtf8Value(job.Request).ToArray(),
            job.DeadlineUnixMs, job.WindowBytes);
}

/// <summary>
/// Reads a <c>job</c> frame in one forward pass, taking the request body as a slice of the frame instead of building
/// a <see cref="JsonElement"/> of it: the general deserializer (polymorphic, constructor-bound, a document for the body)
/// was a tenth of the agent's CPU per job at saturation. It reads only the shape the market writes (<c>type</c> first,
/// every field once, of its type); anything else is left to <see cref="ProtocolJson"/>, so what is accepted and how
/// never differs from it.
/// </summary>
internal static class JobOrderReader
{
    private const int JobIdBit = 1, FenceBit = 2, ModelBit = 4, FormatBit = 8, PathBit = 16, StreamBit = 32, RequestBit = 64, DeadlineBit = 128, WindowBit = 256;
    private const int AllBits = 511;

    /// <summary>How a frame was read.</summary>
    public enum Outcome
    {
        /// <summary>A job, read here.</summary>
        Job,

        /// <summary>Not something this reader takes: parse the frame with <see cref="ProtocolJson.TryDeserialize"/>.</summary>
        Other,
    }

    public static Outcome TryRead(ReadOnlySpan<byte> utf8, out JobOrder? job)
    {
        job = null;
        try
        {
            return Read(utf8, out job);
        }
        catch (JsonException)
        {
            return Outcome.Other;
        }
        catch (InvalidOperationException)
        {
            return Outcome.Other;
        }
        catch (FormatException)
        {
            return Outcome.Other;
        }
    }

    private static Outcome Read(ReadOnlySpan<byte> utf8, out JobOrder? job)
    {
        job = null;
        var reader = new Utf8JsonReader(utf8);
        if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject
            || !reader.Read() || reader.TokenType != JsonTokenType.PropertyName || !reader.ValueTextEquals("type"u8)
            || !reader.Read() || reader.TokenType != JsonTokenType.String || !reader.ValueTextEquals("job"u8))
        {
            return Outcome.Other;
        }

        Guid jobId = default;
        long fence = 0, deadline = 0;
        int window = 0, seen = 0;
        string? model = null, path = null;
        byte[]? request = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var bit = Field(ref reader);
            if (bit == 0 || (seen & bit) != 0 || !reader.Read())
            {
                return Outcome.Other;
            }

            seen |= bit;
            switch (bit)
            {
                case JobIdBit when reader.TokenType == JsonTokenType.String && reader.TryGetGuid(out jobId):
                case FenceBit when reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out fence):
                case DeadlineBit when reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out deadline):
                case WindowBit when reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out window):
                case StreamBit when reader.TokenType is JsonTokenType.True or JsonTokenType.False:
                case FormatBit when reader.TokenType == JsonTokenType.String && (reader.ValueTextEquals("openai"u8) || reader.ValueTextEquals("anthropic"u8)):
                    break;
                case ModelBit when reader.TokenType == JsonTokenType.String:
                    model = reader.GetString();
                    break;
                case PathBit when reader.TokenType == JsonTokenType.String:
                    path = reader.GetString();
                    break;
                case RequestBit:
                    var start = (int)reader.TokenStartIndex;
                    reader.Skip();
                    request = utf8[start..(int)reader.BytesConsumed].ToArray();
                    break;
                default:
                    return Outcome.Other;
            }
        }

        // The object ended, with every field, and nothing but whitespace follows it.
        if (reader.TokenType != JsonTokenType.EndObject || seen != AllBits || reader.Read())
        {
            return Outcome.Other;
        }

        job = new JobOrder(jobId, fence, model!, path!, request!, deadline, window);
        return Outcome.Job;
    }

    private static int Field(ref Utf8JsonReader reader) =>
        reader.ValueTextEquals("job_id"u8) ? JobIdBit
        : reader.ValueTextEquals("fence"u8) ? FenceBit
        : reader.ValueTextEquals("model"u8) ? ModelBit
        : reader.ValueTextEquals("format"u8) ? FormatBit
        : reader.ValueTextEquals("path"u8) ? PathBit
        : reader.ValueTextEquals("stream"u8) ? StreamBit
        : reader.ValueTextEquals("request"u8) ? RequestBit
        : reader.ValueTextEquals("deadline_unix_ms"u8) ? DeadlineBit
        : reader.ValueTextEquals("window_bytes"u8) ? WindowBit
        : 0;
}
