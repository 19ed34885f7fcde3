using System.Formats.Cbor;
using System.Text;
using System.Text.Json.Nodes;
using CsCheck;

namespace Coinop.TestKit;

/// <summary>
/// Generators of an attacker's input: random JSON and CBOR shaped like Cashu tokens, payment requests and API bodies
/// (their fields' names, nulls, huge numbers, wrong types), and valid inputs mutated node by node or byte by byte.
/// Decoder properties and HTTP tests feed them to the real code; whatever comes out must be a clean refusal.
/// </summary>
public static class HostileInput
{
    public const string Hex64 = "0000000000000000000000000000000000000000000000000000000000000001";
    public const string Hex66 = "02" + Hex64;

    private static readonly string[] Vocabulary =
        ["token", "mint", "proofs", "amount", "id", "secret", "C", "dleq", "e", "s", "r", "witness", "unit", "memo",
         "t", "i", "p", "a", "c", "d", "w", "m", "u", "g", "k", "nut10", "x"];

    // --- JSON (V3 tokens) ---

    // Nulls weigh more than the other leaves: a null where an object or a list is due is the classic crash.
    private static readonly Gen<JsonNode?> JsonLeaf = Gen.OneOf(
        Gen.Bool.Select(_ => (JsonNode?)null),
        Gen.Bool.Select(_ => (JsonNode?)null),
        Gen.Bool.Select(_ => (JsonNode?)null),
        Gen.Bool.Select(b => (JsonNode?)JsonValue.Create(b)),
        Gen.Long.Select(l => (JsonNode?)JsonValue.Create(l)),
        Gen.ULong.Select(l => (JsonNode?)JsonValue.Create(l)),
        Gen.Double.Select(d => double.IsFinite(d) ? (JsonNode?)JsonValue.Create(d) : null),
        Gen.OneOf("18446744073709551616", "-1", "1e400", "0", "1.5").Select(n => (JsonNode?)JsonNode.Parse(n)),
        Gen.String[0, 20].Select(s => (JsonNode?)JsonValue.Create(s)),
        Gen.OneOf("", "sat", "usd", Hex64, Hex66, "00ad268c4d1f5826", "http://mint", "cashu:", " ")
            .Select(s => (JsonNode?)JsonValue.Create(s)));

    /// <summary>Random JSON values up to four levels deep, objects keyed mostly by Cashu and API field names.</summary>
    public static readonly Gen<JsonNode?> Json = JsonValueOf(4);

    private static Gen<JsonNode?> JsonValueOf(int depth)
    {
        if (depth == 0)
        {
            return JsonLeaf;
        }

        var inner = JsonValueOf(depth - 1);
        var array = inner.List[0, 4].Select(items => (JsonNode?)new JsonArray([.. items]));
        var obj = Gen.Select(Gen.OneOf(Gen.OneOf(Vocabulary), Gen.String[0, 6]), inner).List[0, 6].Select(fields =>
        {
            var o = new JsonObject();
            foreach (var (key, value) in fields)
            {
                o[key] = value;
            }

            return (JsonNode?)o;
        });
        return Gen.Frequency((2, JsonLeaf), (1, array), (3, obj));
    }

    /// <summary>The JSON text with one node (chosen by <paramref name="pick"/>) replaced by <paramref name="value"/>.</summary>
    public static string ReplaceOneNode(string json, int pick, JsonNode? value)
    {
        var root = JsonNode.Parse(json)!;
        var nodes = new List<(JsonNode Parent, object Key)>();
        void Walk(JsonNode node)
        {
            switch (node)
            {
                case JsonObject o:
                    foreach (var (k, v) in o)
                    {
                        nodes.Add((o, k));
                        if (v is not null) Walk(v);
                    }

                    break;
                case JsonArray a:
                    for (var i = 0; i < a.Count; i++)
                    {
                        nodes.Add((a, i));
                        if (a[i] is not null) Walk(a[i]!);
                    }

                    break;
            }
        }

        Walk(root);
        var (parent, key) = nodes[pick % nodes.Count];
        if (key is string name)
        {
            parent.AsObject()[name] = value;
        }
        else
        {
            parent.AsArray()[(int)key] = value;
        }

        return root.ToJsonString();
    }

