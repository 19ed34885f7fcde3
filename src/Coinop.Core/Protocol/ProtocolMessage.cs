using System.Text.Json;
using System.Text.Json.Serialization;

namespace Coinop.Core.Protocol;

/// <summary>
/// A control message on the provider WebSocket (a JSON text frame whose "type" names the message).
/// Bulk job output travels in binary frames instead (see <see cref="ChunkFrame"/>).
/// </summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "type", UnknownDerivedTypeHandling = JsonUnknownDerivedTypeHandling.FailSerialization)]
[JsonDerivedType(typeof(AuthChallenge), "auth_challenge")]
[JsonDerivedType(typeof(AuthResponse), "auth_response")]
[JsonDerivedType(typeof(AuthOk), "auth_ok")]
[JsonDerivedType(typeof(AuthFailed), "auth_failed")]
[JsonDerivedType(typeof(CapabilitiesMessage), "capabilities")]
[JsonDerivedType(typeof(HeartbeatMessage), "heartbeat")]
[JsonDerivedType(typeof(HeartbeatAck), "heartbeat_ack")]
[JsonDerivedType(typeof(JobMessage), "job")]
[JsonDerivedType(typeof(JobCancel), "job_cancel")]
[JsonDerivedType(typeof(JobWindow), "job_window")]
[JsonDerivedType(typeof(JobDone), "job_done")]
[JsonDerivedType(typeof(JobError), "job_error")]
[JsonDerivedType(typeof(DrainNotice), "draining")]
[JsonDerivedType(typeof(MarketNodes), "market_nodes")]
[JsonDerivedType(typeof(WorkloadStart), "workload_start")]
[JsonDerivedType(typeof(WorkloadStop), "workload_stop")]
[JsonDerivedType(typeof(WorkloadRelease), "workload_release")]
[JsonDerivedType(typeof(WorkloadAck), "workload_ack")]
[JsonDerivedType(typeof(WorkloadHeartbeat), "workload_heartbeat")]
[JsonDerivedType(typeof(WorkloadExited), "workload_exited")]
[JsonDerivedType(typeof(WorkloadLost), "workload_lost")]
[JsonDerivedType(typeof(WorkloadUsage), "workload_usage")]
[JsonDerivedType(typeof(WorkloadReceipt), "workload_receipt")]
[JsonDerivedType(typeof(WorkloadCheckpoint), "workload_checkpoint")]
public abstract record ProtocolMessage;

// ---- handshake ---------------------------------------------------------------------------

/// <summary>Market → provider, first frame: a fresh random nonce the provider must sign.</summary>
public sealed record AuthChallenge(string Nonce, string MarketId, int ProtocolVersion) : ProtocolMessage;

/// <summary>Provider → market: its public key and a signature over <see cref="ProviderAuth.SigningPayload"/>.</summary>
public sealed record AuthResponse(
    string PublicKey,
    string Signature,
    string AgentVersion,
    string? Name,
    string? EnrollmentCode) : ProtocolMessage;

/// <summary>Market → provider: authenticated; the first heartbeat TTL, and the market's nodes the provider may link to.</summary>
public sealed record AuthOk(string ProviderId, int HeartbeatTtlMs, IReadOnlyList<string>? Nodes = null) : ProtocolMessage;

/// <summary>Market → provider: refused; the socket closes with 4401 after this.</summary>
public sealed record AuthFailed(string Reason) : ProtocolMessage;

// ---- capabilities and liveness -------------------------------------------------------------

/// <summary>Provider → market after auth, on every reconnect and whenever discovery changes.</summary>
public sealed record CapabilitiesMessage(
    IReadOnlyList<ModelOffer> Models,
    int MaxConcurrent,
    string AgentVersion,
    WorkloadCapacity? Workloads = null) : ProtocolMessage;

/// <summary>One model a provider serves, with its price and the backend that serves it.</summary>
/// <param name="Tools">Whether the model calls tools (Ollama's <c>tools</c> capability); null when the backend does not say, and tool requests may go there.</param>
/// <param name="Vision">The model takes images (declared by the backend's model metadata at discovery); image requests go only to such offers.</param>
public sealed record ModelOffer(
    string Model,
    string Backend,
    long InputMsatPerMtok,
    long OutputMsatPerMtok,
    int? ContextWindow,
    int MaxConcurrent,
    bool AnthropicNative = false,
    bool Embeddings = false,
    bool? Tools = null,
    bool Vision = false)
{
    /// <summary>The offer's prices as one value (not sent: derived from the two fields).</summary>
    [JsonIgnore]
    public Pricing.ModelPrice Price => new(InputMsatPerMtok, OutputMsatPerMtok);
}

