using System.ComponentModel.DataAnnotations;

namespace Coinop.Market.Inference;

/// <summary>Tuning of the inference pipeline (defaults suit production; tests shorten them).</summary>
public sealed class InferenceOptions
{
    /// <summary>Attempts per job: the first and the retries on other providers before any output was sent.</summary>
    [Range(1, 10)]
    public int MaxAttempts { get; set; } = 3;

    /// <summary>Output a provider may have unacknowledged per job; what a slow consumer can make the market hold.</summary>
    [Range(4096, 16 * 1024 * 1024)]
    public int WindowBytes { get; set; } = 256 * 1024;

    /// <summary>How long an attempt may take to produce its first output before it is retried elsewhere.</summary>
    public TimeSpan FirstChunkTimeout { get; set; } = TimeSpan.FromSeconds(120);

    /// <summary>The largest whole (non-streaming) response the market gathers before sending it.</summary>
    [Range(64 * 1024, 1024 * 1024 * 1024)]
    public int MaxBufferedResponseBytes { get; set; } = 64 * 1024 * 1024;

    /// <summary>Output tokens reserved when the consumer names no <c>max_tokens</c> and no offer names a context window.</summary>
    [Range(1, 10_000_000)]
    public int DefaultOutputReservation { get; set; } = 8192;

    /// <summary>
    /// Requests per model that may wait for a provider's slot when every suitable provider is at its concurrency limit;
    /// more get 429 with <c>Retry-After</c>.
    /// </summary>
    [Range(1, 1_000_000)]
    public int MaxQueuedPerModel { get; set; } = 256;

    /// <summary>How often waiting requests are matched against providers that came, unparked or changed their offers (a slot freeing wakes them at once).</summary>
    public TimeSpan QueueSweepInterval { get; set; } = TimeSpan.FromSeconds(1);
}
