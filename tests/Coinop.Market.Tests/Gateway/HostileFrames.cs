using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Coinop.Core.Protocol;
using Coinop.Core.Workloads;
using Coinop.TestKit;
using CsCheck;
using NSec.Cryptography;

namespace Coinop.Market.Tests.Gateway;

/// <summary>
/// What a hostile provider sends, generated with CsCheck: every frame type of the protocol (and the market's own types)
/// with a field replaced by a wrong type, a null, an extreme number or odd unicode, the bytes mutated, random JSON, binary
/// garbage, absurd load figures and capabilities; and the gateway's rules for each (<see cref="Expected"/>).
/// </summary>
internal static class HostileFrames
{
    internal const string HostileModel = "hostile-model";

    /// <summary>What a frame must do to the link: stay open (ignored or applied), close it with 4400, or either (a field check decides).</summary>
    internal enum Rule
    {
        Open,
        Close,
        Either,
    }

    internal sealed record Frame(string Label, WebSocketMessageType Type, byte[] Bytes)
    {
        public static Frame Text(string label, string json) => new(label, WebSocketMessageType.Text, Encoding.UTF8.GetBytes(json));

        public override string ToString()
        {
            var shown = Type == WebSocketMessageType.Text ? Encoding.UTF8.GetString(Bytes) : Convert.ToHexString(Bytes);
            return $"{Label} ({Type}, {Bytes.Length} B): {(shown.Length > 300 ? shown[..300] + "…" : shown)}";
        }
    }

    // ---- the generators -------------------------------------------------------------------------

    internal static readonly string OwnWorkload = WorkloadIds.New();
    internal static readonly Guid SomeJob = Guid.NewGuid();

