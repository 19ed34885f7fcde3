using System.Net;
using System.Net.Http.Json;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Coinop.Core.Protocol;
using Coinop.Core.Workloads;
using Coinop.Market.Tests.Payments;
using Coinop.Market.Tests.TestProviders;
using Coinop.Storage.Ledger;
using Coinop.TestKit;
using CsCheck;
using Microsoft.Extensions.DependencyInjection;
using NSec.Cryptography;

namespace Coinop.Market.Tests.Gateway;

/// <summary>
/// A hostile provider, fuzzed: it completes the real Ed25519 handshake over a real WebSocket, then sends what CsCheck
/// generates — every frame type of the protocol with a field replaced by a wrong type, a null, a huge or negative number,
/// an overlong or odd unicode string; frames in the wrong state (results for jobs it was never given or that belong to
/// another provider, done twice, output after done, reports for workload copies it does not hold, usage signed by
/// someone else); frames of the market's own types; valid JSON that is no message; binary garbage. An honest provider and
/// a paying consumer work alongside. After every generated sequence the market must answer its public and operator
/// routes, the hostile link must have been closed with 4400 or have ignored the frame (the rules are in
/// <see cref="Expected"/>), the consumer must get the honest provider's answer, and the ledger equations must hold
/// with nothing earned by the hostile provider for work it did not relay.
/// </summary>
public class HostileProviderTests
{
    private const string HonestText = "the honest answer";
    private const string HostileModel = "hostile-model";
    private const int Iterations = 200;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

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

    private static readonly string OwnWorkload = WorkloadIds.New();
    private static readonly Guid SomeJob = Guid.NewGuid();

    /// <summary>A valid frame of every type a provider sends, and of every type only the market sends (a provider sending one breaks the protocol).</summary>
    private static string[] Templates(Key forger) =>
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
    private static readonly Func<JsonNode?>[] Extremes =
    [
        () => JsonValue.Create(long.MaxValue), () => JsonValue.Create(long.MinValue), () => JsonValue.Create(int.MaxValue),
        () => JsonValue.Create(int.MinValue), () => JsonValue.Create(-1), () => JsonValue.Create(0), () => JsonNode.Parse("1e308"),
        () => JsonNode.Parse("-1e308"), () => JsonNode.Parse("99999999999999999999999"), () => JsonValue.Create(new string('x', 200_000)),
        () => JsonValue.Create("\u202e\u0000ünï\ud83d\ude00\ufeff"), () => JsonValue.Create("\ud800"), () => JsonValue.Create(""),
        () => JsonValue.Create(Guid.Empty.ToString()), () => JsonValue.Create(OwnWorkload),
        () => new JsonArray(), () => new JsonObject(), () => new JsonArray([.. Enumerable.Range(0, 5000).Select(i => (JsonNode?)JsonValue.Create(i))]),
    ];

    /// <summary>Values an attacker puts where a field was: HostileInput's JSON, and the extremes (a fresh node each time: a node has one parent).</summary>
    private static readonly Gen<JsonNode?> HostileValue = Gen.Frequency(
        (3, HostileInput.Json),
        (3, Gen.Int[0, Extremes.Length - 1].Select(i => Extremes[i]())));

    private static readonly Gen<int> AbsurdInt = Gen.Frequency((3, Gen.OneOf(Gen.Const(0), Gen.Const(-1), Gen.Const(int.MaxValue), Gen.Const(int.MinValue))), (1, Gen.Int));

    private static readonly Gen<long> AbsurdLong = Gen.Frequency((3, Gen.OneOf(Gen.Const(0L), Gen.Const(-1L), Gen.Const(long.MaxValue), Gen.Const(long.MinValue))), (1, Gen.Long));

    private static readonly Gen<double> AbsurdDouble = Gen.Frequency(
        (3, Gen.OneOf(Gen.Const(0d), Gen.Const(-1d), Gen.Const(double.MaxValue), Gen.Const(double.MinValue), Gen.Const(double.Epsilon))),
        (1, Gen.Double.Where(double.IsFinite)));

    private static readonly Gen<string> AbsurdName = Gen.OneOf(
        Gen.Const(""), Gen.Const(" "), Gen.Const(HostileModel), Gen.Const(new string('m', 257)), Gen.Const("\u202e\u0000模型\ud83d\ude00"),
        Gen.Const("../../etc/passwd"), Gen.Const("<script>alert(1)</script>"), Gen.String[0, 20]);

    /// <summary>Heartbeats whose every load figure is at an extreme (two such providers at once overflow a naive sum).</summary>
    private static readonly Gen<Frame> AbsurdHeartbeats = Gen.Select(AbsurdInt, AbsurdInt, AbsurdDouble, AbsurdDouble, AbsurdDouble, AbsurdDouble,
        (inFlight, queue, p50, p95, tps, errors) => Frame.Text("absurd load", Json(new HeartbeatMessage(new LoadFigures(inFlight, queue, p50, p95, tps, errors)))));

    /// <summary>Capabilities with absurd models, prices, context windows and concurrency (never the honest provider's model).</summary>
    private static readonly Gen<Frame> AbsurdCapabilities = Gen.Select(
        Gen.Select(AbsurdName, AbsurdLong, AbsurdLong, Gen.OneOf(Gen.Const((int?)null), AbsurdInt.Select(i => (int?)i)), AbsurdInt, Gen.Bool, Gen.Bool,
            (model, input, output, window, max, native, embeddings) => new ModelOffer(model, "vllm", input, output, window, max, native, embeddings)).Array[0, 4],
        AbsurdInt,
        Gen.Bool,
        Gen.Select(AbsurdDouble, AbsurdLong, AbsurdLong, AbsurdLong, AbsurdName),
        (offers, max, withWorkloads, w) => Frame.Text("absurd capabilities", Json(new CapabilitiesMessage(offers, max, "hostile/1",
            withWorkloads ? new WorkloadCapacity(w.Item5, w.Item1, w.Item2, w.Item3, w.Item4, Convert.ToBase64String(new byte[32]), Convert.ToBase64String(new byte[64]), "incarnation-hostile") : null))));

