using System.ComponentModel.DataAnnotations;
using Coinop.Core.Pricing;
using Coinop.Provider.Backends;
using Coinop.Provider.Workloads.Limits;

namespace Coinop.Provider.Hosting;

/// <summary>Settings of a provider agent, validated when the host starts.</summary>
public sealed class ProviderOptions : IValidatableObject
{
    /// <summary>
    /// The base URLs (http or https) of the market's nodes, tried in this order: the agent links to one node at a time
    /// (<c>ws(s)://…/provider/connect</c>) and moves on to the next when its node dies or drains. It also learns the
    /// market's current nodes from the node it links to.
    /// </summary>
    public List<string> MarketUrls { get; set; } = [];

    /// <summary>The market's base URL; several, comma-separated, set <see cref="MarketUrls"/>.</summary>
    public string MarketUrl
    {
        get => string.Join(',', MarketUrls);
        set => MarketUrls = [.. (value ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
    }

    /// <summary>Inference servers to use; empty means probe the standard local ports.</summary>
    public List<BackendEndpoint> Backends { get; set; } = [];

    /// <summary>Holds the identity key, the pid file and the lock.</summary>
    [Required]
    public string DataDir { get; set; } = ".coinop/provider";

    /// <summary>A display name the market shows.</summary>
    [MaxLength(64, ErrorMessage = "--name must be at most 64 characters")]
    public string? Name { get; set; }

    /// <summary>Per-model prices; models not listed get <see cref="DefaultPrice"/>.</summary>
    public Dictionary<string, ModelPrice> Prices { get; set; } = new(StringComparer.Ordinal);

    public ModelPrice DefaultPrice { get; set; } = ModelPrice.Default;

    /// <summary>Jobs run at once; more are refused with <c>out_of_capacity</c>.</summary>
    [Range(1, 100_000, ErrorMessage = "--max-concurrent must be between 1 and 100000")]
    public int MaxConcurrent { get; set; } = 8;

    /// <summary>Presented on first contact with a market that enrolls by code.</summary>
    public string? EnrollmentCode { get; set; }

    /// <summary>How long a drain waits for jobs in flight before abandoning them.</summary>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often backends are probed again while everything is healthy.</summary>
    public TimeSpan RediscoverInterval { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>How often backends are probed while nothing was found or a named backend is down.</summary>
    public TimeSpan RetryProbeInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long one backend may take to answer a discovery probe.</summary>
    public TimeSpan ProbeTimeout { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>Host probed for backends on their standard ports when none is named.</summary>
    [Required]
    public string ProbeHost { get; set; } = "127.0.0.1";

    /// <summary>Connecting and the challenge exchange must finish within this.</summary>
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Extra silence allowed after a TTL before the link counts as dead (the market's default grace).</summary>
    public TimeSpan LinkGrace { get; set; } = TimeSpan.FromSeconds(10);

    public TimeSpan ReconnectInitialDelay { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan ReconnectMaxDelay { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Run workloads in this sandbox: <c>process</c> (bubblewrap when it works, else a plain process) or <c>docker</c>; null runs none.</summary>
    public string? Workloads { get; set; }

    /// <summary>
    /// Run workloads as plain processes (isolation <c>none</c>) when bubblewrap does not work here; without it such a
    /// provider refuses workloads (<c>--unsafe-no-sandbox</c>).
    /// </summary>
    public bool UnsafeNoSandbox { get; set; }

    /// <summary>Docker copies may open connections to the internet (<c>--workload-egress</c>); by default they have no network.</summary>
    public bool WorkloadEgress { get; set; }

    /// <summary>Per-copy caps: processes (<c>--workload-pids</c>), <c>/tmp</c> (<c>--workload-tmp</c>) and disk (<c>--workload-disk</c>).</summary>
    public CopyLimits WorkloadLimits { get; set; } = new();

    /// <summary>CPU cores offered to workloads (default: every core of the machine).</summary>
    public double? WorkloadCpuCores { get; set; }

    /// <summary>Memory offered to workloads in MiB (default: half the machine's).</summary>
    public long? WorkloadMemoryMb { get; set; }

    /// <summary>The workload rates: msat per core-second and per GiB-second.</summary>
    public WorkloadPrice WorkloadPrice { get; set; } = WorkloadPrice.Default;

    /// <summary>The host name or address consumers reach this machine's port bridges at (it goes into access receipts).</summary>
    public string WorkloadPublicHost { get; set; } = "127.0.0.1";

    /// <summary>
    /// The length of each copy's signed usage records (<c>--usage-window</c>); a copy that stops for any reason the agent
    /// sees also signs and sends its last, shorter window.
    /// </summary>
    public TimeSpan WorkloadUsageWindow { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Where to serve the agent's metrics (<c>--metrics-listen</c>, an address and port such as <c>127.0.0.1:9464</c>);
    /// null serves none.
    /// </summary>
    public string? MetricsListen { get; set; }

    /// <summary>The <c>/provider/connect</c> WebSocket URL of a market node's base URL.</summary>
    public static Uri ConnectUrlFor(string marketUrl)
    {
        var market = new Uri(marketUrl.TrimEnd('/') + "/provider/connect");
        return new UriBuilder(market) { Scheme = market.Scheme == "https" ? "wss" : "ws" }.Uri;
    }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (MarketUrls.Count == 0)
        {
            yield return new ValidationResult("--market is required", [nameof(MarketUrls)]);
        }

        foreach (var url in MarketUrls)
        {
            if (Reconnect.MarketRotation.Normalize(url) is null)
            {
                yield return new ValidationResult($"--market '{url}' is not an http(s) URL", [nameof(MarketUrls)]);
            }
        }

        var durations = new (string Name, TimeSpan Value)[]
        {
            ("--drain-timeout", DrainTimeout), ("rediscover interval", RediscoverInterval), ("retry probe interval", RetryProbeInterval),
            ("probe timeout", ProbeTimeout), ("handshake timeout", HandshakeTimeout), ("reconnect initial delay", ReconnectInitialDelay),
        };
        foreach (var (name, value) in durations)
        {
            if (value <= TimeSpan.Zero || value > TimeSpan.FromDays(1))
            {
                yield return new ValidationResult($"{name} must be between 0 and 24h (got {value})");
            }
        }

        if (LinkGrace < TimeSpan.Zero)
        {
            yield return new ValidationResult("link grace must not be negative", [nameof(LinkGrace)]);
        }

        if (ReconnectMaxDelay < ReconnectInitialDelay)
        {
            yield return new ValidationResult("the reconnect max delay must not be below the initial delay", [nameof(ReconnectMaxDelay)]);
        }

        if (Workloads is not (null or "process" or "docker"))
        {
            yield return new ValidationResult($"--workloads '{Workloads}' is not a sandbox: use process or docker", [nameof(Workloads)]);
        }

        if (WorkloadEgress && Workloads != "docker")
        {
            yield return new ValidationResult("--workload-egress needs --workloads docker (bubblewrap copies have only their own loopback)", [nameof(WorkloadEgress)]);
        }

        if (UnsafeNoSandbox && Workloads != "process")
        {
            yield return new ValidationResult("--unsafe-no-sandbox only applies to --workloads process", [nameof(UnsafeNoSandbox)]);
        }

        string? limitsProblem = null;
        try
        {
            WorkloadLimits.Validate();
        }
        catch (ArgumentException ex)
        {
            limitsProblem = ex.Message;
        }

        if (limitsProblem is not null)
        {
            yield return new ValidationResult("workload limits: " + limitsProblem, [nameof(WorkloadLimits)]);
        }

        if (WorkloadCpuCores is { } cpu && (!double.IsFinite(cpu) || cpu < 0.01 || cpu > 1024))
        {
            yield return new ValidationResult("--cpu must be between 0.01 and 1024 cores", [nameof(WorkloadCpuCores)]);
        }

        if (WorkloadMemoryMb is < 16 or > 16L * 1024 * 1024)
        {
            yield return new ValidationResult("--memory must be between 16 MB and 16 TB", [nameof(WorkloadMemoryMb)]);
        }

        if (string.IsNullOrWhiteSpace(WorkloadPublicHost) || WorkloadPublicHost.Length > 253)
        {
            yield return new ValidationResult("--workload-host must be a host name or address", [nameof(WorkloadPublicHost)]);
        }

        if (WorkloadUsageWindow < TimeSpan.FromMilliseconds(100) || WorkloadUsageWindow > TimeSpan.FromDays(1))
        {
            yield return new ValidationResult("--usage-window must be between 100ms and 1d", [nameof(WorkloadUsageWindow)]);
        }

        if (MetricsListen is { } listen && (!System.Net.IPEndPoint.TryParse(listen, out var endpoint) || endpoint.Port == 0))
        {
            yield return new ValidationResult($"--metrics-listen '{listen}' is not an address and port (such as 127.0.0.1:9464)", [nameof(MetricsListen)]);
        }

        foreach (var duplicate in Backends.GroupBy(b => b).Where(g => g.Count() > 1))
        {
            yield return new ValidationResult($"--backend {duplicate.Key} is given twice", [nameof(Backends)]);
        }

        foreach (var (model, price) in Prices)
        {
            if (string.IsNullOrWhiteSpace(model) || price.InputMsatPerMtok < 0 || price.OutputMsatPerMtok < 0)
            {
                yield return new ValidationResult($"--price for '{model}' is not valid", [nameof(Prices)]);
            }
        }
    }
}
