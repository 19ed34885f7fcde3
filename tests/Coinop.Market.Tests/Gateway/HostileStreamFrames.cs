using System.Text;
using System.Text.Json.Nodes;
using Coinop.Core.Pricing;
using Coinop.Market.Inference;
using CsCheck;

namespace Coinop.Market.Tests.Gateway;

/// <summary>
/// What a hostile provider streams as its backend's output, generated: honest chat chunks mixed with unpaired surrogates
/// (escaped and raw), invalid UTF-8, broken SSE framing (no <c>data:</c>, CR-only line ends, a line of megabytes, an
/// event never ended, <c>[DONE]</c> anywhere and twice), JSON that is no object, mistyped <c>choices</c> and tool-call
/// deltas (wrong types, huge and negative indices, hundreds of calls), absurd and repeated usage, an error mid-stream.
/// The pieces are cut into frames at random byte positions, so characters and events straddle frames.
/// </summary>
public static class HostileStreamFrames
{
    public enum Api
    {
        Chat,
        Messages,
        Responses,
        /// <summary>Anthropic Messages from a provider whose backend serves them itself (relayed, not translated).</summary>
        MessagesNative,
    }

    internal enum Ending
    {
        Done,
        DoneThenMoreOutput,
        Error,
    }

    /// <summary>A generated attack: the backend output and how the provider ends the job.</summary>
    internal sealed record Attack(string[] Pieces, int[] Cuts, Ending Ending, long ClaimedInput, long ClaimedOutput)
    {
        public byte[] Bytes => Splice(Encoding.UTF8.GetBytes(string.Concat(Pieces)), Raw ?? []);

        /// <summary>Raw bytes that are not UTF-8 replace the marker <see cref="RawMarker"/> (strings cannot hold them).</summary>
        public byte[]? Raw { get; init; }

        /// <summary>The output cut into frames at <see cref="Cuts"/> (positions taken modulo the length).</summary>
        public IEnumerable<byte[]> Frames()
        {
            var bytes = Bytes;
            var cuts = Cuts.Select(c => bytes.Length == 0 ? 0 : c % bytes.Length).Append(0).Append(bytes.Length).Distinct().Order().ToArray();
            for (var i = 1; i < cuts.Length; i++)
            {
                yield return bytes[cuts[i - 1]..cuts[i]];
            }
        }

        public override string ToString() =>
            $"{Ending} claiming {ClaimedInput}/{ClaimedOutput}, cuts [{string.Join(',', Cuts)}], pieces: "
            + string.Join(" | ", Pieces.Select(p => p.Length > 120 ? p[..120] + $"…({p.Length})" : p));
    }

    internal const string RawMarker = "\u0001RAW\u0001";

    private static byte[] Splice(byte[] utf8, byte[] raw)
    {
        var marker = Encoding.UTF8.GetBytes(RawMarker);
        var output = new List<byte>(utf8.Length);
        var span = utf8.AsSpan();
        while (span.IndexOf(marker) is var at && at >= 0)
        {
            output.AddRange(span[..at]);
            output.AddRange(raw);
            span = span[(at + marker.Length)..];
        }

        output.AddRange(span);
        return [.. output];
    }