    private static Gen<Frame> Frames(Key forger)
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

    private static byte[] OversizedChunk()
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

    private static bool IsUtf8Failure(Frame frame) => frame.Type == WebSocketMessageType.Text && !IsUtf8(frame.Bytes);

    /// <summary>What <see cref="SendSettledAsync"/> reports for a link that ended without a close frame.</summary>
    private const WebSocketCloseStatus Aborted = (WebSocketCloseStatus)(-1);

    private static bool IsUtf8(byte[] bytes)
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

    private static class ProviderSocketLimits
    {
        public const int MaxBinaryFrame = 64 * 1024 + ChunkFrame.HeaderSize;
    }

    // ---- the properties -------------------------------------------------------------------------

    [Theory]
    [MemberData(nameof(PaidMarket.Dialects), MemberType = typeof(PaidMarket))]
    public async Task Mutated_misplaced_and_garbage_frames_close_the_link_with_4400_or_are_ignored_and_hurt_no_one(Coinop.Storage.SqlDialect dialect)
    {
        await using var market = await PaidMarket.StartAsync(dialect);
        await using var honest = await HonestAsync(market);
        var key = await BalanceKeyAsync(market);
        using var forger = TestProvider.NewKey();
        var hostileIds = new List<string>();
        var open = new Queue<TestProvider>(); // two hostile links stay up at once: what one provider's figures do to sums over all shows

        try
        {
            await Gen.Select(Frames(forger).Array[1, 5], AbsurdName).SampleAsync(async sample =>
            {
                var (frames, name) = sample;
                var hostile = await HostileAsync(market, name);
                hostileIds.Add(hostile.ProviderId);
                open.Enqueue(hostile);
                if (open.Count > 2)
                {
                    await open.Dequeue().DisposeAsync();
                }

                foreach (var frame in frames)
                {
                    var status = await SendSettledAsync(hostile, frame);
                    var rule = Expected(frame);
                    Assert.True(status is null || status == CloseStatusFor(frame) || (IsUtf8Failure(frame) && status == Aborted),
                        $"the link ended with {status} (not {CloseStatusFor(frame)}) after {frame}");
                    Assert.True(rule != Rule.Open || status is null, $"closed ({status}) by a frame the market must ignore: {frame}");
                    Assert.True(rule != Rule.Close || status is not null, $"still open after a frame that breaks the protocol: {frame}");
                    if (status is not null)
                    {
                        break;
                    }
                }

                await AssertHealthyAsync(market, honest, key);
            }, iter: dialect == Coinop.Storage.SqlDialect.Sqlite ? Iterations : Iterations / 4, threads: 1);
        }
        finally
        {
            while (open.TryDequeue(out var hostile))
            {
                await hostile.DisposeAsync();
            }
        }

        await AssertEarnedNothingAsync(market, hostileIds);
        await market.AssertBalancedAsync();
    }

    private enum Deed
    {
        Output,
        Done,
        Error,
        Refusal,
    }

    private enum Target
    {
        Live,
        Finished,
        Unknown,
    }

    private sealed record Misdeed(Deed Deed, Target Target, int FenceShift, long Tokens, int Payload)
    {
        public Frame Build(JobMessage live, IReadOnlyList<JobMessage> finished, Guid unknown)
        {
            var job = Target switch
            {
                Target.Finished when finished.Count > 0 => finished[Payload % finished.Count],
                Target.Unknown => live with { JobId = unknown },
                _ => live,
            };
            var fence = FenceShift switch
            {
                0 => job.Fence,
                1 => job.Fence + 1,
                2 => job.Fence - 1,
                3 => 0,
                4 => long.MaxValue,
                _ => long.MinValue,
            };
            switch (Deed)
            {
                case Deed.Output:
                    var bytes = Encoding.UTF8.GetBytes(Payload % 2 == 0
                        ? "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"PWNED\"}}]}\n\ndata: [DONE]\n\n"
                        : Scripts.Output(live, "PWNED").First());
                    var frame = new byte[ChunkFrame.HeaderSize + bytes.Length];
                    ChunkFrame.WriteHeader(frame, job.JobId, fence);
                    bytes.CopyTo(frame, ChunkFrame.HeaderSize);
                    return new Frame($"output for {Target} job, fence {fence}", WebSocketMessageType.Binary, frame);
                case Deed.Done:
                    return Frame.Text($"done for {Target} job", Json(new JobDone(job.JobId, fence, new TokenUsage(Tokens, Tokens), 1)));
                case Deed.Error:
                    return Frame.Text($"error for {Target} job", Json(new JobError(job.JobId, fence, JobErrorCodes.BackendUnreachable, "PWNED", Payload % 2 == 0)));
                default:
                    return Frame.Text($"refusal for {Target} job", Json(new JobError(job.JobId, fence, JobErrorCodes.InvalidRequest, "PWNED", false)));
            }
        }
    }

    private static readonly Gen<Misdeed> Misdeeds = Gen.Select(Gen.Enum<Deed>(), Gen.Enum<Target>(), Gen.Int[0, 5],
        Gen.OneOf(Gen.Const(0L), Gen.Const(1_000_000_000L), Gen.Const(long.MaxValue), Gen.Const(-1L), Gen.Long), Gen.Int[0, 1000],
        (deed, target, shift, tokens, payload) => new Misdeed(deed, target, shift, tokens, payload));

