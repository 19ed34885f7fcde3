using System.ComponentModel.DataAnnotations;

namespace Coinop.Market.Hosting;

/// <summary>How new providers may join.</summary>
public enum EnrollmentMode
{
    Open,
    Code,
}

/// <summary>Settings of one market node, validated at start.</summary>
public sealed class MarketOptions : IValidatableObject
{
    /// <summary>Addresses Kestrel listens on, e.g. <c>http://127.0.0.1:3338</c>.</summary>
    [Required]
    public string Urls { get; set; } = "http://127.0.0.1:3338";

    /// <summary>The market's data directory (SQLite database, mint seed, admin token).</summary>
    [Required]
    public string DataDir { get; set; } = ".coinop/market";

    /// <summary>A PostgreSQL connection string; when set the store lives there instead of SQLite.</summary>
    public string? Postgres { get; set; }

    /// <summary>Where the market's other nodes (and providers learning the node list) reach this node; defaults to the first of <see cref="Urls"/>.</summary>
    public string? NodeUrl { get; set; }

    public EnrollmentMode Enrollment { get; set; } = EnrollmentMode.Open;

    /// <summary>Serve without payment.</summary>
    public bool Free { get; set; }

    /// <summary>The market's share of every paid job, in percent.</summary>
    [Range(0, 100)]
    public double FeePercent { get; set; } = 10;

    /// <summary>Other Cashu mints whose tokens the market accepts (it always accepts its own).</summary>
    public List<string> AcceptMints { get; set; } = [];

    /// <summary>The Lightning backend of the mint: <c>fake</c> (demo money: quotes paid at once), <c>lnd</c> or <c>cln</c>.</summary>
    public string Lightning { get; set; } = "fake";

    /// <summary>LND's REST address (<c>https://HOST:PORT</c>), macaroon file and TLS certificate file.</summary>
    public string? LndUrl { get; set; }

    public string? LndMacaroon { get; set; }

    public string? LndCert { get; set; }

    /// <summary>Core Lightning's clnrest address (<c>https://HOST:PORT</c>), rune, and TLS certificate file.</summary>
    public string? ClnUrl { get; set; }

    public string? ClnRune { get; set; }

    public string? ClnCert { get; set; }

    /// <summary>Largest mint quote, largest melt quote, and the cap on outstanding ecash (0: none), in sat.</summary>
    [Range(1, long.MaxValue)]
    public long MintMaxSat { get; set; } = 1_000_000;

    [Range(1, long.MaxValue)]
    public long MeltMaxSat { get; set; } = 1_000_000;

    [Range(0, long.MaxValue)]
    public long MintMaxOutstandingSat { get; set; } = 10_000_000;

    /// <summary>The public base URL consumers and providers use; defaults to the first of <see cref="Urls"/>.</summary>
    public string? PublicUrl { get; set; }

    /// <summary>Largest accepted request body.</summary>
    [Range(1024, 256L * 1024 * 1024)]
    public long MaxRequestBodyBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>
    /// The highest price a provider may ask, <c>IN:OUT</c> in sats per million tokens (<c>--max-price</c>): offers above
    /// it get no jobs, so no provider can make a consumer reserve or pay more.
    /// </summary>
    [Required]
    public string MaxPrice { get; set; } = "10000:30000";

    /// <summary>The largest context window a provider's offer is believed to have (<c>--max-context</c>, tokens); larger claims count as this.</summary>
    [Range(1, 100_000_000)]
    public int MaxContext { get; set; } = 131_072;

    /// <summary>Deadline of an inference request when the consumer names none.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromMinutes(10);

    // Abuse guards (see Abuse/ClientRateLimits and Abuse/StaleRowSweep).

    /// <summary>Mint and melt quotes one client address may create per <see cref="RateLimitWindow"/>.</summary>
    [Range(1, 1_000_000)]
    public int QuoteRateLimit { get; set; } = 60;