    // --- CBOR (V4 tokens, payment requests) ---

    private abstract record CborItem;

    private sealed record CborMap(IReadOnlyList<(CborItem Key, CborItem Value)> Fields, bool Indefinite) : CborItem;

    private sealed record CborArray(IReadOnlyList<CborItem> Items, bool Indefinite) : CborItem;

    private sealed record CborScalar(Action<CborWriter> Write) : CborItem;

    private static readonly Gen<CborItem> CborLeaf = Gen.OneOf(
        Gen.ULong.Select(v => (CborItem)new CborScalar(w => w.WriteUInt64(v))),
        Gen.Long.Select(v => (CborItem)new CborScalar(w => w.WriteInt64(v))),
        Gen.String[0, 12].Select(v => (CborItem)new CborScalar(w => w.WriteTextString(v))),
        Gen.OneOf(Vocabulary).Select(v => (CborItem)new CborScalar(w => w.WriteTextString(v))),
        Gen.Byte.Array[0, 40].Select(v => (CborItem)new CborScalar(w => w.WriteByteString(v))),
        Gen.Const((CborItem)new CborScalar(w => w.WriteByteString(Convert.FromHexString(Hex66)))),
        Gen.Const((CborItem)new CborScalar(w => w.WriteNull())),
        Gen.Const((CborItem)new CborScalar(w => w.WriteSimpleValue(CborSimpleValue.Undefined))),
        Gen.Bool.Select(v => (CborItem)new CborScalar(w => w.WriteBoolean(v))),
        Gen.Double.Select(v => (CborItem)new CborScalar(w => w.WriteDouble(v))),
        Gen.OneOf(24UL, 258UL, 55799UL).Select(v => (CborItem)new CborScalar(w =>
        {
            w.WriteTag((CborTag)v);
            w.WriteTextString("tagged");
        })),
        Gen.Const((CborItem)new CborScalar(w => w.WriteBigInteger(System.Numerics.BigInteger.Pow(2, 70)))));

    /// <summary>Random CBOR items up to four levels deep, maps keyed mostly by Cashu field names.</summary>
    public static readonly Gen<byte[]> Cbor = CborOf(4).Select(Encode);

    private static Gen<CborItem> CborOf(int depth)
    {
        if (depth == 0)
        {
            return CborLeaf;
        }

        var inner = CborOf(depth - 1);
        var key = Gen.Frequency(
            (6, Gen.OneOf(Vocabulary).Select(v => (CborItem)new CborScalar(w => w.WriteTextString(v)))),
            (1, CborLeaf));
        var array = Gen.Select(inner.List[0, 4], Gen.Bool, (items, indefinite) => (CborItem)new CborArray(items, indefinite));
        var map = Gen.Select(Gen.Select(key, inner).List[0, 6], Gen.Bool, (fields, indefinite) => (CborItem)new CborMap(fields, indefinite));
        return Gen.Frequency((2, CborLeaf), (1, array), (3, map));
    }

    private static byte[] Encode(CborItem item)
    {
        var w = new CborWriter(CborConformanceMode.Lax, convertIndefiniteLengthEncodings: false, allowMultipleRootLevelValues: false);
        Write(w, item);
        return w.Encode();
    }

    private static void Write(CborWriter w, CborItem item)
    {
        switch (item)
        {
            case CborMap m:
                w.WriteStartMap(m.Indefinite ? null : m.Fields.Count);
                foreach (var (k, v) in m.Fields)
                {
                    Write(w, k);
                    Write(w, v);
                }

                w.WriteEndMap();
                break;
            case CborArray a:
                w.WriteStartArray(a.Indefinite ? null : a.Items.Count);
                foreach (var i in a.Items)
                {
                    Write(w, i);
                }

                w.WriteEndArray();
                break;
            case CborScalar s:
                s.Write(w);
                break;
        }
    }