    [Fact]
    public async Task Output_results_and_errors_for_a_job_given_to_another_provider_are_ignored_and_its_consumer_gets_the_honest_answer()
    {
        await using var market = await PaidMarket.StartAsync();
        var release = new TaskCompletionSource();
        // The honest provider holds each job until the hostile one has done its worst with it.
        await using var honest = await market.Market.ProviderAsync("llama3", Ct, name: "honest", script: async (job, run) =>
        {
            await release.Task.WaitAsync(run.Cancelled);
            await Scripts.Answer(HonestText)(job, run);
        });
        var key = await BalanceKeyAsync(market);
        await using var hostile = await HostileAsync(market);
        var finished = new List<JobMessage>();

        await Gen.Select(Misdeeds.Array[1, 6], Gen.Bool).SampleAsync(async sample =>
        {
            var (misdeeds, stream) = sample;
            release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var assigned = honest.WaitForAsync<JobMessage>(_ => true, afterNow: true);
            var chat = market.ChatAsync(bearer: key, stream: stream);
            var live = await assigned.WaitAsync(TimeSpan.FromSeconds(30), Ct);
            var unknown = Guid.NewGuid();
            foreach (var misdeed in misdeeds)
            {
                var frame = misdeed.Build(live, finished, unknown);
                Assert.True(await SendSettledAsync(hostile, frame) is null, $"closed by a frame the market must ignore: {frame}");
            }

            release.TrySetResult();
            using var response = await chat;
            Assert.Equal(HonestText, await AnswerTextAsync(response, stream));
            finished.Add(live);

            // And again once the job is over: results after done, for a job that was never the hostile's.
            foreach (var misdeed in misdeeds)
            {
                var frame = misdeed.Build(live, finished, unknown);
                Assert.True(await SendSettledAsync(hostile, frame) is null, $"closed by a frame the market must ignore: {frame}");
            }
        }, iter: Iterations / 2, threads: 1);

        await AssertEarnedNothingAsync(market, [hostile.ProviderId]);
        Assert.True((await market.Services.GetRequiredService<ILedgerStore>().EarningsAsync(honest.ProviderId, Ct)).EarnedMsat > 0);
        await market.AssertBalancedAsync();
    }

    /// <summary>The answer's text: the message of a JSON completion, or the deltas of a stream (which must end cleanly).</summary>
    private static async Task<string> AnswerTextAsync(HttpResponseMessage response, bool stream)
    {
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"the consumer got {(int)response.StatusCode}: {body}");
        if (!stream)
        {
            return JsonNode.Parse(body)!["choices"]![0]!["message"]!["content"]!.GetValue<string>();
        }

        Assert.Contains("data: [DONE]", body, StringComparison.Ordinal);
        var text = new StringBuilder();
        foreach (var line in body.Split('\n').Where(l => l.StartsWith("data: {", StringComparison.Ordinal)))
        {
            var node = JsonNode.Parse(line["data: ".Length..])!;
            Assert.Null(node["error"]);
            if (node["choices"] is JsonArray { Count: > 0 } choices && choices[0]!["delta"]?["content"] is { } content)
            {
                text.Append(content.GetValue<string>());
            }
        }

