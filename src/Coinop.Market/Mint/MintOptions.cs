using System.ComponentModel.DataAnnotations;

namespace Coinop.Market.Mint;

/// <summary>Limits and lifetimes of the market's Cashu mint, validated at start.</summary>
public sealed class MintOptions
{
    /// <summary>How long a mint quote's invoice can be paid (NUT-23 <c>expiry</c>).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan MintQuoteTtl { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>How long a melt quote is valid.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan MeltQuoteTtl { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Most inputs (and Ys in a state check) per request (NUT error 11014).</summary>
    [Range(1, 10_000)]
    public int MaxInputs { get; set; } = 1000;

    /// <summary>Most outputs per request (NUT error 11015).</summary>
    [Range(1, 10_000)]
    public int MaxOutputs { get; set; } = 1000;

    /// <summary>Largest amount one mint quote may carry, in sat (<c>--mint-max-sat</c>).</summary>
    [Range(1, long.MaxValue)]
    public long MintMaxSat { get; set; } = 1_000_000;

    /// <summary>Largest amount one melt quote may carry, in sat (<c>--melt-max-sat</c>).</summary>
    [Range(1, long.MaxValue)]
    public long MeltMaxSat { get; set; } = 1_000_000;

    /// <summary>
    /// Most ecash the mint lets be outstanding against Lightning (issued and open mint quotes, less what was melted),
    /// in sat; 0 for no cap (<c>--mint-max-outstanding-sat</c>).
    /// </summary>
    [Range(0, long.MaxValue)]
    public long MaxOutstandingSat { get; set; } = 10_000_000;

    /// <summary>NUT-05 fee reserve: this percentage of a melt's amount, rounded up to whole sat...</summary>
    [Range(0, 100)]
    public double FeeReservePercent { get; set; } = 1;

    /// <summary>...and at least this many sat.</summary>
    [Range(0, 1_000_000)]
    public long FeeReserveMinSat { get; set; } = 1;

    /// <summary>How long a melt request waits for its payment to become definitive before answering PENDING (it goes on).</summary>
    public TimeSpan MeltWaitTime { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Input fee (ppk) of the first keyset; later keysets take theirs from <c>market rotate-keyset</c>.</summary>
    [Range(0, 1_000_000)]
    public long InitialInputFeePpk { get; set; }

    /// <summary>How often every PENDING melt is checked with the Lightning backend (and once at start, before waiting).</summary>
    public TimeSpan MeltRecheckInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How often a NUT-17 WebSocket connection looks at the quotes and proofs it watches for changes.</summary>
    public TimeSpan SubscriptionPollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// NUT-17 WebSocket connections one client may hold open at once (a client: its IPv4 address, or its IPv6 /64). Each
    /// connection re-reads what it watches every poll interval, so this bounds what one client makes the store do.
    /// </summary>
    [Range(1, 10_000)]
    public int SubscriptionConnectionsPerClient { get; set; } = 16;

    /// <summary>NUT-17 subscriptions one connection may hold at once (besides at most 100 objects watched in all).</summary>
    [Range(1, 1_000)]
    public int SubscriptionsPerConnection { get; set; } = 20;

    /// <summary>
    /// How long one message to a NUT-17 connection may take to go out. A wallet that stops reading fills the socket's
    /// buffers and the send waits; past this the connection is closed, so a slow client holds one message, not a queue.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan SubscriptionSendTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long the start waits for the Lightning node to settle the melts a previous run left PENDING before serving.</summary>
    public TimeSpan StartupReconcileTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>A melt left PENDING this long whose payment the node has no record of is sent again (no request of ours is still sending it).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan PendingMeltRecoveryAfter { get; set; } = TimeSpan.FromMinutes(1);

    [Required]
    public string Name { get; set; } = "Coinop market mint";
}
