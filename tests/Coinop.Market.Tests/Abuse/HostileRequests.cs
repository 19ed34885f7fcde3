using System.Text;
using System.Text.Json.Nodes;
using Coinop.TestKit;
using CsCheck;

namespace Coinop.Market.Tests.Abuse;

/// <summary>
/// What the sweep throws at a route: a fixed catalogue (no body, empty, invalid and truncated JSON, wrong content types,
/// JSON of every wrong kind, huge and negative numbers, deep nesting, invalid UTF-8, a big body, a wrong method, route
/// parameters replaced by garbage or by other tenants' ids, forged credentials, bad query strings) and a generator that
/// mixes the same parts with <see cref="HostileInput"/>'s random JSON and tokens.
/// </summary>
/// <param name="ParameterValues">What a route parameter becomes: garbage, and real ids of another tenant's things.</param>
/// <param name="Credentials">Header sets: none, forged, and real ones (the operator's, an attacker's own balance) so that checks behind them are reached.</param>
/// <param name="ValidBodies">Well-formed bodies for a route pattern, when known: each is sent, the first is varied.</param>
/// <param name="BodyCredentials">The credentials (indexes) each body variation is sent with.</param>
/// <param name="Tokens">Forged and mutated Cashu tokens.</param>
public sealed record HostileRequests(
    IReadOnlyList<string> ParameterValues,
    IReadOnlyList<(string Name, string Value)[]> Credentials,
    IReadOnlyDictionary<string, string[]> ValidBodies,
    IReadOnlyList<int> BodyCredentials,
    Gen<string> Tokens)
{
    public const string JsonType = "application/json";

    /// <summary>Route parameters an attacker sends: overlong, unicode, traversal, encodings, numbers, injection.</summary>
    public static readonly string[] GarbageParameters =
    [
        "", "x", new string('a', 3000), "ünïcödé-😀-\u202e-\u200b", "../../../../etc/passwd", "..\\..\\windows\\win.ini", "%00", "\0", "%ff%fe",
        "-1", "0", "18446744073709551616", "1e400", "null", "{}", "' OR 1=1 --", "<script>alert(1)</script>", "a/b/../../c",
        "00000000000000000000000000000000", "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", "cashuBo2FteBs", "sk-" + new string('0', 64),
    ];

    /// <summary>Query strings with bad values for the parameters the market reads, and some it does not.</summary>
    public static readonly string[] BadQueries =
    [
        "?limit=-1&window=99999d&after=-5&follow=maybe",
        "?limit=18446744073709551616&window=0m&after=18446744073709551616",
        "?limit=abc&window=%ff&after=1e3&follow=1",
        "?limit=&window=&after=&follow=",
        "?limit=1&limit=2&window=1h&window=2h&after=1&after=2",
        "?%00=%00&x=%ff%fe&%E2%80%AE=1",
        "?" + new string('q', 2000) + "=" + new string('v', 2000),
    ];

    private static readonly string[] WrongKinds = ["null", "[]", "\"text\"", "123", "-1", "true", "{}", "[{}]", "1e400"];

    /// <summary>
    /// Every fixed request for one route and method. Parameters rotate through <see cref="ParameterValues"/>; each
    /// variation of a body is sent with each of <see cref="BodyCredentials"/> (one that pays, one that is the operator), so
    /// the body is read by the code behind the credential check, not only refused before it.
    /// </summary>
    public IEnumerable<HostileRequest> Fixed(SweptRoute route, string method)
    {
        var valids = ValidBodies.GetValueOrDefault(route.Pattern) ?? ["""{"model":"llama3","token":"cashuB","amount":1,"id":"x"}"""];
        var valid = valids[0];
        var validBytes = Encoding.UTF8.GetBytes(valid);
        var n = 0;
        string Path(string query = "")
        {
            var turn = n++;
            return route.Path(_ => ParameterValues[turn % ParameterValues.Count]) + query;
        }

        HostileRequest Make(byte[]? body, string? contentType = JsonType, string query = "", int credentials = 0) =>
            new(method, Path(query), body, body is null ? null : contentType, Credentials[credentials % Credentials.Count], route.Pattern);

        // Every parameter value, every credential with each valid body, every query.
        if (route.Parameters.Count > 0)
        {
            foreach (var value in ParameterValues)
            {
                yield return new(method, route.Path(_ => value), null, null, [], route.Pattern);
            }
        }

        for (var c = 0; c < Credentials.Count; c++)
        {
            yield return Make(null, credentials: c);
            foreach (var body in valids)
            {
                yield return Make(Encoding.UTF8.GetBytes(body), credentials: c);
            }
        }

        foreach (var query in BadQueries)
        {
            yield return Make(null, query: query, credentials: 1);
        }

        foreach (var credentials in BodyCredentials)
        {
            foreach (var (body, contentType) in Bodies(valid, validBytes))
            {
                yield return Make(body, contentType, credentials: credentials);
            }
        }
    }

    /// <summary>Bodies: empty, invalid, truncated, wrong content types, wrong kinds of JSON, bad numbers, deep nesting, bad UTF-8, big.</summary>
    private static IEnumerable<(byte[] Body, string? ContentType)> Bodies(string valid, byte[] validBytes)
    {
        yield return ([], JsonType);
        yield return ("{"u8.ToArray(), JsonType);
        yield return ("{\"model\": "u8.ToArray(), JsonType);
        yield return (validBytes[..(validBytes.Length / 2)], JsonType);
        yield return (validBytes[..^1], JsonType);
        yield return (validBytes, "text/plain");
        yield return (validBytes, "application/x-www-form-urlencoded");
        yield return ("token=cashuBxyz&amount=-1&x=%ff"u8.ToArray(), "application/x-www-form-urlencoded");
        yield return ("--b\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\nx\r\n--b--\r\n"u8.ToArray(), "multipart/form-data; boundary=b");
        yield return ("--b\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\nx"u8.ToArray(), "multipart/form-data; boundary=b");
        yield return (validBytes, "application/json; charset=utf-16");
        yield return (validBytes, "application/json; charset=\"");
        yield return (validBytes, "garbage/;;;");
        yield return (validBytes, null);
        foreach (var kind in WrongKinds)
        {
            yield return (Encoding.UTF8.GetBytes(kind), JsonType);
        }

        // Every number of the valid body made huge, negative, fractional; every string made a number; every leaf null, an array, an object.
        foreach (var number in new[] { "18446744073709551616", "-1", "-9223372036854775808", "9223372036854775807", "1e400", "0.5", "-0", "1E+2" })
        {
            yield return (Encoding.UTF8.GetBytes(ReplaceLeaves(valid, v => v.GetValueKind() == System.Text.Json.JsonValueKind.Number ? JsonNode.Parse(number) : v.DeepClone())), JsonType);
        }

        yield return (Encoding.UTF8.GetBytes(ReplaceLeaves(valid, v => v.GetValueKind() == System.Text.Json.JsonValueKind.String ? JsonValue.Create(-1) : v.DeepClone())), JsonType);
        // Strings a store may refuse (PostgreSQL takes no NUL in text) or a decoder may choke on (a lone surrogate).
        yield return (Encoding.UTF8.GetBytes(ReplaceLeaves(valid, v => v.GetValueKind() == System.Text.Json.JsonValueKind.String ? JsonValue.Create(v.GetValue<string>() + "\u0000x") : v.DeepClone())), JsonType);
        yield return (Encoding.UTF8.GetBytes(ReplaceLeaves(valid, v => v.GetValueKind() == System.Text.Json.JsonValueKind.String ? JsonValue.Create("\u0000") : v.DeepClone())), JsonType);
        yield return (Encoding.UTF8.GetBytes(valid.Replace("\":\"", "\":\"\\ud800", StringComparison.Ordinal)), JsonType);
        yield return (Encoding.UTF8.GetBytes(ReplaceLeaves(valid, _ => null)), JsonType);
        yield return (Encoding.UTF8.GetBytes(ReplaceLeaves(valid, v => new JsonArray(v.DeepClone()))), JsonType);
        yield return (Encoding.UTF8.GetBytes(ReplaceLeaves(valid, v => new JsonObject { ["x"] = v.DeepClone() })), JsonType);

        // Structure: deep nesting, duplicate keys, invalid UTF-8, a big string.
        yield return (Encoding.UTF8.GetBytes(new string('[', 5000) + new string(']', 5000)), JsonType);
        yield return (Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("{\"a\":", 500)) + "1" + new string('}', 500)), JsonType);
        if (valid.StartsWith('{') && valid.Length > 2)
        {
            yield return (Encoding.UTF8.GetBytes("{\"model\":1," + valid[1..^1] + ",\"model\":\"x\",\"token\":[]}"), JsonType);
        }

        yield return ([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0xc3, 0x28, 0x7d], JsonType);
        yield return (Encoding.UTF8.GetBytes(ReplaceLeaves(valid, v => v.GetValueKind() == System.Text.Json.JsonValueKind.String ? JsonValue.Create(new string('x', 300_000)) : v.DeepClone())), JsonType);
    }

    /// <summary>A request with a method the route does not accept.</summary>
    public HostileRequest WrongMethod(SweptRoute route, string method) =>
        new(method, route.Path(_ => ParameterValues[0]), "{}"u8.ToArray(), JsonType, Credentials[1], route.Pattern);

    /// <summary>Random requests to the routes: method, parameters, query, body, content type and credentials drawn independently.</summary>
    public Gen<HostileRequest> Generated(IReadOnlyList<SweptRoute> routes)
    {
        var route = Gen.Int[0, routes.Count - 1].Select(i => routes[i]);
        var contentType = Gen.Frequency((6, Gen.Const<string?>(JsonType)), (1, Gen.OneOf<string?>("text/plain", "application/x-www-form-urlencoded", null, "application/cbor")));
        var headers = Gen.Frequency(
            (3, Gen.Int[0, Credentials.Count - 1].Select(i => Credentials[i])),
            (1, Tokens.Select(t => new[] { ("X-Cashu", t) })),
            (1, Tokens.Select(t => new[] { ("Authorization", "Bearer " + t) })));
        var query = Gen.Frequency((4, Gen.Const("")), (1, Gen.OneOf(BadQueries)));
        return Gen.Select(route, Gen.Int, Gen.Int[0, ParameterValues.Count - 1], query, contentType, headers, Gen.Int).SelectMany(args =>
        {
            var (r, methodPick, parameter, q, type, h, _) = args;
            var methods = r.SweptMethods;
            var method = methods[Math.Abs(methodPick % methods.Count)];
            var body = ValidBodies.TryGetValue(r.Pattern, out var valid) ? Gen.OneOf(valid).SelectMany(HostileInput.JsonBodies) : HostileInput.Json.Select(j => j?.ToJsonString() ?? "null");
            return body.Select(b => new HostileRequest(method, r.Path(_ => ParameterValues[parameter]) + q, Encoding.UTF8.GetBytes(b), type, h, r.Pattern));
        });
    }

    /// <summary>The JSON text with every leaf value replaced (a body that is not JSON comes back as it is).</summary>
    private static string ReplaceLeaves(string json, Func<JsonValue, JsonNode?> replace)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json);
        }
        catch (System.Text.Json.JsonException)
        {
            return json;
        }

        JsonNode? Walk(JsonNode? node) => node switch
        {
            JsonObject o => new JsonObject(o.Select(kv => KeyValuePair.Create(kv.Key, Walk(kv.Value)))),
            JsonArray a => new JsonArray([.. a.Select(Walk)]),
            JsonValue v => replace(v),
            _ => null,
        };

        return Walk(root)?.ToJsonString() ?? "null";
    }
}