        return text.ToString();
    }

    private enum Step
    {
        Answer,
        Garbage,
        Done,
        DoneClaimingBillions,
        DoneClaimingNegative,
        DoneUnderAnotherFence,
        OutputUnderAnotherFence,
        Error,
        Refusal,
        ErrorCarryingMegabytes,
    }

    private const string SoloModel = "solo";

    /// <summary>Prices of the hostile provider's own model, msat per million tokens: 10 msat an input token, 30 an output token.</summary>
    private const long SoloInputMsatPerMtok = 10_000_000, SoloOutputMsatPerMtok = 30_000_000;

    [Fact]
    public async Task A_provider_misbehaving_on_its_own_jobs_is_paid_only_for_an_answer_it_relayed_and_at_most_once()
    {
        await using var market = await PaidMarket.StartAsync();
        await using var honest = await HonestAsync(market);
        var key = await BalanceKeyAsync(market);
        await using var hostile = await TestProvider.ConnectAsync(market.Url, "hostile", cancellationToken: Ct);
        var steps = Array.Empty<Step>();
        hostile.Script = async (job, run) =>
        {
            foreach (var step in steps)
            {
                await DoAsync(hostile, job, run, step);
            }

            // However it behaved, the attempt ends (else the consumer waits for the first-chunk timeout).
            await hostile.SendAsync(new JobError(job.JobId, job.Fence, JobErrorCodes.Internal, "the end", true), Ct);
        };
        await hostile.OfferAsync(Ct, 8, new ModelOffer(SoloModel, "vllm", SoloInputMsatPerMtok, SoloOutputMsatPerMtok, 8192, 8));
        var ledger = market.Services.GetRequiredService<ILedgerStore>();

        await Gen.Select(Gen.Enum<Step>().Array[1, 6], Gen.Bool).SampleAsync(async sample =>
        {
            (steps, var stream) = sample;
            var spentBefore = (await ledger.SummaryAsync(Ct)).SpentMsat;
            var earnedBefore = (await ledger.EarningsAsync(hostile.ProviderId, Ct)).EarnedMsat;

            using var response = await PostChatAsync(market, key, SoloModel, stream);
            var body = await response.Content.ReadAsStringAsync(Ct);

            var spent = (await ledger.SummaryAsync(Ct)).SpentMsat - spentBefore;
            var earned = (await ledger.EarningsAsync(hostile.ProviderId, Ct)).EarnedMsat - earnedBefore;
            Assert.True(response.StatusCode != HttpStatusCode.InternalServerError, body);
            Assert.True(earned >= 0 && earned <= spent, $"earned {earned} msat of {spent} spent");
            if (!stream)
            {
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    // Billed once, within the market's own count of what was relayed: a few tokens each way at these prices.
                    Assert.True(TryParse(body)?["choices"]?[0]?["message"]?["content"]?.GetValue<string>() == "the hostile answer", $"200: {body[..Math.Min(body.Length, 500)]}");
                    Assert.InRange(spent, 1, 1000);
                }
                else
                {
                    Assert.True(TryParse(body)?["error"] is not null, $"{(int)response.StatusCode} {response.Content.Headers.ContentType}: {body[..Math.Min(body.Length, 500)]}");
                    Assert.True(body.Length < 4096, $"a {body.Length}-character error: what the provider says is bounded");
                    Assert.Equal(0, spent); // no answer, no charge
                }
            }
            else
            {
                Assert.InRange(spent, 0, 1000);
            }

            await AssertHealthyAsync(market, honest, key);
        }, iter: Iterations / 2, threads: 1);

        await market.AssertBalancedAsync();
    }

    private static async Task DoAsync(TestProvider hostile, JobMessage job, TestJob run, Step step)
    {
        try
        {
            switch (step)
            {
                case Step.Answer:
                    foreach (var part in Scripts.Output(job, "the hostile answer"))
                    {
                        await run.SendAsync(part);
                    }

                    break;
                case Step.Garbage:
                    await run.SendAsync("{{{ not what the backend sends \u0000");
                    break;
                case Step.Done:
                    await hostile.SendAsync(new JobDone(job.JobId, job.Fence, new TokenUsage(5, 7), 1), Ct);
                    break;
                case Step.DoneClaimingBillions:
                    await hostile.SendAsync(new JobDone(job.JobId, job.Fence, new TokenUsage(long.MaxValue, 1_000_000_000), 1), Ct);
                    break;
                case Step.DoneClaimingNegative:
                    await hostile.SendAsync(new JobDone(job.JobId, job.Fence, new TokenUsage(-5, long.MinValue), -1), Ct);
                    break;
                case Step.DoneUnderAnotherFence:
                    await hostile.SendAsync(new JobDone(job.JobId, job.Fence + 1, new TokenUsage(5, 7), 1), Ct);
                    break;
                case Step.OutputUnderAnotherFence:
                    await hostile.SendChunkAsync(job.JobId, job.Fence - 1, Encoding.UTF8.GetBytes(Scripts.Output(job, "PWNED").First()), Ct);
                    break;
                case Step.Error:
                    await hostile.SendAsync(new JobError(job.JobId, job.Fence, JobErrorCodes.BackendUnreachable, "down", false), Ct);
                    break;
                case Step.ErrorCarryingMegabytes:
                    await hostile.SendAsync(new JobError(job.JobId, job.Fence, new string('c', 100_000), new string('m', 2_000_000), false), Ct);
                    break;
                default:
                    await hostile.SendAsync(new JobError(job.JobId, job.Fence, JobErrorCodes.InvalidRequest, "refused", false), Ct);
                    break;
            }
        }
        catch (OperationCanceledException) when (run.Cancelled.IsCancellationRequested)
        {
            // The market cancelled the attempt (bad output): the provider goes on sending anyway.
        }
    }

    private static async Task<HttpResponseMessage> PostChatAsync(PaidMarket market, string key, string model, bool stream)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent(PaidMarket.ChatBody(stream, 100, model), Encoding.UTF8, "application/json"),
        };
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
        var response = await market.Http.SendAsync(request, Ct);
        await response.Content.LoadIntoBufferAsync(Ct);
        return response;
    }

    private enum Report
    {
        Exited,
        Lost,
        UsageSignedByItself,
        UsageSignedByTheHolder,
        Receipt,
        Checkpoint,
        Output,
        ClaimInHeartbeat,
    }

    private sealed record WorkloadMisdeed(Report Report, int EpochShift);

    [Fact]
    public async Task Reports_usage_receipts_checkpoints_and_output_for_a_copy_another_provider_holds_change_nothing()
    {
        await using var market = await MarketUnderTest.StartAsync(o => o.WorkloadStopAfter = TimeSpan.FromMinutes(10), cancellationToken: Ct);
        await using var holder = await Workloads.PlacementClaimTests.WorkloadProviderAsync(market, "holder", 4, 8192);
        await using var hostile = await Workloads.PlacementClaimTests.WorkloadProviderAsync(market, "hostile", 4, 8192);
        var started = holder.WaitForAsync<WorkloadStart>(_ => true, afterNow: true);
        using var submit = await market.Http.PostAsJsonAsync("/api/workloads",
            new { command = "sleep", args = new[] { "600" }, cpu = 1, memory_mb = 256, provider = holder.ProviderId }, Ct);
        var submitted = JsonNode.Parse(await submit.Content.ReadAsStringAsync(Ct))!;
        Assert.True(submit.StatusCode == HttpStatusCode.Created, submitted.ToJsonString());
        var ownerKey = (string)submitted["owner_key"]!;
        var start = await started.WaitAsync(TimeSpan.FromSeconds(60), Ct);
        var copy = new CopyRef(start.WorkloadId, start.Epoch);
        var holderSeq = 0L;
        var hostileSeq = 0L;
        await AssertStillHeldAsync();
        var before = await ViewAsync();

        await Gen.Select(Gen.Enum<Report>(), Gen.Int[0, 5], (report, shift) => new WorkloadMisdeed(report, shift)).Array[1, 6].SampleAsync(async misdeeds =>
        {
            foreach (var misdeed in misdeeds)
            {
                foreach (var frame in WorkloadFrames(misdeed, copy, hostile, holder))
                {
                    Assert.True(await SendSettledAsync(hostile, frame) is null, $"closed by a well-formed report: {frame}");
                }
            }

            // The supervisor handles one provider's messages in order: the answer to this heartbeat comes after all of them.
            var next = ++hostileSeq;
            var ack = hostile.WaitForAsync<WorkloadAck>(a => a.Seq == next);
            await hostile.SendAsync(new WorkloadHeartbeat(next, "incarnation-hostile", [], []), Ct);
            Assert.DoesNotContain(copy, (await ack.WaitAsync(TimeSpan.FromSeconds(60), Ct)).Renewed);
            await AssertStillHeldAsync();

            var view = await ViewAsync();
            Assert.Equal((string?)before["state"], (string?)view["state"]);
            Assert.Equal(holder.ProviderId, (string?)view["provider"]);
            Assert.Equal(start.Epoch, (long)view["epoch"]!);
            Assert.Empty(view["usage"]!.AsArray());
            Assert.True(view["checkpoint"] is null, view.ToJsonString());
            Assert.True(view["access"] is null, view.ToJsonString());
            Assert.Empty(view["receipts"]?.AsArray() ?? []);
            using var logs = await SendAsync(HttpMethod.Get, $"/api/workloads/{copy.WorkloadId}/logs");
            var entries = JsonNode.Parse(await logs.Content.ReadAsStringAsync(Ct))!["entries"]!.AsArray();
            Assert.Empty(entries);
        }, iter: Iterations / 2, threads: 1);

        Assert.DoesNotContain(holder.Received, m => m is WorkloadStop);

        // The copy is still the holder's: its heartbeat renews it.
        async Task AssertStillHeldAsync()
        {
            var next = ++holderSeq;
            var ack = holder.WaitForAsync<WorkloadAck>(a => a.Seq == next);
            await holder.SendAsync(new WorkloadHeartbeat(next, "incarnation-holder", [copy], []), Ct);
            Assert.Contains(copy, (await ack.WaitAsync(TimeSpan.FromSeconds(60), Ct)).Renewed);
        }

        async Task<JsonNode> ViewAsync()
        {
            using var response = await SendAsync(HttpMethod.Get, $"/api/workloads/{copy.WorkloadId}");
            var text = await response.Content.ReadAsStringAsync(Ct);
            Assert.True(response.StatusCode == HttpStatusCode.OK, text);
            return JsonNode.Parse(text)!;
        }

        async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path)
        {
            using var request = new HttpRequestMessage(method, path);
            request.Headers.Add(WorkloadOwnerKey.Header, ownerKey);
            var response = await market.Http.SendAsync(request, Ct);
            await response.Content.LoadIntoBufferAsync(Ct);
            return response;
        }
    }

    private static IEnumerable<Frame> WorkloadFrames(WorkloadMisdeed misdeed, CopyRef copy, TestProvider hostile, TestProvider holder)
    {
        var id = copy.WorkloadId;
        var epoch = misdeed.EpochShift switch
        {
            0 => copy.Epoch,
            1 => copy.Epoch + 1,
            2 => copy.Epoch - 1,
            3 => 0,
            4 => long.MaxValue,
            _ => long.MinValue,
        };
        var record = new UsageRecord(id, epoch, 0, 10_000, 4, 1024, 1 << 20, 10);
        switch (misdeed.Report)
        {
            case Report.Exited:
                yield return Frame.Text("exited", Json(new WorkloadExited(id, epoch, 1, OomKilled: true)));
                break;
            case Report.Lost:
                yield return Frame.Text("lost", Json(new WorkloadLost(id, epoch, WorkloadLost.StoppedByRule)));
                break;
            case Report.UsageSignedByItself:
                yield return Frame.Text("usage signed by itself", Json(new WorkloadUsage(id, epoch, record.Sign(hostile.Key))));
                break;
            case Report.UsageSignedByTheHolder:
                yield return Frame.Text("usage signed by the holder", Json(new WorkloadUsage(id, epoch, record.Sign(holder.Key))));
                break;
            case Report.Receipt:
                yield return Frame.Text("receipt", Json(new WorkloadReceipt(id, epoch, Convert.ToBase64String(new byte[80]))));
                break;
            case Report.Checkpoint:
                var data = Encoding.UTF8.GetBytes("a checkpoint the hostile provider made up");
                var chunk = new byte[ChunkFrame.HeaderSize + data.Length];
                ChunkFrame.WriteHeader(chunk, ChunkFrame.KindCheckpointChunk, Guid.ParseExact(id, "N"), epoch);
                data.CopyTo(chunk, ChunkFrame.HeaderSize);
                yield return new Frame("checkpoint bytes", WebSocketMessageType.Binary, chunk);
                yield return Frame.Text("checkpoint end", Json(new WorkloadCheckpoint(id, epoch, data.Length,
                    Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(data)))));
                break;
            case Report.Output:
                var line = Encoding.UTF8.GetBytes("PWNED\n");
                var log = new byte[ChunkFrame.HeaderSize + 1 + line.Length];
                ChunkFrame.WriteHeader(log, ChunkFrame.KindWorkloadLog, Guid.ParseExact(id, "N"), epoch);
                log[ChunkFrame.HeaderSize] = 1;
                line.CopyTo(log, ChunkFrame.HeaderSize + 1);
                yield return new Frame("output", WebSocketMessageType.Binary, log);
                break;
            default:
                yield return Frame.Text("claims the copy", Json(new WorkloadHeartbeat(long.MaxValue - epoch % 1000, "incarnation-hostile", [new CopyRef(id, epoch)], [id])));
                break;
        }
    }

    [Fact]
    public async Task A_flood_of_heartbeats_and_capabilities_is_answered_in_order_and_hurts_no_one()
    {
        await using var market = await PaidMarket.StartAsync();
        await using var honest = await HonestAsync(market);
        var key = await BalanceKeyAsync(market);
        await using var flooder = await HostileAsync(market);
        var heartbeat = ProtocolJson.Serialize(new HeartbeatMessage(new LoadFigures(1, 1, 1, 1, 1, 0)));
        var capabilities = ProtocolJson.Serialize(Capabilities(HostileModel, workloads: true));

        // Back to back, without waiting for a single answer: 5,000 heartbeats with a capabilities message every 20.
        const int Heartbeats = 5000;
        var seen = 0;
        var all = flooder.WaitForAsync<HeartbeatAck>(_ => Interlocked.Increment(ref seen) >= Heartbeats, afterNow: true);
        for (var i = 0; i < Heartbeats; i++)
        {
            await flooder.SendRawAsync(heartbeat, WebSocketMessageType.Text, Ct);
            if (i % 20 == 0)
            {
                await flooder.SendRawAsync(capabilities, WebSocketMessageType.Text, Ct);
            }
        }

        // Each one is answered (the acknowledgements are small and the flooder reads them); the link stays up.
        var first = await Task.WhenAny(all, flooder.Closed).WaitAsync(TimeSpan.FromSeconds(60), Ct);
        Assert.True(first == all, $"closed: {(first == flooder.Closed ? await flooder.Closed : default)}");
        Assert.Null(await SendSettledAsync(flooder, Frame.Text("heartbeat", Encoding.UTF8.GetString(heartbeat))));
        await AssertHealthyAsync(market, honest, key);
        await AssertEarnedNothingAsync(market, [flooder.ProviderId]);
        await market.AssertBalancedAsync();
    }

    // ---- regressions: each one a failure the properties above found or would find, kept as a plain case ------------

    [Fact]
    public async Task Load_figures_at_the_ends_of_their_types_from_two_providers_leave_every_view_answering_and_are_bounded()
    {
        await using var market = await PaidMarket.StartAsync();
        await using var honest = await HonestAsync(market);
        var key = await BalanceKeyAsync(market);
        await using var high = await HostileAsync(market);
        await using var low = await HostileAsync(market);

        // Two providers claiming int.MaxValue queued jobs each: summed over providers, that overflowed the operator's traffic view (a 500).
        Assert.Null(await SendSettledAsync(high, Frame.Text("huge load", Json(new HeartbeatMessage(
            new LoadFigures(int.MaxValue, int.MaxValue, double.MaxValue, double.MaxValue, double.MaxValue, double.MaxValue))))));
        Assert.Null(await SendSettledAsync(low, Frame.Text("huge load", Json(new HeartbeatMessage(
            new LoadFigures(int.MaxValue, int.MaxValue, -1, double.MinValue, -5, -2))))));

        await AssertHealthyAsync(market, honest, key);
        foreach (var view in (await market.GetJsonAsync("/api/providers")).EnumerateArray())
        {
            var load = view.GetProperty("load");
            Assert.InRange(load.GetProperty("queue_depth").GetInt32(), 0, Coinop.Market.Gateway.LoadCheck.MaxJobs);
            Assert.InRange(load.GetProperty("error_rate").GetDouble(), 0, 1);
            Assert.InRange(load.GetProperty("p50_latency_ms").GetDouble(), 0, Coinop.Market.Gateway.LoadCheck.MaxFigure);
            Assert.InRange(load.GetProperty("tokens_per_second").GetDouble(), 0, Coinop.Market.Gateway.LoadCheck.MaxFigure);
        }
    }

    [Theory]
    [InlineData("{{{ not what a backend sends")]
    [InlineData("{\"choices\":[]} and then some")]
    [InlineData("{\"choices\":[")]
    public async Task A_whole_answer_that_is_not_one_JSON_object_is_a_provider_failure_and_costs_nothing(string output)
    {
        await using var market = await PaidMarket.StartAsync();
        var key = await BalanceKeyAsync(market);
        await using var hostile = await TestProvider.ConnectAsync(market.Url, "hostile", cancellationToken: Ct);
        hostile.Script = async (job, run) =>
        {
            await run.SendAsync(output);
            await run.DoneAsync();
        };
        await hostile.OfferAsync(Ct, 8, new ModelOffer(SoloModel, "vllm", SoloInputMsatPerMtok, SoloOutputMsatPerMtok, 8192, 8));

        // Before: a body that merely started with '{' was relayed as a 200 and billed as the provider claimed.
        using var response = await PostChatAsync(market, key, SoloModel, stream: false);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.NotNull(TryParse(body)?["error"]);
        var summary = await market.AssertBalancedAsync();
        Assert.Equal(0, summary.SpentMsat);
        await AssertEarnedNothingAsync(market, [hostile.ProviderId]);
    }

    [Fact]
    public async Task A_job_error_carrying_megabytes_reaches_the_consumer_as_a_short_error()
    {
        await using var market = await PaidMarket.StartAsync();
        var key = await BalanceKeyAsync(market);
        await using var hostile = await TestProvider.ConnectAsync(market.Url, "hostile", cancellationToken: Ct);
        var huge = new string('A', 3 * 1024 * 1024);
        hostile.Script = (job, run) => hostile.SendAsync(new JobError(job.JobId, job.Fence, JobErrorCodes.InvalidRequest, huge, false), Ct);
        await hostile.OfferAsync(Ct, 8, new ModelOffer(SoloModel, "vllm", SoloInputMsatPerMtok, SoloOutputMsatPerMtok, 8192, 8));

        using var refused = await PostChatAsync(market, key, SoloModel, stream: false);
        var body = await refused.Content.ReadAsStringAsync(Ct);
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.True(body.Length < 4096, $"a {body.Length}-character error");

        hostile.Script = (job, run) => hostile.SendAsync(new JobError(job.JobId, job.Fence, huge, huge, false), Ct);
        using var failed = await PostChatAsync(market, key, SoloModel, stream: false);
        body = await failed.Content.ReadAsStringAsync(Ct);
        Assert.Equal(HttpStatusCode.BadGateway, failed.StatusCode);
        Assert.True(body.Length < 4096, $"a {body.Length}-character error");
        await market.AssertBalancedAsync();
    }

    [Theory]
    [InlineData("nul\u0000in the name")]
    [InlineData("sixty-three characters then an emoji straddling the cut .......😀 and more")]
    [InlineData("bell\u0007 and escape\u001b[31m red")]
    public async Task A_provider_name_of_any_unicode_is_admitted_under_a_clean_name_on_postgres(string name)
    {
        var database = await TestMarket.CreatePostgresDatabaseAsync();
        try
        {
            var connection = new Npgsql.NpgsqlConnectionStringBuilder(PostgresServer.ConnectionString) { Database = database }.ConnectionString;
            await using var market = await MarketUnderTest.StartAsync(o => o.Postgres = connection, cancellationToken: Ct);
            await using var provider = await TestProvider.ConnectAsync(market.Url, name, cancellationToken: Ct);

            Assert.NotNull(provider.AuthOk);
            var stored = (await market.Registry.FindAsync(provider.ProviderId, Ct))!.Name;
            Assert.DoesNotContain(stored, c => char.IsControl(c) || char.IsSurrogate(c) && !char.IsSurrogatePair(stored, stored.IndexOf(c)));
            Assert.InRange(stored.Length, 1, 64);
        }
        finally
        {
            await PaidMarket.DropDatabaseAsync(database);
        }
    }

    [Fact]
    public async Task An_enrollment_code_with_a_nul_is_refused_with_4401_on_postgres()
    {
        var database = await TestMarket.CreatePostgresDatabaseAsync();
        try
        {
            var connection = new Npgsql.NpgsqlConnectionStringBuilder(PostgresServer.ConnectionString) { Database = database }.ConnectionString;
            await using var market = await MarketUnderTest.StartAsync(o =>
            {
                o.Postgres = connection;
                o.Enrollment = Coinop.Market.Hosting.EnrollmentMode.Code;
            }, cancellationToken: Ct);

            await using var provider = await TestProvider.ConnectAsync(market.Url, "nul code", enrollmentCode: "CODE\u0000", cancellationToken: Ct);

            Assert.Equal("enrollment_code_unknown", provider.AuthFailed?.Reason);
            Assert.Equal((WebSocketCloseStatus)CloseCodes.AuthFailed, (await provider.Closed.WaitAsync(Ct)).Status);
        }
        finally
        {
            await PaidMarket.DropDatabaseAsync(database);
        }
    }

    [Fact]
    public async Task Nul_and_control_characters_from_a_provider_never_reach_postgres_and_its_reports_are_still_applied()
    {
        var database = await TestMarket.CreatePostgresDatabaseAsync();
        try
        {
            var connection = new Npgsql.NpgsqlConnectionStringBuilder(PostgresServer.ConnectionString) { Database = database }.ConnectionString;
            await using var market = await MarketUnderTest.StartAsync(o =>
            {
                o.Postgres = connection;
                o.WorkloadStopAfter = TimeSpan.FromMinutes(10);
            }, cancellationToken: Ct);

            // Capabilities whose incarnation (stored as the owner of the leases it would hold) carries a NUL.
            await using var nul = await TestProvider.ConnectAsync(market.Url, "nul", cancellationToken: Ct);
            var capabilities = Json(new CapabilitiesMessage([], 8, "test/1", new WorkloadCapacity("bubblewrap", 4, 8192, 20, 5,
                Convert.ToBase64String(new byte[32]), Convert.ToBase64String(new byte[64]), "incarnation\u0000nul")));
            var status = await SendSettledAsync(nul, Frame.Text("capabilities with a NUL", capabilities));
            if (status is null)
            {
                // Taken: then a workload pinned to it must be placed (or refused cleanly), never a 500.
                using var pinned = await market.Http.PostAsJsonAsync("/api/workloads",
                    new { command = "sleep", args = new[] { "600" }, cpu = 1, memory_mb = 256, provider = nul.ProviderId }, Ct);
                Assert.True(pinned.StatusCode is HttpStatusCode.Created or HttpStatusCode.ServiceUnavailable, await pinned.Content.ReadAsStringAsync(Ct));
            }
            else
            {
                Assert.Equal((WebSocketCloseStatus)CloseCodes.ProtocolError, status);
            }

            // A provider holding a copy reports it lost (it could not start) with a NUL in its error text: the report is applied.
            await using var holder = await Workloads.PlacementClaimTests.WorkloadProviderAsync(market, "holder", 4, 8192);
            var started = holder.WaitForAsync<WorkloadStart>(s => s.Role == WorkloadStart.Primary, afterNow: true);
            using var submit = await market.Http.PostAsJsonAsync("/api/workloads",
                new { command = "sleep", args = new[] { "600" }, cpu = 1, memory_mb = 256, provider = holder.ProviderId }, Ct);
            var submitted = JsonNode.Parse(await submit.Content.ReadAsStringAsync(Ct))!;
            Assert.True(submit.StatusCode == HttpStatusCode.Created, submitted.ToJsonString());
            var start = await started.WaitAsync(TimeSpan.FromSeconds(60), Ct);
            Assert.Null(await SendSettledAsync(holder, Frame.Text("lost with a NUL",
                Json(new WorkloadLost(start.WorkloadId, start.Epoch, WorkloadLost.StartFailed + ": exec \u0000 refused")))));
            var ack = holder.WaitForAsync<WorkloadAck>(a => a.Seq == 1);
            await holder.SendAsync(new WorkloadHeartbeat(1, "incarnation-holder", [], []), Ct); // answered after the report was handled
            await ack.WaitAsync(TimeSpan.FromSeconds(60), Ct);

            using var get = new HttpRequestMessage(HttpMethod.Get, $"/api/workloads/{start.WorkloadId}");
            get.Headers.Add(WorkloadOwnerKey.Header, (string)submitted["owner_key"]!);
            using var response = await market.Http.SendAsync(get, Ct);
            var view = JsonNode.Parse(await response.Content.ReadAsStringAsync(Ct))!;
            Assert.Equal("failed", (string?)view["state"]);
            Assert.Contains("start_failed: exec", (string?)view["reason"], StringComparison.Ordinal);
        }
        finally
        {
            await PaidMarket.DropDatabaseAsync(database);
        }
    }

    // ---- helpers --------------------------------------------------------------------------------

    private static JsonNode? TryParse(string json)
    {
        try
        {
            return JsonNode.Parse(json);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string Json(ProtocolMessage message) => Encoding.UTF8.GetString(ProtocolJson.Serialize(message));

    private static CapabilitiesMessage Capabilities(string model, bool workloads) =>
        new([new ModelOffer(model, "vllm", 1_000_000, 3_000_000, 8192, 2, Tools: true)], 2, "hostile/1",
            workloads
                ? new WorkloadCapacity("bubblewrap", 2, 2048, 20, 5, Convert.ToBase64String(new byte[32]), Convert.ToBase64String(new byte[64]), "incarnation-hostile")
                : null);

    private static async Task<TestProvider> HonestAsync(PaidMarket market)
    {
        var honest = await market.Market.ProviderAsync("llama3", Ct, name: "honest", script: Scripts.Answer(HonestText));
        return honest;
    }

    /// <summary>A hostile provider past the handshake, its capabilities (a model of its own, and workloads) applied.</summary>
    private static async Task<TestProvider> HostileAsync(PaidMarket market, string name = "hostile")
    {
        var hostile = await TestProvider.ConnectAsync(market.Url, name, cancellationToken: Ct);
        Assert.NotNull(hostile.AuthOk);
        hostile.Script = Scripts.Answer("the hostile answer");
        Assert.Null(await SendSettledAsync(hostile, Frame.Text("capabilities", Json(Capabilities(HostileModel, workloads: true)))));
        return hostile;
    }

    private static async Task<string> BalanceKeyAsync(PaidMarket market) =>
        (await market.PostJsonAsync("/v1/balance/create", new { token = await market.TokenAsync(500) })).GetProperty("api_key").GetString()!;

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<TestProvider, LoadFigures> LastLoad = [];

    /// <summary>
    /// Sends <paramref name="frame"/>, then a heartbeat, and waits until the market processed both: null when the link is
    /// still open (the heartbeat was acknowledged), else the status it was closed with (null status: aborted). Frames on
    /// a link are handled in order, so the acknowledgement of the heartbeat after the frame proves the frame was handled.
    /// </summary>
    internal static async Task<WebSocketCloseStatus?> SendSettledAsync(TestProvider provider, Frame frame)
    {
        var heartbeat = frame.Type == WebSocketMessageType.Text ? ProtocolJson.TryDeserialize(frame.Bytes) as HeartbeatMessage : null;
        var acks = heartbeat is { Load: not null } ? 2 : 1;
        if (heartbeat?.Load is { } load)
        {
            LastLoad.AddOrUpdate(provider, load);
        }
        var seen = 0;
        var acked = provider.WaitForAsync<HeartbeatAck>(_ => Interlocked.Increment(ref seen) >= acks, afterNow: true);
        try
        {
            await provider.SendRawAsync(frame.Bytes, frame.Type, Ct);
            // The load the provider last reported, so the barrier does not undo what the frame claimed.
            await provider.SendAsync(new HeartbeatMessage(LastLoad.TryGetValue(provider, out var last) ? last : LoadFigures.Idle), Ct);
        }
        catch (Exception ex) when (ex is WebSocketException or ObjectDisposedException or IOException)
        {
            // The market closed the link meanwhile.
        }

        var done = await Task.WhenAny(acked, provider.Closed).WaitAsync(TimeSpan.FromSeconds(30), Ct);
        return done == acked ? null : Closed(await provider.Closed);
    }

    private static WebSocketCloseStatus? Closed((WebSocketCloseStatus? Status, string? Reason) closed) => closed.Status ?? Aborted;

    /// <summary>The market answers its routes, and the consumer gets the honest provider's answer, paid from its balance.</summary>
    private static async Task AssertHealthyAsync(PaidMarket market, TestProvider honest, string key)
    {
        foreach (var path in new[] { "/v1/models", "/api/providers", "/api/market/overview" })
        {
            using var response = await market.Http.GetAsync(path, Ct);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        }

        foreach (var path in new[] { "/api/admin/providers", "/api/admin/traffic", "/api/admin/money" })
        {
            await market.GetJsonAsync(path, market.AdminToken);
        }

        var before = honest.Jobs.Count;
        using var chat = await market.ChatAsync(bearer: key);
        var body = await chat.Content.ReadAsStringAsync(Ct);
        Assert.True(chat.StatusCode == HttpStatusCode.OK, $"the consumer got {(int)chat.StatusCode}: {body}");
        Assert.Equal(HonestText, JsonNode.Parse(body)!["choices"]![0]!["message"]!["content"]!.GetValue<string>());
        Assert.Equal(before + 1, honest.Jobs.Count);
    }

    private static async Task AssertEarnedNothingAsync(PaidMarket market, IEnumerable<string> providerIds)
    {
        var ledger = market.Services.GetRequiredService<ILedgerStore>();
        foreach (var id in providerIds.Distinct())
        {
            Assert.Equal(0, (await ledger.EarningsAsync(id, Ct)).EarnedMsat);
        }
    }
}
