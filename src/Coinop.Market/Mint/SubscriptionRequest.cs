using System.Text.Json;
using Coinop.Core.Text;
using System.Text.Json.Nodes;

namespace Coinop.Market.Mint;

/// <summary>A JSON-RPC error to answer a NUT-17 message with: its code, what to say, and the request's id (null when it has none we may echo).</summary>
public sealed record SubscriptionError(JsonNode? Id, int Code, string Message);

/// <summary>
/// One NUT-17 request, read strictly from a wallet's message: a JSON-RPC 2.0 object whose <c>jsonrpc</c> is "2.0", whose
/// <c>id</c> is a string, a number or null (any other id is not echoed back), whose <c>method</c> is
/// <c>subscribe</c> or <c>unsubscribe</c> and whose <c>params</c> hold a <c>subId</c> and, to subscribe, a
/// <c>kind</c> and 1 to <see cref="MintSubscriptions.MaxWatched"/> filters. Every string must be valid UTF-16 (no lone
/// surrogate) and no key may repeat. <see cref="Parse"/> never throws: anything else is a <see cref="SubscriptionError"/>.
/// </summary>
public sealed record SubscriptionRequest(JsonNode? Id, string Method, string SubId, string Kind, IReadOnlyList<string> Filters)
{
    public const string Subscribe = "subscribe";
    public const string Unsubscribe = "unsubscribe";

    public const int ParseError = -32700;
    public const int InvalidRequest = -32600;
    public const int MethodNotFound = -32601;
    public const int InvalidParams = -32602;
    public const int InternalError = -32603;

    /// <summary>A JSON-RPC server error (the range -32000 to -32099 is the implementation's): a per-client or per-connection cap.</summary>
    public const int LimitExceeded = -32000;

    public const int MaxSubIdLength = 128;
    public const int MaxFilterLength = 256;

    // Duplicate keys are refused while parsing (JsonObject would throw on them later); a request is shallow.
    private static readonly JsonDocumentOptions Strict = new() { AllowDuplicateProperties = false, MaxDepth = 16 };

    /// <summary>The request in <paramref name="utf8"/>, or the error to answer it with.</summary>
    public static (SubscriptionRequest? Request, SubscriptionError? Error) Parse(ReadOnlySpan<byte> utf8)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(utf8.ToArray(), Strict);
        }
        catch (JsonException)
        {
            return Fail(null, ParseError, "the message is not JSON (or repeats a key, or nests too deep)");
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return Fail(null, InvalidRequest, "a request is one JSON-RPC object (batches are not supported)");
            }

            JsonNode? id = null;
            if (root.TryGetProperty("id", out var idElement))
            {
                switch (idElement.ValueKind)
                {
                    case JsonValueKind.Number:
                        id = JsonValue.Create(idElement.Clone());
                        break;
                    case JsonValueKind.String when TryString(idElement, out var idText):
                        id = idText;
                        break;
                    case JsonValueKind.Null:
                        break;
                    default:
                        return Fail(null, InvalidRequest, "id must be a string, a number or null");
                }
            }

            // Strings are compared once read: ValueEquals, like GetString, throws on an escaped lone surrogate.
            if (!root.TryGetProperty("jsonrpc", out var version) || !TryString(version, out var v) || v != "2.0")
            {
                return Fail(id, InvalidRequest, "jsonrpc must be \"2.0\"");
            }

            if (!root.TryGetProperty("method", out var methodElement) || methodElement.ValueKind != JsonValueKind.String)
            {
                return Fail(id, InvalidRequest, "method must be a string");
            }

            var method = TryString(methodElement, out var m) ? m switch { Subscribe => Subscribe, Unsubscribe => Unsubscribe, _ => null } : null;
            if (method is null)
            {
                return Fail(id, MethodNotFound, $"unknown method '{TextCut.Quote(m, 40)}': use subscribe or unsubscribe");
            }

            if (!root.TryGetProperty("params", out var parameters) || parameters.ValueKind != JsonValueKind.Object)
            {
                return Fail(id, InvalidParams, "params must be an object");
            }

            if (!parameters.TryGetProperty("subId", out var subIdElement) || !TryString(subIdElement, out var subId) || subId.Length is 0 or > MaxSubIdLength)
            {
                return Fail(id, InvalidParams, $"params.subId must be a string of 1 to {MaxSubIdLength} characters");
            }

            if (method == Unsubscribe)
            {
                return (new SubscriptionRequest(id, method, subId, "", []), null);
            }

            if (!parameters.TryGetProperty("kind", out var kindElement) || !TryString(kindElement, out var kind) || !MintSubscriptions.Kinds.Contains(kind))
            {
                var named = TryString(kindElement, out var k) ? $" '{TextCut.Quote(k, 40)}'" : "";
                return Fail(id, InvalidParams, $"kind{named} is not supported: {string.Join(", ", MintSubscriptions.Kinds)}");
            }

            if (!parameters.TryGetProperty("filters", out var filtersElement) || filtersElement.ValueKind != JsonValueKind.Array || filtersElement.GetArrayLength() == 0)
            {
                return Fail(id, InvalidParams, "filters must be a non-empty array of quote ids or Ys");
            }

            if (filtersElement.GetArrayLength() > MintSubscriptions.MaxWatched)
            {
                return Fail(id, LimitExceeded, $"a connection watches at most {MintSubscriptions.MaxWatched} objects");
            }

            var filters = new List<string>(filtersElement.GetArrayLength());
            foreach (var filter in filtersElement.EnumerateArray())
            {
                if (!TryString(filter, out var f) || f.Length is 0 or > MaxFilterLength)
                {
                    return Fail(id, InvalidParams, $"each filter must be a quote id or a Y of 1 to {MaxFilterLength} characters");
                }

                filters.Add(f);
            }

            return (new SubscriptionRequest(id, method, subId, kind, filters), null);
        }
    }

    /// <summary>The string, unless the element is not one or holds an escaped lone surrogate (which <see cref="JsonElement.GetString"/> refuses).</summary>
    private static bool TryString(JsonElement element, out string value)
    {
        value = "";
        if (element.ValueKind != JsonValueKind.String)
        {
            return false;
        }

        try
        {
            value = element.GetString()!;
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    private static (SubscriptionRequest?, SubscriptionError?) Fail(JsonNode? id, int code, string message) => (null, new SubscriptionError(id, code, message));
}
