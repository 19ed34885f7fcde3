using System.Text;
using System.Text.Json.Nodes;
using Coinop.TestKit;
using CsCheck;

namespace Coinop.Market.Tests.Abuse;

/// <summary>One frame as the attacker sends it.</summary>
public sealed record HostileFrame(int Opcode, byte[] Payload, bool Fin = true, bool Masked = true, int Reserved = 0)
{
    public static HostileFrame Text(string text) => new(RawFrame.Text, Encoding.UTF8.GetBytes(text));

    public override string ToString()
    {
        var text = Encoding.UTF8.GetString(Payload, 0, Math.Min(Payload.Length, 200));
        return $"[op {Opcode}{(Fin ? "" : " not final")}{(Masked ? "" : " unmasked")}{(Reserved != 0 ? $" rsv {Reserved}" : "")} {Payload.Length} B] {text}{(Payload.Length > 200 ? "…" : "")}";
    }
}

/// <summary>
/// One attack on the NUT-17 socket: frames, and what must come of them. <paramref name="ErrorCode"/>: the first answer is
/// a JSON-RPC error with this code and the connection stays usable. <paramref name="CloseCode"/>: the server closes with
/// this code. Neither: any well-formed answer, or a clean close with a code. <paramref name="FreshConnection"/>: sent on a new connection.
/// A framing violation (1002, 1007) is .NET's to answer: its WebSocket sends the close and aborts the connection at once,
/// so the reset may overtake the close frame; there, an ended connection is a clean answer too.
/// </summary>
public sealed record HostileMintMessage(string What, IReadOnlyList<HostileFrame> Frames, int? ErrorCode = null, int? CloseCode = null, bool FreshConnection = false)
{
    public static HostileMintMessage Text(string what, string text, int? errorCode = null, bool fresh = false) => new(what, [HostileFrame.Text(text)], errorCode, FreshConnection: fresh);

    public bool MayReset => CloseCode is HostileMintMessages.ProtocolError or HostileMintMessages.InvalidPayload;

    public override string ToString() => $"{What}: {string.Join(" + ", Frames.Take(3))}{(Frames.Count > 3 ? $" + {Frames.Count - 3} more" : "")}";
}

/// <summary>
/// What the NUT-17 sweep throws at <c>/mint/v1/ws</c>: a fixed catalogue (not JSON, binary, invalid UTF-8, huge and
/// fragmented messages, JSON-RPC of every wrong shape, duplicate keys, lone surrogates, NULs, unknown kinds, thousands
/// of filters, other connections' subscriptions, protocol violations in the framing) and a CsCheck generator mixing the
/// same parts with <see cref="HostileInput"/>'s random JSON and byte mutations.
/// </summary>
public static class HostileMintMessages
{
    public const int ParseError = -32700, InvalidRequest = -32600, MethodNotFound = -32601, InvalidParams = -32602, LimitExceeded = -32000;

    public const int ProtocolError = 1002, InvalidPayload = 1007, TooBig = 1009;

    public static string Subscribe(object? id, string kind, string subId, params string[] filters) =>
        new JsonObject
        {
            ["jsonrpc"] = "2.0",
            ["id"] = JsonValue.Create(id),
            ["method"] = "subscribe",
            ["params"] = new JsonObject { ["kind"] = kind, ["subId"] = subId, ["filters"] = new JsonArray([.. filters.Select(f => (JsonNode)f)]) },
        }.ToJsonString();