    private static string Chunk(string delta, string extra = "") =>
        $"data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":null}}]{extra}}}\n\n";

    private static string Text(string text) => Chunk(new JsonObject { ["content"] = text }.ToJsonString());

    /// <summary>Pieces of output an honest backend sends.</summary>
    private static readonly Gen<string> Honest = Gen.OneOf(
        Gen.String[Gen.Char.AlphaNumeric, 1, 12].Select(Text),
        Gen.Const(Text("😀 emoji straddling a cut")),
        Gen.Const(Text("é ü 模型")),
        Gen.Const(Chunk("{\"reasoning_content\":\"thinking\"}")),
        Gen.Const(Chunk("{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":\"}}]}")),
        Gen.Const(Chunk("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"1}\"}}]}")),
        Gen.Const(Chunk("{}", ",\"finish_reason\":\"stop\"")),
        Gen.Const("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7}}\n\n"),
        Gen.Const(": keep-alive\n\n"),
        Gen.Const("data: [DONE]\n\n"));

    /// <summary>Pieces no honest backend sends.</summary>
    private static readonly Gen<string> Hostile = Gen.OneOf(
        // Unpaired surrogates, escaped, in text and in the fields a translation reads.
        Gen.Const(Chunk("{\"content\":\"a\\ud800b\"}")),
        Gen.Const(Chunk("{\"content\":\"\\udc00\"}")),
        Gen.Const(Chunk("{\"reasoning_content\":\"\\ud83d\"}")),
        Gen.Const(Chunk("{\"tool_calls\":[{\"index\":0,\"id\":\"\\ud800\",\"function\":{\"name\":\"f\\udfff\",\"arguments\":\"\\ud800\"}}]}")),
        Gen.Const("data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\\ud800\"}]}\n\n"),
        Gen.Const("data: {\"id\":\"\\ud800\",\"choices\":[]}\n\n"),
        Gen.Const("data: {\"\\ud800\":1,\"choices\":[]}\n\n"),
        // Raw bytes that are not UTF-8 (the marker is replaced by them), and an unpaired surrogate encoded as UTF-8.
        Gen.Const(Chunk("{\"content\":\"x" + RawMarker + "y\"}")),
        Gen.Const(Chunk("{\"tool_calls\":[{\"index\":0,\"id\":\"c" + RawMarker + "\",\"function\":{\"name\":\"f\"}}]}")),
        Gen.Const("data: {\"choices\":[],\"model\":\"" + RawMarker + "\"}\n\n"),
        // SSE framing.
        Gen.Const("{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"no data prefix\"}}]}\n\n"),
        Gen.Const("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"cr\"}}]}\r\rdata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"only\"}}]}\r\r"),
        Gen.Const("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"two\"}}]}\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"data lines\"}}]}\n\n"),
        Gen.Const("data: {\"choices\":\r[{\"index\":0,\"delta\":{\"content\":\"cr inside\"}}]}\n\n"),
        Gen.Const("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
        Gen.Const("data: " + new string('a', 1_300_000) + "\n\n"),
        Gen.Const(Text(new string('b', 200_000))),
        Gen.Const("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"never ended\"}}]}"),
        Gen.Const("data: [DONE]\n\ndata: [DONE]\n\n"),
        Gen.Const("data:[DONE]\n\n"),
        // JSON that is not a chunk.
        Gen.OneOf(Gen.Const("42"), Gen.Const("[1,2]"), Gen.Const("\"text\""), Gen.Const("null"), Gen.Const("{"), Gen.Const("{}}"), Gen.Const("{\"choices\":[]} {}"),
            Gen.Const("{\"choices\":{\"0\":{\"delta\":{\"content\":\"x\"}}}}"), Gen.Const("{\"choices\":\"x\"}"), Gen.Const("{\"choices\":[7]}"),
            Gen.Const("{\"choices\":[{\"delta\":\"content\"}]}"), Gen.Const("{\"choices\":[{\"delta\":{\"content\":7}}]}"),
            Gen.Const("{\"choices\":[{\"delta\":{\"content\":{\"text\":\"nested\"}}}]}"), Gen.Const("{\"error\":{\"message\":\"mid-stream\"}}"))
            .Select(json => $"data: {json}\n\n"),
        // Tool-call deltas of wrong types and indices.
        Gen.OneOf(Gen.Const("\"0\""), Gen.Const("-1"), Gen.Const("2147483647"), Gen.Const("1e30"), Gen.Const("1.5"), Gen.Const("null"), Gen.Const("[]"))
            .Select(index => Chunk($"{{\"tool_calls\":[{{\"index\":{index},\"id\":\"x\",\"function\":{{\"name\":\"g\",\"arguments\":\"{{}}\"}}}}]}}")),
        Gen.Const(Chunk("{\"tool_calls\":[{\"index\":0,\"function\":{\"name\":7,\"arguments\":[1]}}]}")),
        Gen.Const(Chunk("{\"tool_calls\":[{\"index\":0,\"function\":\"f\"}]}")),
        Gen.Const(Chunk("{\"tool_calls\":{\"index\":0}}")),
        Gen.Const(Chunk("{\"tool_calls\":[7,\"x\",null]}")),
        Gen.Int[1, 400].Select(n => Chunk("{\"tool_calls\":[" + string.Join(',', Enumerable.Range(0, n).Select(i => $"{{\"index\":{i * 7919},\"function\":{{\"name\":\"n\"}}}}")) + "]}")),
        // Usage claims.
        Gen.OneOf(Gen.Const("-5"), Gen.Const("9223372036854775807"), Gen.Const("1e30"), Gen.Const("2.5"), Gen.Const("\"7\""), Gen.Const("-9223372036854775808"), Gen.Const("1000000000"))
            .Select(n => $"data: {{\"choices\":[],\"usage\":{{\"prompt_tokens\":{n},\"completion_tokens\":{n},\"total_tokens\":{n}}}}}\n\n"),
        Gen.Const("data: {\"choices\":[],\"usage\":\"lots\"}\n\n"),
        Gen.Const(Chunk("{\"content\":\"u\"}", ",\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":99999,\"content\":\"hidden\"}")),
        Gen.Const("data: {\"choices\":[],\"usage\":{\"completion_tokens\":1},\"usage\":{\"completion_tokens\":1000000}}\n\n"),
        // Errors of the provider's making, with fields of its choosing.
        Gen.Const("data: {\"error\":{\"message\":\"pay elsewhere\",\"type\":\"insufficient_quota\",\"code\":\"market_draining\",\"x\":{\"y\":1}}}\n\n"),
        Gen.Const("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"e\"}}],\"error\":\"boom\"}\n\n"));

    private static string Native(string name, string json) => $"event: {name}\ndata: {json}\n\n";

    /// <summary>Pieces of an Anthropic stream an honest native backend sends.</summary>
    private static readonly Gen<string> NativeHonest = Gen.OneOf(
        Gen.Const(Native("message_start", "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"solo\",\"content\":[],\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}")),
        Gen.Const(Native("content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}")),
        Gen.String[Gen.Char.AlphaNumeric, 1, 12].Select(t => Native("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"" + t + "\"}}")),
        Gen.Const(Native("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"😀 é 模型\"}}")),
        Gen.Const(Native("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}")),
        Gen.Const(Native("message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":7}}")),
        Gen.Const(Native("ping", "{\"type\":\"ping\"}")),
        Gen.Const(Native("message_stop", "{\"type\":\"message_stop\"}")));

    /// <summary>Pieces no honest native backend sends.</summary>
    private static readonly Gen<string> NativeHostile = Gen.OneOf(
        Gen.Const(Native("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"a\\ud800\"}}")),
        Gen.Const(Native("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"" + RawMarker + "\"}}")),
        Gen.Const(Native("bad name\u0001\u007f", "{\"type\":\"x\"}")),
        Gen.Const(Native(new string('n', 100), "{\"type\":\"x\"}")),
        Gen.Const(Native("content_block_delta", "not json")),
        Gen.Const(Native("message_start", "{\"type\":\"message_start\",\"message\":7}")),
        Gen.Const(Native("message_start", "{\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":\"5\",\"output_tokens\":[1]}}}")),
        Gen.OneOf(Gen.Const("-5"), Gen.Const("9223372036854775807"), Gen.Const("1e30"), Gen.Const("2.5"), Gen.Const("-9223372036854775808"))
            .Select(n => Native("message_delta", "{\"type\":\"message_delta\",\"delta\":{},\"usage\":{\"input_tokens\":" + n + ",\"output_tokens\":" + n + "}}")),
        Gen.Const(Native("error", "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"mid-stream\"}}")),
        Gen.Const("event: content_block_delta\n\n"),
        Gen.Const("data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"nameless\"}}\n\n"),
        Gen.Const("event: content_block_delta\r\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"crlf\"}}\r\n\r\n"),
        Gen.Const("event: ping\rdata: {\"type\":\"ping\"}\r\r"),
        Gen.Const(Native("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"" + new string('z', 1_100_000) + "\"}}")),
        // Claims in disguise: usage under escaped keys, in events named otherwise or nameless, duplicate types; text where no client shows it.
        Gen.Const(Native("message_delta", "{\"\\u0074ype\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"\\u0075sage\":{\"output_tokens\":1000000}}")),
        Gen.Const(Native("content_block_delta", "{\"type\":\"message_delta\",\"delta\":{},\"usage\":{\"output_tokens\":1000000}}")),
        Gen.Const("data: {\"type\":\"message_delta\",\"delta\":{},\"usage\":{\"input_tokens\":-3,\"output_tokens\":1e300}}\n\n"),
        Gen.Const(Native("ping", "{\"type\":\"ping\",\"type\":\"message_delta\",\"usage\":{\"output_tokens\":1000000}}")),
        Gen.Const(Native("message_start", "{\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"content\":[],\"usage\":{\"input_tokens\":1000000,\"text\":\"hidden\"}},\"usage\":{\"output_tokens\":\"NaN\"}}")),
        Gen.Const(Native("message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"text\":\"" + new string('h', 3000) + "\"},\"usage\":{\"output_tokens\":2000}}")),
        Gen.Const(Native("x_note", "{\"type\":\"x_note\",\"content\":\"" + new string('h', 3000) + "\"}")),
        Gen.Const(Native("content_block_start", "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"started with text\"}}")),
        Gen.Const("data: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"nameless\"}}\n\n"));

    /// <summary>A whole answer from a native Anthropic backend, honest or not.</summary>
    internal static readonly Gen<Attack> NativeAnswers = Gen.Select(
        Gen.OneOf(
            Gen.Const("{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"fine\"}],\"stop_reason\":\"end_turn\",\"usage\":{\"input_tokens\":5,\"output_tokens\":2}}"),
            Gen.Const("{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":\"ok\"}],\"usage\":{\"input_tokens\":-5,\"output_tokens\":1e30,\"cache_read_input_tokens\":99}}"),
            Gen.Const("{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":\"ok\"}],\"\\u0075sage\":{\"input_tokens\":9223372036854775807,\"output_tokens\":1000000}}"),
            Gen.Const("{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":\"ok\"}],\"usage\":{\"output_tokens\":3000,\"text\":\"" + new string('x', 9000) + "\"}}"),
            Gen.Const("{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":\"ok\"}],\"usage\":\"lots\"}"),
            Gen.Const("{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":\"no usage\"}]}"),
            Gen.Const("{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"pay elsewhere\"}}"),
            Gen.Const("{\"type\":\"message\",\"type\":\"error\",\"content\":[]}"),
            Gen.Const("{\"content\":[{\"type\":\"text\",\"text\":\"a\\ud800b\"}]}"),
            Gen.Const("{\"content\":[{\"type\":\"text\",\"text\":\"x" + RawMarker + "\"}]}"),
            Gen.Const("[]"), Gen.Const("data: {}\n\n"), Gen.Const("")).Array[1, 2],
        Gen.Int[0, int.MaxValue].Array[0, 3],
        Gen.Enum<Ending>(),
        Gen.OneOf(Gen.Const(5L), Gen.Const(-1L), Gen.Const(long.MaxValue)),
        Gen.OneOf(Gen.Const(7L), Gen.Const(-1L), Gen.Const(long.MaxValue)),
        Gen.OneOf(Gen.Const(new byte[] { 0xff }), Gen.Const(new byte[] { 0xed, 0xb0, 0x80 })),
        (pieces, cuts, ending, input, output, raw) => new Attack(pieces, cuts, ending, input, output) { Raw = raw });

    internal static readonly Gen<Attack> NativeAttacks = Gen.Select(
        Gen.Frequency((2, NativeHonest), (1, NativeHostile)).Array[1, 8],
        Gen.Int[0, int.MaxValue].Array[0, 6],
        Gen.Enum<Ending>(),
        Gen.OneOf(Gen.Const(5L), Gen.Const(-1L), Gen.Const(long.MaxValue)),
        Gen.OneOf(Gen.Const(7L), Gen.Const(-1L), Gen.Const(long.MaxValue)),
        Gen.OneOf(Gen.Const(new byte[] { 0xff }), Gen.Const(new byte[] { 0xed, 0xa0, 0x80 })),
        (pieces, cuts, ending, input, output, raw) => new Attack(pieces, cuts, ending, input, output) { Raw = raw });

    internal static readonly Gen<Attack> Attacks = Gen.Select(
        Gen.Frequency((2, Honest), (1, Hostile)).Array[1, 8],
        Gen.Int[0, int.MaxValue].Array[0, 6],
        Gen.Enum<Ending>(),
        Gen.OneOf(Gen.Const(5L), Gen.Const(0L), Gen.Const(-1L), Gen.Const(long.MaxValue), Gen.Long),
        Gen.OneOf(Gen.Const(7L), Gen.Const(0L), Gen.Const(-1L), Gen.Const(long.MaxValue), Gen.Const(1_000_000_000L), Gen.Long),
        Gen.OneOf(Gen.Const(new byte[] { 0xff }), Gen.Const(new byte[] { 0xed, 0xa0, 0x80 }), Gen.Const(new byte[] { 0xe2, 0x82 }), Gen.Const(new byte[] { 0xc0, 0xaf })),
        (pieces, cuts, ending, input, output, raw) => new Attack(pieces, cuts, ending, input, output) { Raw = raw });

    /// <summary>A whole (non-streamed) answer: a chat completion, honest or not.</summary>
    internal static readonly Gen<Attack> Answers = Gen.Select(
        Gen.OneOf(
            Gen.Const("{\"id\":\"c\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"fine\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}"),
            Gen.Const("{\"choices\":[{\"index\":0,\"message\":{\"content\":\"a\\ud800b\"}}]}"),
            Gen.Const("{\"choices\":[{\"index\":0,\"message\":{\"content\":\"x" + RawMarker + "\"}}]}"),
            Gen.Const("{\"choices\":[{\"index\":0,\"message\":{\"content\":\"ok\",\"tool_calls\":[{\"id\":\"\\udc00\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}}]}"),
            Gen.Const("{\"choices\":[{\"index\":0,\"message\":{\"content\":\"ok\"},\"finish_reason\":\"" + RawMarker + "\"}]}"),
            Gen.Const("{\"choices\":[{\"index\":0,\"message\":{\"content\":\"ok\"}}],\"usage\":{\"prompt_tokens\":-5,\"completion_tokens\":1e30}}"),
            Gen.Const("{\"choices\":[{\"index\":0,\"message\":{\"content\":\"ok\"}}],\"usage\":{\"prompt_tokens\":9223372036854775807,\"completion_tokens\":9223372036854775807}}"),
            Gen.Const("{\"choices\":\"x\"}"), Gen.Const("{\"choices\":[7]}"), Gen.Const("[]"), Gen.Const("data: {}\n\n"), Gen.Const("")).Array[1, 2],
        Gen.Int[0, int.MaxValue].Array[0, 3],
        Gen.Enum<Ending>(),
        Gen.OneOf(Gen.Const(5L), Gen.Const(-1L), Gen.Const(long.MaxValue)),
        Gen.OneOf(Gen.Const(7L), Gen.Const(-1L), Gen.Const(long.MaxValue)),
        Gen.OneOf(Gen.Const(new byte[] { 0xff }), Gen.Const(new byte[] { 0xed, 0xb0, 0x80 })),
        (pieces, cuts, ending, input, output, raw) => new Attack(pieces, cuts, ending, input, output) { Raw = raw });

    /// <summary>
    /// The most a consumer may be charged for what it received: the input the market estimates from the request and the
    /// output the market can count in the body the consumer got (what it saw is all that may be billed), each within the
    /// tolerance billing allows, at the hostile offer's prices.
    /// </summary>
    internal static long MostChargeableMsat(int requestBytes, string body, bool stream)
    {
        long bytes = 0, events = 0;
        var documents = stream
            ? body.Split('\n').Where(l => l.StartsWith("data: {", StringComparison.Ordinal)).Select(l => l["data: ".Length..])
            : [body];
        foreach (var document in documents)
        {
            var measured = GeneratedText.Bytes(Encoding.UTF8.GetBytes(document)) + ResponsesDeltaBytes(document);
            bytes += measured;
            events += measured > 0 && stream ? 1 : 0;
        }

        var input = BillableUsage.Ceiling((requestBytes + 2) / 3);
        var output = BillableUsage.Ceiling(WireCount.OutputTokensOf(bytes, events));
        // msat per token at the hostile offer (10 and 30), plus a msat of rounding per part.
        return input * (HostileLink.SoloInputMsatPerMtok / 1_000_000) + output * (HostileLink.SoloOutputMsatPerMtok / 1_000_000) + 2;
    }

    /// <summary>
    /// A Responses stream carries text in the <c>delta</c> of its <c>response.*.delta</c> events, a name that holds no
    /// text in the chat and Anthropic shapes; a stream cut short before its <c>done</c> events has its text there only.
    /// </summary>
    private static long ResponsesDeltaBytes(string document)
    {
        try
        {
            return JsonNode.Parse(document) is JsonObject o
                && o["type"] is JsonValue type && type.TryGetValue<string>(out var name)
                && name.StartsWith("response.", StringComparison.Ordinal) && name.EndsWith(".delta", StringComparison.Ordinal)
                && o["delta"] is JsonValue delta && delta.TryGetValue<string>(out var text)
                ? Encoding.UTF8.GetByteCount(text)
                : 0;
        }
        catch (System.Text.Json.JsonException)
        {
            return 0;
        }
    }
}
