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
/// <param name="ValidBodies">A well-formed body for a route pattern, when known, for hostile variations on it.</param>
/// <param name="Tokens">Forged and mutated Cashu tokens.</param>
public sealed record HostileRequests(
    IReadOnlyList<string> ParameterValues,
    IReadOnlyList<(string Name, string Value)[]> Credentials,
    IReadOnlyDictionary<string, string> ValidBodies,
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

    /// <summary>Every fixed request for one route and method; parameters rotate through <see cref="ParameterValues"/>.</summary>
    public IEnumerable<HostileRequest> Fixed(SweptRoute route, string method)
    {
        var valid = ValidBodies.GetValueOrDefault(route.Pattern) ?? """{"model":"llama3","token":"cashuB","amount":1,"id":"x"}""";
        var validBytes = Encoding.UTF8.GetBytes(valid);
        var n = 0;
        string Path(string query = "")
        {
            var turn = n++;
            return route.Path(_ => ParameterValues[turn % ParameterValues.Count]) + query;
        }

        HostileRequest Make(byte[]? body, string? contentType = JsonType, string query = "", int credentials = 0) =>
            new(method, Path(query), body, body is null ? null : contentType, Credentials[credentials % Credentials.Count]);

        // Every parameter value, every credential, every query: no body.
        if (route.Parameters.Count > 0)
        {
            foreach (var value in ParameterValues)
            {
                yield return new(method, route.Path(_ => value), null, null, []);
            }
        }

        for (var c = 0; c < Credentials.Count; c++)
        {
            yield return Make(null, credentials: c);
            yield return Make(validBytes, credentials: c);
        }

        foreach (var query in BadQueries)
        {
            yield return Make(null, query: query, credentials: 1);
        }

        // Bodies: empty, invalid, truncated, wrong content types, wrong kinds of JSON.
        yield return Make([]);
        yield return Make("{"u8.ToArray());
        yield return Make("{\"model\": "u8.ToArray());
        yield return Make(validBytes[..(validBytes.Length / 2)]);
        yield return Make(validBytes[..^1]);
        yield return Make(validBytes, "text/plain");
        yield return Make(validBytes, "application/x-www-form-urlencoded");
        yield return Make("token=cashuBxyz&amount=-1&x=%ff"u8.ToArray(), "application/x-www-form-urlencoded", credentials: 2);
        yield return Make("--b\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\nx\r\n--b--\r\n"u8.ToArray(), "multipart/form-data; boundary=b");
        yield return Make(validBytes, "application/json; charset=utf-16");
        yield return Make(validBytes, "application/json; charset=\"");
        yield return Make(validBytes, "garbage/;;;");
        yield return Make(validBytes, null);
        foreach (var kind in WrongKinds)
        {
            yield return Make(Encoding.UTF8.GetBytes(kind), credentials: 2);
        }

        // Numbers: every number of the valid body made huge, negative, fractional; every string made a number and null.
        foreach (var number in new[] { "18446744073709551616", "-1", "-9223372036854775808", "9223372036854775807", "1e400", "0.5", "-0", "1E+2" })
        {
            yield return Make(Encoding.UTF8.GetBytes(ReplaceLeaves(valid, v => v.GetValueKind() == System.Text.Json.JsonValueKind.Number ? JsonNode.Parse(number) : v.DeepClone())), credentials: 2);
        }

        yield return Make(Encoding.UTF8.GetBytes(ReplaceLeaves(valid, v => v.GetValueKind() == System.Text.Json.JsonValueKind.String ? JsonValue.Create(-1) : v.DeepClone())), credentials: 2);
        yield return Make(Encoding.UTF8.GetBytes(ReplaceLeaves(valid, _ => null)), credentials: 2);
        yield return Make(Encoding.UTF8.GetBytes(ReplaceLeaves(valid, v => new JsonArray(v.DeepClone()))), credentials: 2);
        yield return Make(Encoding.UTF8.GetBytes(ReplaceLeaves(valid, v => new JsonObject { ["x"] = v.DeepClone() })), credentials: 2);

        // Structure: deep nesting, duplicate keys, invalid UTF-8, a big string.
        yield return Make(Encoding.UTF8.GetBytes(new string('[', 5000) + new string(']', 5000)));
        yield return Make(Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("{\"a\":", 500)) + "1" + new string('}', 500)));
        if (valid.StartsWith('{') && valid.Length > 2)
        {
            yield return Make(Encoding.UTF8.GetBytes("{\"model\":1," + valid[1..^1] + ",\"model\":\"x\",\"token\":[]}"), credentials: 2);
        }

        yield return Make([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0xc3, 0x28, 0x7d]);
        yield return Make(Encoding.UTF8.GetBytes(ReplaceLeaves(valid, v => v.GetValueKind() == System.Text.Json.JsonValueKind.String ? JsonValue.Create(new string('x', 300_000)) : v.DeepClone())), credentials: 2);
    }

    /// <summary>A request with a method the route does not accept.</summary>
    public HostileRequest WrongMethod(SweptRoute route, string method) =>
        new(method, route.Path(_ => ParameterValues[0]), "{}"u8.ToArray(), JsonType, Credentials[1]);

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
            var body = ValidBodies.TryGetValue(r.Pattern, out var valid) ? HostileInput.JsonBodies(valid) : HostileInput.Json.Select(j => j?.ToJsonString() ?? "null");
            return body.Select(b => new HostileRequest(method, r.Path(_ => ParameterValues[parameter]) + q, Encoding.UTF8.GetBytes(b), type, h));
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