    /// <param name="victimQuote">A mint quote of another wallet (which watches it as <c>mine</c> on its own connection).</param>
    /// <param name="y">A well-formed Y (of a proof nobody holds).</param>
    public static IEnumerable<HostileMintMessage> Fixed(string victimQuote, string y)
    {
        var valid = Subscribe(1, "proof_state", "ok", y);

        // Not JSON, not an object, not text.
        yield return HostileMintMessage.Text("not JSON", "not json", ParseError);
        yield return HostileMintMessage.Text("empty", "", ParseError);
        yield return HostileMintMessage.Text("truncated", valid[..(valid.Length / 2)], ParseError);
        yield return HostileMintMessage.Text("deep nesting", new string('[', 5000) + new string(']', 5000), ParseError);
        yield return HostileMintMessage.Text("deep object", string.Concat(Enumerable.Repeat("{\"a\":", 500)) + "1" + new string('}', 500), ParseError);
        yield return HostileMintMessage.Text("an array", "[1,2,3]", InvalidRequest);
        yield return HostileMintMessage.Text("a batch", "[" + valid + "," + valid + "]", InvalidRequest);
        foreach (var kind in new[] { "null", "\"text\"", "123", "true", "1e400" })
        {
            yield return HostileMintMessage.Text("JSON of the wrong kind: " + kind, kind, InvalidRequest);
        }

        yield return new("binary garbage", [new(RawFrame.Binary, [0xff, 0x00, 0xfe, 0x01])], ParseError);
        yield return new("invalid UTF-8 in a binary frame", [new(RawFrame.Binary, [0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0xc3, 0x28, 0x7d])], ParseError);
        yield return new("invalid UTF-8 in a text frame", [new(RawFrame.Text, [0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0xc3, 0x28, 0x7d])], CloseCode: InvalidPayload);
        yield return new("a text frame cut inside a UTF-8 sequence", [new(RawFrame.Text, [0x22, 0xe2, 0x82])], CloseCode: InvalidPayload);

        // The JSON-RPC envelope: jsonrpc, id, method of the wrong kind or missing.
        yield return HostileMintMessage.Text("no jsonrpc", """{"id":1,"method":"subscribe","params":{"kind":"proof_state","subId":"a","filters":["x"]}}""", InvalidRequest);
        yield return HostileMintMessage.Text("jsonrpc 1.0", """{"jsonrpc":"1.0","id":1,"method":"unsubscribe","params":{"subId":"a"}}""", InvalidRequest);
        yield return HostileMintMessage.Text("jsonrpc a number", """{"jsonrpc":2.0,"id":1,"method":"unsubscribe","params":{"subId":"a"}}""", InvalidRequest);
        foreach (var id in new[] { "{}", "[]", "[1]", "true", "{\"a\":[1,2,3]}" })
        {
            yield return HostileMintMessage.Text("an id that is " + id, $$$"""{"jsonrpc":"2.0","id":{{{id}}},"method":"unsubscribe","params":{"subId":"a"}}""", InvalidRequest);
        }

        foreach (var method in new[] { "1", "null", "[]", "{}", "\"\"", "\"SUBSCRIBE\"", "\"subscribe \"", "\"rpc.discover\"", "\"" + new string('m', 5000) + "\"" })
        {
            yield return HostileMintMessage.Text("method " + method[..Math.Min(20, method.Length)],
                $$$"""{"jsonrpc":"2.0","id":1,"method":{{{method}}},"params":{"kind":"proof_state","subId":"a","filters":["{{{y}}}"]}}""",
                method.StartsWith('"') ? MethodNotFound : InvalidRequest);
        }

        yield return HostileMintMessage.Text("no method", """{"jsonrpc":"2.0","id":1,"params":{"subId":"a"}}""", InvalidRequest);
        foreach (var p in new[] { "null", "[]", "\"a\"", "1" })
        {
            yield return HostileMintMessage.Text("params " + p, $$"""{"jsonrpc":"2.0","id":1,"method":"unsubscribe","params":{{p}}}""", InvalidParams);
        }

        yield return HostileMintMessage.Text("no params", """{"jsonrpc":"2.0","id":1,"method":"unsubscribe"}""", InvalidParams);

        // Duplicate keys (JsonObject's dictionary refuses them) at every level.
        yield return HostileMintMessage.Text("duplicate id", """{"jsonrpc":"2.0","id":1,"id":2,"method":"unsubscribe","params":{"subId":"a"}}""", ParseError);
        yield return HostileMintMessage.Text("duplicate method", """{"jsonrpc":"2.0","id":1,"method":"unsubscribe","method":"subscribe","params":{"subId":"a"}}""", ParseError);
        yield return HostileMintMessage.Text("duplicate subId", """{"jsonrpc":"2.0","id":1,"method":"unsubscribe","params":{"subId":"a","subId":"b"}}""", ParseError);
        yield return HostileMintMessage.Text("duplicate kind", $$$"""{"jsonrpc":"2.0","id":1,"method":"subscribe","params":{"kind":"proof_state","kind":"x","subId":"a","filters":["{{{y}}}"]}}""", ParseError);

        // Lone surrogates (GetString throws on them) and NULs in every string.
        yield return HostileMintMessage.Text("lone surrogate in method", """{"jsonrpc":"2.0","id":1,"method":"sub\ud800","params":{"subId":"a"}}""", MethodNotFound);
        yield return HostileMintMessage.Text("lone surrogate in subId", """{"jsonrpc":"2.0","id":1,"method":"unsubscribe","params":{"subId":"\udc00"}}""", InvalidParams);
        yield return HostileMintMessage.Text("lone surrogate in kind", $$$"""{"jsonrpc":"2.0","id":1,"method":"subscribe","params":{"kind":"\ud800","subId":"a","filters":["{{{y}}}"]}}""", InvalidParams);
        yield return HostileMintMessage.Text("lone surrogate in a filter", """{"jsonrpc":"2.0","id":1,"method":"subscribe","params":{"kind":"bolt11_mint_quote","subId":"a","filters":["\ud800"]}}""", InvalidParams);
        yield return HostileMintMessage.Text("lone surrogate in id", """{"jsonrpc":"2.0","id":"\ud800","method":"unsubscribe","params":{"subId":"a"}}""", InvalidRequest);
        yield return HostileMintMessage.Text("lone surrogate in jsonrpc", """{"jsonrpc":"2.0\ud800","id":1,"method":"unsubscribe","params":{"subId":"a"}}""", InvalidRequest);
        yield return HostileMintMessage.Text("a method cut inside a surrogate pair when quoted back", $$$"""{"jsonrpc":"2.0","id":1,"method":"{{{new string('m', 39)}}}😀","params":{"subId":"a"}}""", MethodNotFound);
        foreach (var kind in new[] { "bolt11_mint_quote", "bolt11_melt_quote", "proof_state" })
        {
            yield return HostileMintMessage.Text("NUL in a filter of " + kind, Subscribe(1, kind, "nul", "abc\0"), InvalidParams);
            yield return HostileMintMessage.Text("NUL filter of " + kind, Subscribe(1, kind, "nul", "\0"), InvalidParams);
        }

        yield return HostileMintMessage.Text("NUL in subId", Subscribe(1, "proof_state", "a\0b", y));
        yield return HostileMintMessage.Text("NUL in method", """{"jsonrpc":"2.0","id":1,"method":"subscribe\u0000","params":{"subId":"a"}}""", MethodNotFound);

        // Kinds, filters and subIds an attacker picks.
        foreach (var kind in new[] { "", "bolt12_mint_quote", "BOLT11_MINT_QUOTE", "proof_state ", new string('k', 3000) })
        {
            yield return HostileMintMessage.Text("kind " + kind[..Math.Min(20, kind.Length)], Subscribe(1, kind, "a", y), InvalidParams);
        }

        yield return HostileMintMessage.Text("kind a number", $$$"""{"jsonrpc":"2.0","id":1,"method":"subscribe","params":{"kind":17,"subId":"a","filters":["{{{y}}}"]}}""", InvalidParams);
        yield return HostileMintMessage.Text("no kind", $$$"""{"jsonrpc":"2.0","id":1,"method":"subscribe","params":{"subId":"a","filters":["{{{y}}}"]}}""", InvalidParams);
        foreach (var filters in new[] { "null", "\"x\"", "{}", "[]", "[null]", "[1]", "[[]]", "[{}]", "[\"" + new string('f', 257) + "\"]" })
        {
            yield return HostileMintMessage.Text("filters " + filters[..Math.Min(20, filters.Length)],
                $$$"""{"jsonrpc":"2.0","id":1,"method":"subscribe","params":{"kind":"proof_state","subId":"a","filters":{{{filters}}}}}""", InvalidParams);
        }

        yield return HostileMintMessage.Text("101 filters", Subscribe(1, "proof_state", "many", [.. Enumerable.Repeat(y, 101)]), LimitExceeded);
        yield return HostileMintMessage.Text("5000 filters", Subscribe(1, "bolt11_mint_quote", "many", [.. Enumerable.Range(0, 5000).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture))]), LimitExceeded);
        foreach (var subId in new[] { "null", "1", "[]", "\"\"", "\"" + new string('s', 129) + "\"" })
        {
            yield return HostileMintMessage.Text("subId " + subId[..Math.Min(20, subId.Length)],
                $$$"""{"jsonrpc":"2.0","id":1,"method":"subscribe","params":{"kind":"proof_state","subId":{{{subId}}},"filters":["{{{y}}}"]}}""", InvalidParams);
        }

        foreach (var garbage in HostileRequests.GarbageParameters)
        {
            yield return HostileMintMessage.Text("a garbage mint quote", Subscribe(1, "bolt11_mint_quote", "g", garbage));
            yield return HostileMintMessage.Text("a garbage melt quote", Subscribe(1, "bolt11_melt_quote", "g", garbage));
            yield return HostileMintMessage.Text("a garbage Y", Subscribe(1, "proof_state", "g", garbage));
            yield return HostileMintMessage.Text("a garbage subId", Subscribe(garbage, "proof_state", garbage, y));
        }

        // Other connections' subscriptions: never subscribed, or the victim's own subId (it must keep it).
        yield return HostileMintMessage.Text("unsubscribe what was never subscribed", """{"jsonrpc":"2.0","id":1,"method":"unsubscribe","params":{"subId":"never"}}""", InvalidParams);
        yield return HostileMintMessage.Text("unsubscribe the victim's subId", """{"jsonrpc":"2.0","id":1,"method":"unsubscribe","params":{"subId":"mine"}}""", InvalidParams, fresh: true);
        yield return HostileMintMessage.Text("subscribe to the victim's quote under the victim's subId (NUT-17 lets anyone who knows a quote id watch it)",
            Subscribe(1, "bolt11_mint_quote", "mine", victimQuote));
        yield return HostileMintMessage.Text("subscribe to the victim's quote again under the same subId", Subscribe(2, "bolt11_mint_quote", "mine", victimQuote), InvalidParams);
        yield return HostileMintMessage.Text("unsubscribe the victim's subId (this connection's own, taken above)", """{"jsonrpc":"2.0","id":1,"method":"unsubscribe","params":{"subId":"mine"}}""");
        yield return HostileMintMessage.Text("unsubscribe the victim's subId once more", """{"jsonrpc":"2.0","id":1,"method":"unsubscribe","params":{"subId":"mine"}}""", InvalidParams);

        // Framing: a message in fragments (fine), a huge one, one that never ends, control frames out of the rules.
        var bytes = Encoding.UTF8.GetBytes(Subscribe(1, "proof_state", "frag", y));
        yield return new("a valid message in three fragments",
            [new(RawFrame.Text, bytes[..10], Fin: false), new(RawFrame.Continuation, bytes[10..20], Fin: false), new(RawFrame.Continuation, bytes[20..])]);
        yield return new("a ping between fragments", [new(RawFrame.Text, bytes[..10], Fin: false), new(RawFrame.Ping, "p"u8.ToArray()), new(RawFrame.Continuation, bytes[10..])]);
        yield return new("a message over 64 KiB", [HostileFrame.Text(new string('x', 64 * 1024 + 1))], CloseCode: TooBig);
        yield return new("a message over 64 KiB in 1 KiB fragments",
            [new(RawFrame.Text, new byte[1024], Fin: false), .. Enumerable.Range(0, 70).Select(_ => new HostileFrame(RawFrame.Continuation, Encoding.UTF8.GetBytes(new string(' ', 1024)), Fin: false))],
            CloseCode: TooBig);
        yield return new("a 1 MiB frame", [new(RawFrame.Text, Encoding.UTF8.GetBytes(new string('[', 1024 * 1024)))], CloseCode: TooBig);
        yield return new("a continuation without a start", [new(RawFrame.Continuation, "{}"u8.ToArray())], CloseCode: ProtocolError);
        yield return new("a new message inside a fragmented one", [new(RawFrame.Text, "{"u8.ToArray(), Fin: false), HostileFrame.Text("{}")], CloseCode: ProtocolError);
        yield return new("an unmasked frame", [new(RawFrame.Text, Encoding.UTF8.GetBytes(valid), Masked: false)], CloseCode: ProtocolError);
        yield return new("reserved bits", [new(RawFrame.Text, Encoding.UTF8.GetBytes(valid), Reserved: 7)], CloseCode: ProtocolError);
        yield return new("a reserved opcode", [new(3, "{}"u8.ToArray())], CloseCode: ProtocolError);
        yield return new("a fragmented ping", [new(RawFrame.Ping, "p"u8.ToArray(), Fin: false)], CloseCode: ProtocolError);
        yield return new("a ping of 200 bytes", [new(RawFrame.Ping, new byte[200])], CloseCode: ProtocolError);
        yield return new("a close cutting a message", [new(RawFrame.Text, "{\"jsonrpc\""u8.ToArray(), Fin: false), new(RawFrame.Close, [0x03, 0xe8])], CloseCode: 1000);
    }

    /// <summary>
    /// Random attacks: a JSON-RPC envelope whose every part is drawn from right and wrong values, a valid request with a
    /// node replaced or its bytes mutated, random JSON, sent as one text frame, a binary frame or in fragments.
    /// </summary>
    public static Gen<HostileMintMessage> Generated(string victimQuote, string y)
    {
        var str = Gen.OneOf(
            Gen.OneOf(HostileRequests.GarbageParameters),
            Gen.String[0, 40],
            Gen.OneOf(victimQuote, y, "mine", "ok", "\ud800", "a\u0000", "😀"));
        var node = Gen.Frequency(
            (3, str.Select(s => (JsonNode?)JsonValue.Create(s))),
            (2, HostileInput.Json),
            (1, Gen.Const((JsonNode?)null)));
        var kind = Gen.Frequency((4, Gen.OneOf("bolt11_mint_quote", "bolt11_melt_quote", "proof_state").Select(k => (JsonNode?)k)), (1, node));
        var filters = Gen.Frequency(
            (4, str.Select(s => (JsonNode?)s).List[0, 6].Select(l => (JsonNode?)new JsonArray([.. l]))),
            (1, Gen.Int[90, 130].Select(n => (JsonNode?)new JsonArray([.. Enumerable.Repeat(y, n).Select(f => (JsonNode)f)]))),
            (1, node));
        var envelope = Gen.Select(
            Gen.Frequency((6, Gen.Const((JsonNode?)"2.0")), (1, node)),
            Gen.Frequency((3, Gen.Int.Select(i => (JsonNode?)i)), (1, node)),
            Gen.Frequency((6, Gen.OneOf("subscribe", "unsubscribe").Select(m => (JsonNode?)m)), (1, node)),
            Gen.Frequency((6, str.Select(s => (JsonNode?)s)), (1, node)),
            kind,
            filters,
            Gen.Int[0, 63]).Select(parts =>
            {
                var (jsonrpc, id, method, subId, k, f, omit) = parts;
                var p = new JsonObject();
                if ((omit & 1) == 0) p["kind"] = k?.DeepClone();
                if ((omit & 2) == 0) p["filters"] = f?.DeepClone();
                if ((omit & 4) == 0) p["subId"] = subId?.DeepClone();
                var o = new JsonObject();
                if ((omit & 8) == 0) o["jsonrpc"] = jsonrpc?.DeepClone();
                if ((omit & 16) == 0) o["id"] = id?.DeepClone();
                if ((omit & 32) == 0) o["method"] = method?.DeepClone();
                o["params"] = p;
                return o.ToJsonString();
            });
        var text = Gen.Frequency(
            (4, envelope),
            (2, HostileInput.JsonBodies(Subscribe(1, "bolt11_mint_quote", "g", victimQuote))),
            (1, HostileInput.JsonBodies(Subscribe(1, "proof_state", "g", y))));
        return Gen.Select(text, Gen.Int[0, 9], Gen.Int[1, 8]).Select(t =>
        {
            var (message, how, pieces) = t;
            var bytes = Encoding.UTF8.GetBytes(message);
            return how switch
            {
                0 => new HostileMintMessage("generated, binary", [new(RawFrame.Binary, bytes)]),
                1 => new HostileMintMessage("generated, fragmented", Fragments(bytes, pieces)),
                _ => new HostileMintMessage("generated", [new(RawFrame.Text, bytes)]),
            };
        });
    }

    private static List<HostileFrame> Fragments(byte[] bytes, int pieces)
    {
        var size = Math.Max(1, bytes.Length / pieces);
        var frames = new List<HostileFrame>();
        for (var at = 0; at < bytes.Length || frames.Count == 0; at += size)
        {
            var end = Math.Min(bytes.Length, at + size);
            frames.Add(new(frames.Count == 0 ? RawFrame.Text : RawFrame.Continuation, bytes[at..end], Fin: end >= bytes.Length));
        }

        return frames;
    }
}