    /// <summary>Mutations of a byte string: flip, overwrite, insert, delete, truncate, duplicate a slice.</summary>
    public static readonly Gen<Func<byte[], byte[]>> ByteMutation = Gen.OneOf(
        Gen.Select(Gen.Int, Gen.Byte, (at, b) => (Func<byte[], byte[]>)(src => Edit(src, at, (a, i) => a[i] ^= (byte)(b | 1)))),
        Gen.Select(Gen.Int, Gen.Byte, (at, b) => (Func<byte[], byte[]>)(src => Edit(src, at, (a, i) => a[i] = b))),
        Gen.Select(Gen.Int, Gen.Byte.Array[1, 9], (at, bytes) => (Func<byte[], byte[]>)(src =>
            src.Length == 0 ? bytes : [.. src[..(Math.Abs(at % src.Length))], .. bytes, .. src[Math.Abs(at % src.Length)..]])),
        Gen.Select(Gen.Int, Gen.Int[1, 9], (at, n) => (Func<byte[], byte[]>)(src =>
        {
            if (src.Length == 0) return src;
            var i = Math.Abs(at % src.Length);
            return [.. src[..i], .. src[Math.Min(src.Length, i + n)..]];
        })),
        Gen.Int.Select(at => (Func<byte[], byte[]>)(src => src.Length == 0 ? src : src[..Math.Abs(at % src.Length)])),
        Gen.Select(Gen.Int, Gen.Int[1, 30], (at, n) => (Func<byte[], byte[]>)(src =>
        {
            if (src.Length == 0) return src;
            var i = Math.Abs(at % src.Length);
            var slice = src[i..Math.Min(src.Length, i + n)];
            return [.. src[..i], .. slice, .. src[i..]];
        })));

    private static byte[] Edit(byte[] src, int at, Action<byte[], int> edit)
    {
        if (src.Length == 0)
        {
            return src;
        }

        var copy = (byte[])src.Clone();
        edit(copy, Math.Abs(at % copy.Length));
        return copy;
    }

    /// <summary><paramref name="valid"/> with one to four byte mutations.</summary>
    public static Gen<byte[]> Mutations(byte[] valid) => ByteMutation.Array[1, 4].Select(ms => ms.Aggregate(valid, (b, m) => m(b)));

    /// <summary>The text with one to four mutations of its UTF-8 bytes (invalid sequences become U+FFFD).</summary>
    public static Gen<string> Mutations(string valid) => Mutations(Encoding.UTF8.GetBytes(valid)).Select(b => Encoding.UTF8.GetString(b));

    /// <summary>Bodies for an endpoint whose valid body is <paramref name="validJson"/>: a node replaced, the text mutated, or random JSON.</summary>
    public static Gen<string> JsonBodies(string validJson) => Gen.Frequency(
        (3, Gen.Select(Gen.Int[0, 1000], Json, (pick, value) => ReplaceOneNode(validJson, pick, value))),
        (2, Mutations(validJson)),
        (1, Json.Select(n => n?.ToJsonString() ?? "null")));

    /// <summary>
    /// Tokens derived from the valid ones given: cashuA with a node of its JSON replaced, cashuB and cashuA with their
    /// bytes mutated, the text mutated, random JSON or CBOR under either prefix.
    /// </summary>
    public static Gen<string> Tokens(string validV3, string validV4)
    {
        var v3Json = Encoding.UTF8.GetString(Unbase64(validV3[6..]));
        var v4Cbor = Unbase64(validV4[6..]);
        return Gen.Frequency(
            (3, Gen.Select(Gen.Int[0, 1000], Json, (pick, value) => "cashuA" + Base64Url(Encoding.UTF8.GetBytes(ReplaceOneNode(v3Json, pick, value))))),
            (3, Mutations(v4Cbor).Select(b => "cashuB" + Base64Url(b))),
            (1, Mutations(Encoding.UTF8.GetBytes(v3Json)).Select(b => "cashuA" + Base64Url(b))),
            (1, Gen.OneOf(Mutations(validV3), Mutations(validV4))),
            (1, Json.Select(n => "cashuA" + Base64Url(Encoding.UTF8.GetBytes(n?.ToJsonString() ?? "null")))),
            (1, Cbor.Select(b => "cashuB" + Base64Url(b))));
    }

    public static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public static byte[] Unbase64(string text)
    {
        var s = text.TrimEnd('=').Replace('-', '+').Replace('_', '/');
        return Convert.FromBase64String(s.PadRight(s.Length + (4 - s.Length % 4) % 4, '='));
    }
}