    /// <summary>A valid frame of every type a provider sends, and of every type only the market sends (a provider sending one breaks the protocol).</summary>
    internal static string[] Templates(Key forger) =>
    [
        Json(Capabilities(HostileModel, workloads: true)),
        Json(new HeartbeatMessage(new LoadFigures(1, 2, 30.5, 90.25, 12.5, 0.1))),
        Json(new JobDone(SomeJob, 1, new TokenUsage(5, 7), 12)),
        Json(new JobError(SomeJob, 1, JobErrorCodes.Internal, "boom", OutputSent: false)),
        Json(new DrainNotice(1000)),
        Json(new WorkloadHeartbeat(1, "incarnation-hostile", [new CopyRef(OwnWorkload, 1)], [WorkloadIds.New()])),
        Json(new WorkloadExited(OwnWorkload, 1, 0, OomKilled: false)),
        Json(new WorkloadLost(OwnWorkload, 1, WorkloadLost.StoppedByRule)),
        Json(new WorkloadUsage(OwnWorkload, 1, new UsageRecord(OwnWorkload, 1, 0, 10_000, 1, 64, 0, 10).Sign(forger))),
        Json(new WorkloadReceipt(OwnWorkload, 1, Convert.ToBase64String(new byte[48]))),
        Json(new WorkloadCheckpoint(OwnWorkload, 1, 0, Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData([])))),
        Json(new AuthResponse(Convert.ToBase64String(new byte[32]), Convert.ToBase64String(new byte[64]), "hostile/1", "again", null)),
        Json(new AuthChallenge(Convert.ToBase64String(new byte[32]), "market", 1)),
        Json(new AuthOk("p", 10_000)),
        Json(new AuthFailed("protocol")),
        Json(new HeartbeatAck(10_000)),
        Json(new JobMessage(SomeJob, 1, "llama3", WireFormat.OpenAi, "chat/completions", false, JsonDocument.Parse("{}").RootElement, 0, 65536)),
        Json(new JobCancel(SomeJob, "deadline")),
        Json(new JobWindow(SomeJob, 4096)),
        Json(new MarketNodes(["http://127.0.0.1:1"])),
        Json(new WorkloadStop(OwnWorkload, 1, "cancel")),
        Json(new WorkloadRelease(OwnWorkload)),
        Json(new WorkloadAck(1, [new CopyRef(OwnWorkload, 1)])),
    ];

    /// <summary>The extremes of this protocol's fields: numbers at and past their types' ends, strings long, empty and odd.</summary>
    internal static readonly Func<JsonNode?>[] Extremes =
    [
        () => JsonValue.Create(long.MaxValue), () => JsonValue.Create(long.MinValue), () => JsonValue.Create(int.MaxValue),
        () => JsonValue.Create(int.MinValue), () => JsonValue.Create(-1), () => JsonValue.Create(0), () => JsonNode.Parse("1e308"),
        () => JsonNode.Parse("-1e308"), () => JsonNode.Parse("99999999999999999999999"), () => JsonValue.Create(new string('x', 200_000)),
        () => JsonValue.Create("\u202e\u0000ünï\ud83d\ude00\ufeff"), () => JsonValue.Create("\ud800"), () => JsonValue.Create(""),
        () => JsonValue.Create(Guid.Empty.ToString()), () => JsonValue.Create(OwnWorkload),
        () => new JsonArray(), () => new JsonObject(), () => new JsonArray([.. Enumerable.Range(0, 5000).Select(i => (JsonNode?)JsonValue.Create(i))]),
    ];

    /// <summary>Values an attacker puts where a field was: HostileInput's JSON, and the extremes (a fresh node each time: a node has one parent).</summary>
    internal static readonly Gen<JsonNode?> HostileValue = Gen.Frequency(
        (3, HostileInput.Json),
        (3, Gen.Int[0, Extremes.Length - 1].Select(i => Extremes[i]())));

    internal static readonly Gen<int> AbsurdInt = Gen.Frequency((3, Gen.OneOf(Gen.Const(0), Gen.Const(-1), Gen.Const(int.MaxValue), Gen.Const(int.MinValue))), (1, Gen.Int));

    internal static readonly Gen<long> AbsurdLong = Gen.Frequency((3, Gen.OneOf(Gen.Const(0L), Gen.Const(-1L), Gen.Const(long.MaxValue), Gen.Const(long.MinValue))), (1, Gen.Long));

    internal static readonly Gen<double> AbsurdDouble = Gen.Frequency(
        (3, Gen.OneOf(Gen.Const(0d), Gen.Const(-1d), Gen.Const(double.MaxValue), Gen.Const(double.MinValue), Gen.Const(double.Epsilon))),
        (1, Gen.Double.Where(double.IsFinite)));

    internal static readonly Gen<string> AbsurdName = Gen.OneOf(
        Gen.Const(""), Gen.Const(" "), Gen.Const(HostileModel), Gen.Const(new string('m', 257)), Gen.Const("\u202e\u0000模型\ud83d\ude00"),
        Gen.Const("../../etc/passwd"), Gen.Const("<script>alert(1)</script>"), Gen.String[0, 20]);

    /// <summary>Heartbeats whose every load figure is at an extreme (two such providers at once overflow a naive sum).</summary>
    internal static readonly Gen<Frame> AbsurdHeartbeats = Gen.Select(AbsurdInt, AbsurdInt, AbsurdDouble, AbsurdDouble, AbsurdDouble, AbsurdDouble,
        (inFlight, queue, p50, p95, tps, errors) => Frame.Text("absurd load", Json(new HeartbeatMessage(new LoadFigures(inFlight, queue, p50, p95, tps, errors)))));

    /// <summary>Capabilities with absurd models, prices, context windows and concurrency (never the honest provider's model).</summary>
    internal static readonly Gen<Frame> AbsurdCapabilities = Gen.Select(
        Gen.Select(AbsurdName, AbsurdLong, AbsurdLong, Gen.OneOf(Gen.Const((int?)null), AbsurdInt.Select(i => (int?)i)), AbsurdInt, Gen.Bool, Gen.Bool,
            (model, input, output, window, max, native, embeddings) => new ModelOffer(model, "vllm", input, output, window, max, native, embeddings)).Array[0, 4],
        AbsurdInt,
        Gen.Bool,
        Gen.Select(AbsurdDouble, AbsurdLong, AbsurdLong, AbsurdLong, AbsurdName),
        (offers, max, withWorkloads, w) => Frame.Text("absurd capabilities", Json(new CapabilitiesMessage(offers, max, "hostile/1",
            withWorkloads ? new WorkloadCapacity(w.Item5, w.Item1, w.Item2, w.Item3, w.Item4, Convert.ToBase64String(new byte[32]), Convert.ToBase64String(new byte[64]), "incarnation-hostile") : null))));

    internal static Gen<Frame> Frames(Key forger)
    {
        var templates = Templates(forger);
        var template = Gen.Int[0, templates.Length - 1].Select(i => templates[i]);
        var binaryHeader = Gen.Select(Gen.OneOf<byte>(0, 1, 2, 3, 4, 255), Gen.Guid, Gen.Long, Gen.Byte.Array[0, 80], (kind, id, fence, payload) =>
        {
            var frame = new byte[ChunkFrame.HeaderSize + payload.Length];
            ChunkFrame.WriteHeader(frame, kind, id, fence);
            payload.CopyTo(frame, ChunkFrame.HeaderSize);
            return new Frame("binary with a header", WebSocketMessageType.Binary, frame);
        });
        return Gen.Frequency(
            (6, Gen.Select(template, Gen.Int[0, 1000], HostileValue, (t, pick, value) => Frame.Text("a field replaced", HostileInput.ReplaceOneNode(t, pick, value)))),
            (3, template.SelectMany(t => HostileInput.Mutations(Encoding.UTF8.GetBytes(t))).Select(b => new Frame("mutated bytes", WebSocketMessageType.Text, b))),
            (2, template.Select(t => Frame.Text("valid, wrong state", t))),
            (1, HostileInput.Json.Select(n => Frame.Text("random JSON", n?.ToJsonString() ?? "null"))),
            (1, Gen.Byte.Array[0, 64].Select(b => new Frame("binary garbage", WebSocketMessageType.Binary, b))),
            (2, binaryHeader),
            (2, AbsurdHeartbeats),
            (2, AbsurdCapabilities),
            (1, Gen.Byte.Array[0, 64].Select(b => new Frame("text garbage", WebSocketMessageType.Text, b))),
            (1, Gen.OneOf(
                Gen.Const(new Frame("binary over 64 KiB", WebSocketMessageType.Binary, OversizedChunk())),
                Gen.Const(Frame.Text("deep JSON", new string('[', 5000) + new string(']', 5000))))));
    }

    internal static byte[] OversizedChunk()
    {
        var frame = new byte[ChunkFrame.HeaderSize + 70 * 1024];
        ChunkFrame.WriteHeader(frame, SomeJob, 1);
        return frame;
    }

    /// <summary>
    /// The gateway's rules, stated from the protocol's side: a frame that does not parse as a message a provider may send
    /// closes the link with 4400 (docs/protocol.md, Limits); a well-formed job frame (output, done, error) for a job the
    /// link does not hold under that fence is dropped silently (a provider that lost a job may still be sending); a
    /// heartbeat is applied. Capabilities and workload messages are checked field by field: either. A text frame that is
    /// not UTF-8 never reaches the market (<see cref="CloseStatusFor"/>).
    /// </summary>
    internal static Rule Expected(Frame frame)
    {
        if (frame.Type == WebSocketMessageType.Binary)
        {
            return !ChunkFrame.TryReadHeader(frame.Bytes, out var kind, out _, out _) || frame.Bytes.Length > ProviderSocketLimits.MaxBinaryFrame ? Rule.Close
                : kind == ChunkFrame.KindJobChunk ? Rule.Open
                : kind == ChunkFrame.KindWorkloadLog && (frame.Bytes.Length == ChunkFrame.HeaderSize || frame.Bytes[ChunkFrame.HeaderSize] is not (1 or 2)) ? Rule.Close
                : Rule.Either;
        }

        if (IsUtf8Failure(frame))
        {
            return Rule.Close; // before the market sees it, however lenient a JSON reader would be about it
        }

        return ProtocolJson.TryDeserialize(frame.Bytes) switch
        {
            HeartbeatMessage { Load: not null } => Rule.Open,
            JobDone { Usage: not null } => Rule.Open,
            JobError { Code: not null } => Rule.Open,
            DrainNotice => Rule.Open,
            CapabilitiesMessage or WorkloadHeartbeat or WorkloadExited or WorkloadLost or WorkloadUsage or WorkloadReceipt or WorkloadCheckpoint => Rule.Either,
            _ => Rule.Close,
        };
    }

    /// <summary>
    /// 4400, the market's close for a protocol error; except for a text frame that is not UTF-8, which the WebSocket layer
    /// itself fails before the market sees it (RFC 6455, 8.1): .NET's WebSocket sends 1007 and aborts the connection at
    /// once, so the provider sees the 1007 or only the connection drop.
    /// </summary>
    internal static WebSocketCloseStatus CloseStatusFor(Frame frame) =>
        IsUtf8Failure(frame) ? WebSocketCloseStatus.InvalidPayloadData : (WebSocketCloseStatus)CloseCodes.ProtocolError;

    internal static bool IsUtf8Failure(Frame frame) => frame.Type == WebSocketMessageType.Text && !IsUtf8(frame.Bytes);

    /// <summary>What <see cref="SendSettledAsync"/> reports for a link that ended without a close frame.</summary>
    internal const WebSocketCloseStatus Aborted = (WebSocketCloseStatus)(-1);

    internal static bool IsUtf8(byte[] bytes)
    {
        try
        {
            _ = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
            return true;
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
    }

    internal static class ProviderSocketLimits
    {
        public const int MaxBinaryFrame = 64 * 1024 + ChunkFrame.HeaderSize;
    }


    internal static string Json(ProtocolMessage message) => Encoding.UTF8.GetString(ProtocolJson.Serialize(message));

    internal static CapabilitiesMessage Capabilities(string model, bool workloads) =>
        new([new ModelOffer(model, "vllm", 1_000_000, 3_000_000, 8192, 2, Tools: true)], 2, "hostile/1",
            workloads
                ? new WorkloadCapacity("bubblewrap", 2, 2048, 20, 5, Convert.ToBase64String(new byte[32]), Convert.ToBase64String(new byte[64]), "incarnation-hostile")
                : null);
}