/// <summary>Sandboxed workload capacity a provider offers (absent when it runs no workloads).</summary>
/// <param name="Isolation">The isolation level of the sandbox in use: <c>bubblewrap</c>, <c>docker</c> or <c>none</c> (plain processes, only with the operator's <c>--unsafe-no-sandbox</c>).</param>
/// <param name="SealingKey">The provider's X25519 public key (base64) that checkpoint keys are sealed to.</param>
/// <param name="SealingKeySignature">The provider's Ed25519 signature binding <paramref name="SealingKey"/> to its identity (base64).</param>
/// <param name="Incarnation">Random per run of the agent process: a new one means every copy of the previous run is gone.</param>
/// <param name="ApproximateLimits">CPU and memory limits are enforced only approximately (no writable cgroup).</param>
/// <param name="Egress">Copies may open connections to the internet (the operator's <c>--workload-egress</c>); otherwise they have none.</param>
public sealed record WorkloadCapacity(
    string Isolation,
    double CpuCores,
    long MemoryMb,
    long CpuMsatPerCoreSecond,
    long MemoryMsatPerGbSecond,
    string? SealingKey = null,
    string? SealingKeySignature = null,
    string? Incarnation = null,
    bool ApproximateLimits = false,
    bool Egress = false);

/// <summary>Provider → market, every <c>ttl/2</c>: real load figures.</summary>
public sealed record HeartbeatMessage(LoadFigures Load) : ProtocolMessage;

/// <summary>Load figures measured by the provider over its recent window.</summary>
public sealed record LoadFigures(
    int InFlight,
    int QueueDepth,
    double P50LatencyMs,
    double P95LatencyMs,
    double TokensPerSecond,
    double ErrorRate)
{
    public static LoadFigures Idle { get; } = new(0, 0, 0, 0, 0, 0);
}

/// <summary>Market → provider: heartbeat received; send the next one before <see cref="NextTtlMs"/> elapses.</summary>
public sealed record HeartbeatAck(int NextTtlMs) : ProtocolMessage;

/// <summary>
/// Market → provider: the market's nodes changed; the provider moves on to one of them when its node goes.
/// <paramref name="Workloads"/>: the node that supervises workloads, when it is not this one; a provider offering workloads
/// links there next (the market closes this link after sending it). Only a node the provider already knows is dialled.
/// </summary>
public sealed record MarketNodes(IReadOnlyList<string> Nodes, string? Workloads = null) : ProtocolMessage;

/// <summary>Provider → market: the provider is draining and takes no new jobs.</summary>
public sealed record DrainNotice(int DeadlineMs) : ProtocolMessage;

// ---- jobs ------------------------------------------------------------------------------------

/// <summary>
/// Market → provider: run one inference request. <see cref="Fence"/> is the job's fencing token for this
/// attempt; every frame the provider sends for the job carries it, and stale ones are dropped.
/// </summary>
public sealed record JobMessage(
    Guid JobId,
    long Fence,
    string Model,
    WireFormat Format,
    string Path,
    bool Stream,
    [property: JsonConverter(typeof(RawJsonValueConverter))] JsonElement Request,
    long DeadlineUnixMs,
    int WindowBytes) : ProtocolMessage;

/// <summary>Market → provider: stop the job (consumer gone, deadline passed or market draining).</summary>
public sealed record JobCancel(Guid JobId, string Reason) : ProtocolMessage;

/// <summary>Market → provider: the consumer drained output; the provider may send <see cref="Increment"/> more bytes.</summary>
public sealed record JobWindow(Guid JobId, int Increment) : ProtocolMessage;

/// <summary>Provider → market: the backend finished; usage as the backend reported it.</summary>
public sealed record JobDone(Guid JobId, long Fence, TokenUsage Usage, long DurationMs) : ProtocolMessage;

/// <summary>Provider → market: the job failed. <see cref="OutputSent"/> tells whether any chunk was sent.</summary>
public sealed record JobError(Guid JobId, long Fence, string Code, string Message, bool OutputSent) : ProtocolMessage;

/// <summary>Token counts of one job.</summary>
public sealed record TokenUsage(long InputTokens, long OutputTokens)
{
    public static TokenUsage Zero { get; } = new(0, 0);
}

/// <summary>The API dialect of a request and of the bytes a backend returns for it.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<WireFormat>))]
public enum WireFormat
{
    [JsonStringEnumMemberName("openai")] OpenAi,
    [JsonStringEnumMemberName("anthropic")] Anthropic,
}

/// <summary>The job error codes of the protocol.</summary>
public static class JobErrorCodes
{
    public const string OutOfCapacity = "out_of_capacity";
    public const string ModelNotLoaded = "model_not_loaded";
    public const string BackendUnreachable = "backend_unreachable";
    public const string BackendTimeout = "backend_timeout";
    public const string AuthRejectedByBackend = "auth_rejected_by_backend";

    /// <summary>The backend refused the request itself (HTTP 400/422); retrying elsewhere would fail the same way.</summary>
    public const string InvalidRequest = "invalid_request";
    public const string Internal = "internal";
}

/// <summary>WebSocket close codes and reasons used by the protocol.</summary>
public static class CloseCodes
{
    /// <summary>1001 going away with reason <c>drain:deploy</c>: a planned market shutdown; providers reconnect without escalating backoff.</summary>
    public const int GoingAway = 1001;
    public const string DrainDeploy = "drain:deploy";

    /// <summary>Authentication failed or timed out.</summary>
    public const int AuthFailed = 4401;

    /// <summary>The provider broke the protocol (bad frame, unknown message).</summary>
    public const int ProtocolError = 4400;

    /// <summary>The provider connected again elsewhere; this older socket is replaced.</summary>
    public const int Replaced = 4409;

    /// <summary>No heartbeat within TTL plus grace.</summary>
    public const int HeartbeatTimeout = 4408;
}