    /// <summary>Provider handshakes one client address may start per <see cref="RateLimitWindow"/>.</summary>
    [Range(1, 1_000_000)]
    public int HandshakeRateLimit { get; set; } = 30;

    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan RateLimitWindow { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Limit loopback clients too (off: local tools, tests and a reverse proxy on the same host come from loopback).</summary>
    public bool RateLimitLoopback { get; set; }

    /// <summary>
    /// How often a SQLite store's WAL is checkpointed in the background (when anything was written): the writers then never
    /// checkpoint on a request's path, and on power loss (not a process crash, which loses nothing committed) at most
    /// about this much of the latest commits can be lost, as SQLite's synchronous=NORMAL allows.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:01:00")]
    public TimeSpan WalCheckpointInterval { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>How often stale unauthenticated rows (unpaid quotes, request nonces, idle providers) are pruned.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "30.00:00:00")]
    public TimeSpan StaleRowSweepInterval { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>How long unpaid quotes (past their expiry) and read-only provider request nonces are kept.</summary>
    [Range(typeof(TimeSpan), "00:10:00", "3650.00:00:00")]
    public TimeSpan StaleRowRetention { get; set; } = TimeSpan.FromDays(1);

    /// <summary>How long a provider that joined an open market and never earned is kept after it was last seen.</summary>
    [Range(typeof(TimeSpan), "01:00:00", "3650.00:00:00")]
    public TimeSpan IdleProviderRetention { get; set; } = TimeSpan.FromDays(7);

    // Heartbeats, after Nomad's defaults.
    [Range(typeof(TimeSpan), "00:00:00.1", "1.00:00:00")]
    public TimeSpan HeartbeatMinTtl { get; set; } = TimeSpan.FromSeconds(10);

    [Range(typeof(TimeSpan), "00:00:00.1", "1.00:00:00")]
    public TimeSpan HeartbeatMaxTtl { get; set; } = TimeSpan.FromMinutes(10);

    [Range(0, 1_000_000)]
    public double MaxHeartbeatsPerSecond { get; set; } = 50;

    [Range(typeof(TimeSpan), "00:00:00", "1.00:00:00")]
    public TimeSpan HeartbeatGrace { get; set; } = TimeSpan.FromSeconds(10);

    [Range(typeof(TimeSpan), "00:00:00", "1.00:00:00")]
    public TimeSpan FailoverTtl { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How long a provider keeps a workload copy running without an acknowledged heartbeat; the market replaces a silent
    /// copy after this plus the clock slack (see <see cref="Core.Workloads.WorkloadTimings.ForMarket"/>).
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.3", "1.00:00:00")]
    public TimeSpan WorkloadStopAfter { get; set; } = Core.Workloads.WorkloadTimings.DefaultStopAfter;

    // Workloads.

    /// <summary>How often a checkpointed copy uploads its state directory.</summary>
    [Range(typeof(TimeSpan), "00:00:00.1", "1.00:00:00")]
    public TimeSpan CheckpointInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How often a running paid workload's time is settled: charged to it and credited to its providers.</summary>
    [Range(typeof(TimeSpan), "00:00:00.1", "1.00:00:00")]
    public TimeSpan WorkloadSettleInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Workload messages one provider may have waiting for the supervisor; a provider that queues more is disconnected
    /// and what it queued is dropped unread (an honest provider sends one heartbeat and a few reports per copy at a time).
    /// </summary>
    [Range(16, 1_000_000)]
    public int ProviderCommandQueueLimit { get; set; } = 4096;

    /// <summary>The most CPU cores placement believes one provider's workload offer has (<c>--max-provider-cpu</c>); larger claims count as this.</summary>
    [Range(0.01, 1_000_000)]
    public double MaxProviderCpu { get; set; } = 64;

    /// <summary>The most memory placement believes one provider's workload offer has (<c>--max-provider-memory</c>, MB); larger claims count as this.</summary>
    [Range(1, 1L << 40)]
    public long MaxProviderMemoryMb { get; set; } = 256 * 1024;

    /// <summary>
    /// The most CPU cores placement believes a provider offers before it has delivered work (<c>--unproven-provider-cpu</c>);
    /// afterwards, twice the most it kept live (docs/security.md, "Capacity claims").
    /// </summary>
    [Range(0.01, 1_000_000)]
    public double UnprovenProviderCpu { get; set; } = 4;

    /// <summary>The same for memory (<c>--unproven-provider-memory</c>, MB).</summary>
    [Range(1, 1L << 40)]
    public long UnprovenProviderMemoryMb { get; set; } = 8 * 1024;

    /// <summary>How long a copy must have been live on a provider before its size counts as delivered (<c>--capacity-proving-time</c>).</summary>
    public TimeSpan CapacityProvingTime { get; set; } = Workloads.DeliveryTrustSettings.DefaultProvingTime;

    /// <summary>The largest checkpoint the market stores (encrypted bytes).</summary>
    [Range(1024, 1L << 30)]
    public long MaxCheckpointBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>The workload timings <see cref="WorkloadStopAfter"/> gives (see <see cref="Core.Workloads.WorkloadTimings.ForMarket"/>).</summary>
    public Core.Workloads.WorkloadTimings WorkloadTimings => Core.Workloads.WorkloadTimings.ForMarket(WorkloadStopAfter);

    /// <summary>How long Responses API answers are kept for GET /v1/responses/{id} and previous_response_id.</summary>
    public TimeSpan ResponseRetention { get; set; } = TimeSpan.FromHours(1);

    /// <summary>The bounds on providers' offers these knobs give (output reserved without any limit: <paramref name="defaultOutputTokens"/>).</summary>
    public Core.Pricing.OfferLimits OfferLimits(int defaultOutputTokens) =>
        new(Core.Pricing.ModelPrice.TryParseSats(MaxPrice, out var price, out _) ? price : Core.Pricing.OfferLimits.Default.MaxPrice, MaxContext, defaultOutputTokens);

    public string EffectivePublicUrl => (PublicUrl ?? Urls.Split(';', StringSplitOptions.RemoveEmptyEntries)[0]).TrimEnd('/');

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (HeartbeatMinTtl > HeartbeatMaxTtl)
        {
            yield return new ValidationResult("heartbeat min TTL must not exceed the max TTL", [nameof(HeartbeatMinTtl)]);
        }

        // The single-writer chain of docs/durability.md: providers stop cut-off copies before the market replaces them.
        foreach (var error in WorkloadTimings.Validate())
        {
            yield return new ValidationResult($"workload timings from --workload-stop-after: {error}", [nameof(WorkloadStopAfter)]);
        }

        foreach (var mint in AcceptMints)
        {
            if (!Uri.TryCreate(mint, UriKind.Absolute, out var u) || (u.Scheme != "http" && u.Scheme != "https"))
            {
                yield return new ValidationResult($"--accept-mint '{mint}' is not an http(s) URL", [nameof(AcceptMints)]);
            }
        }

        if (NodeUrl is not null && (!Uri.TryCreate(NodeUrl, UriKind.Absolute, out var node) || (node.Scheme != "http" && node.Scheme != "https")))
        {
            yield return new ValidationResult($"--node-url '{NodeUrl}' is not an http(s) URL", [nameof(NodeUrl)]);
        }

        if (!Core.Pricing.ModelPrice.TryParseSats(MaxPrice, out _, out var priceError))
        {
            yield return new ValidationResult($"--max-price: {priceError}", [nameof(MaxPrice)]);
        }

        switch (Lightning)
        {
            case "fake":
                break;
            case "lnd" when LndUrl is null || LndMacaroon is null:
                yield return new ValidationResult("--lightning lnd needs --lnd-url and --lnd-macaroon (and --lnd-cert for a self-signed node)", [nameof(LndUrl)]);
                break;
            case "cln" when ClnUrl is null || ClnRune is null:
                yield return new ValidationResult("--lightning cln needs --cln-url and --cln-rune (and --cln-cert for a self-signed node)", [nameof(ClnUrl)]);
                break;
            case "lnd" or "cln":
                foreach (var url in new[] { LndUrl, ClnUrl }.OfType<string>())
                {
                    if (!Uri.TryCreate(url, UriKind.Absolute, out var u) || u.Scheme != "https")
                    {
                        yield return new ValidationResult($"'{url}' is not an https:// URL (Lightning REST APIs are served over TLS)", [nameof(LndUrl)]);
                    }
                }

                break;
            default:
                yield return new ValidationResult($"--lightning '{Lightning}' is not available; use fake, lnd or cln", [nameof(Lightning)]);
                break;
        }

        if (ResponseRetention <= TimeSpan.Zero || ResponseRetention > TimeSpan.FromDays(30))
        {
            yield return new ValidationResult("--response-retention must be more than 0 and at most 30d", [nameof(ResponseRetention)]);
        }
    }
}
