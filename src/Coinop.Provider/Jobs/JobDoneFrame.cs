using System.Globalization;
using System.Text.Unicode;
using Coinop.Core.Protocol;

namespace Coinop.Provider.Jobs;

/// <summary>
/// Writes a <c>job_done</c> frame: the same bytes <see cref="ProtocolJson.Serialize"/> writes for a <see cref="JobDone"/>
/// (a property test holds them equal), formatted straight into the frame; every job sends one.
/// </summary>
internal static class JobDoneFrame
{
    // The frame with every number at its longest (a Guid is 36 characters, a long 20) fits well within this.
    private const int MaxLength = 256;

    public static byte[] Write(Guid jobId, long fence, TokenUsage usage, long durationMs)
    {
        Span<byte> buffer = stackalloc byte[MaxLength];
        if (!Utf8.TryWrite(buffer, CultureInfo.InvariantCulture,
                $$"""{"type":"job_done","job_id":"{{jobId}}","fence":{{fence}},"usage":{"input_tokens":{{usage.InputTokens}},"output_tokens":{{usage.OutputTokens}}},"duration_ms":{{durationMs}}}""",
                out var written))
        {
            return ProtocolJson.Serialize(new JobDone(jobId, fence, usage, durationMs));
        }

        return buffer[..written].ToArray();
    }
}
