using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Coinop.Ecash.MintApi;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Coinop.Market.Mint;

/// <summary>
/// NUT-17 WebSocket subscriptions at <c>/mint/v1/ws</c> (JSON-RPC 2.0): <c>bolt11_mint_quote</c>,
/// <c>bolt11_melt_quote</c> and <c>proof_state</c>. A subscription first gets the current state of each object, then
/// every change. Each connection looks at what it watches every <see cref="MintOptions.SubscriptionPollInterval"/> and
/// sends what changed: the store is the truth every market node shares (a quote paid through another node, a proof
/// spent anywhere), so no broadcast between nodes is needed. A connection watches at most
/// <see cref="MaxWatched"/> objects in at most <see cref="MintOptions.SubscriptionsPerConnection"/> subscriptions and
/// sends messages of at most <see cref="MaxMessageBytes"/>, and a client holds at most
/// <see cref="MintOptions.SubscriptionConnectionsPerClient"/> connections: a hostile wallet cannot make its sockets cost
/// more than that. Past a cap the wallet gets a JSON-RPC error (code <see cref="LimitExceeded"/>) saying which.
/// </summary>
public sealed partial class MintSubscriptions(Minting minting, Melting melting, ProofStates proofStates, IOptions<MintOptions> options, TimeProvider time, ILogger<MintSubscriptions> logger)
{
    public const int MaxWatched = 100;
    public const int MaxMessageBytes = 64 * 1024;
    public static readonly string[] Kinds = ["bolt11_mint_quote", "bolt11_melt_quote", "proof_state"];

    private const int ParseError = -32700;
    private const int InvalidRequest = -32600;
    private const int MethodNotFound = -32601;
    private const int InvalidParams = -32602;

    /// <summary>A JSON-RPC server error (the range -32000 to -32099 is the implementation's): a per-client or per-connection cap.</summary>
    public const int LimitExceeded = -32000;

    private readonly ClientConnections _clients = new();

    public async Task HandleAsync(HttpContext context)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            await context.Response.WriteAsJsonAsync(new ErrorResponse("this is the NUT-17 WebSocket endpoint: connect with a WebSocket", CashuErrorCode.BadRequest));
            return;
        }

        var client = ClientConnections.ClientOf(context.Connection.RemoteIpAddress);
        var maxConnections = options.Value.SubscriptionConnectionsPerClient;
        if (!_clients.TryOpen(client, maxConnections))
        {
            // Accepted only to say why in the protocol's own shape, then closed: it never watches anything.
            using var refused = await context.WebSockets.AcceptWebSocketAsync();
            using var once = new Connection(refused);
            LogTooManyConnections(logger, client, maxConnections);
            try
            {
                await once.SendAsync(Error(null, LimitExceeded, $"too many connections from this client: at most {maxConnections} connections at once"), context.RequestAborted);
                await refused.CloseAsync(WebSocketCloseStatus.PolicyViolation, "too many connections from this client", context.RequestAborted);
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
            {
            }

            return;
        }

        try
        {
            await ServeAsync(context);
        }
        finally
        {
            _clients.Close(client);
        }
    }

    private async Task ServeAsync(HttpContext context)
    {
        using var socket = await context.WebSockets.AcceptWebSocketAsync();
        using var connection = new Connection(socket);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        var watching = WatchAsync(connection, stop.Token);
        try
        {
            await ReceiveAsync(connection, stop.Token);
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
        {
            // The wallet went away.
        }
        finally
        {
            await stop.CancelAsync();
            try
            {
                await watching;
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    private async Task ReceiveAsync(Connection connection, CancellationToken cancellationToken)
    {
        var buffer = new byte[MaxMessageBytes];
        while (connection.Socket.State == WebSocketState.Open)
        {
            var length = 0;
            ValueWebSocketReceiveResult result;
            do
            {
                if (length == buffer.Length)
                {
                    await connection.Socket.CloseAsync(WebSocketCloseStatus.MessageTooBig, $"messages are at most {MaxMessageBytes} bytes", cancellationToken);
                    return;
                }

                result = await connection.Socket.ReceiveAsync(buffer.AsMemory(length), cancellationToken);
                length += result.Count;
            }
            while (!result.EndOfMessage);

            if (result.MessageType == WebSocketMessageType.Close)
            {
                await connection.Socket.CloseAsync(WebSocketCloseStatus.NormalClosure, null, cancellationToken);
                return;
            }

            await HandleMessageAsync(connection, buffer.AsMemory(0, length), cancellationToken);
        }
    }

    private async Task HandleMessageAsync(Connection connection, ReadOnlyMemory<byte> message, CancellationToken cancellationToken)
    {
        JsonObject request;
        try
        {
            request = JsonNode.Parse(message.Span) as JsonObject ?? throw new JsonException("not an object");
        }
        catch (JsonException)
        {
            await connection.SendAsync(Error(null, ParseError, "the message is not a JSON object"), cancellationToken);
            return;
        }

        var id = request["id"]?.DeepClone();
        var method = request["method"] is JsonValue m && m.TryGetValue<string>(out var s) ? s : null;
        var parameters = request["params"] as JsonObject;
        if (method is null || parameters is null)
        {
            await connection.SendAsync(Error(id, InvalidRequest, "a request needs method and params"), cancellationToken);
            return;
        }

        var subId = parameters["subId"] is JsonValue v && v.TryGetValue<string>(out var sid) && sid.Length is > 0 and <= 128 ? sid : null;
        if (subId is null)
        {
            await connection.SendAsync(Error(id, InvalidParams, "params.subId must be a string of 1 to 128 characters"), cancellationToken);
            return;
        }

        switch (method)
        {
            case "subscribe":
                await SubscribeAsync(connection, id, subId, parameters, cancellationToken);
                break;
            case "unsubscribe":
                bool removed;
                lock (connection.Subscriptions)
                {
                    removed = connection.Subscriptions.Remove(subId);
                }

                await connection.SendAsync(removed ? Ok(id, subId) : Error(id, InvalidParams, $"no subscription {subId}"), cancellationToken);
                break;
            default:
                await connection.SendAsync(Error(id, MethodNotFound, $"unknown method '{Clip(method)}': use subscribe or unsubscribe"), cancellationToken);
                break;
        }
    }

    private async Task SubscribeAsync(Connection connection, JsonNode? id, string subId, JsonObject parameters, CancellationToken cancellationToken)
    {
        var kind = parameters["kind"] is JsonValue k && k.TryGetValue<string>(out var ks) ? ks : "";
        if (!Kinds.Contains(kind))
        {
            await connection.SendAsync(Error(id, InvalidParams, $"kind '{Clip(kind)}' is not supported: {string.Join(", ", Kinds)}"), cancellationToken);
            return;
        }

        var filters = (parameters["filters"] as JsonArray)?.Select(f => f is JsonValue fv && fv.TryGetValue<string>(out var fs) ? fs : null).ToList();
        if (filters is null || filters.Count == 0 || filters.Any(f => f is null or { Length: > 256 }))
        {
            await connection.SendAsync(Error(id, InvalidParams, "filters must be a non-empty array of quote ids or Ys"), cancellationToken);
            return;
        }

        var maxSubscriptions = options.Value.SubscriptionsPerConnection;
        bool full;
        lock (connection.Subscriptions)
        {
            full = !connection.Subscriptions.ContainsKey(subId) && connection.Subscriptions.Count >= maxSubscriptions;
            if (connection.Subscriptions.ContainsKey(subId))
            {
                filters = null;
            }
            else if (connection.Subscriptions.Values.Sum(x => x.Filters.Count) + filters.Count > MaxWatched)
            {
                filters = [];
            }
        }

        if (full)
        {
            await connection.SendAsync(Error(id, LimitExceeded,
                $"a connection holds at most {maxSubscriptions} subscriptions: unsubscribe one first, or watch several objects in one"), cancellationToken);
            return;
        }

        if (filters is not { Count: > 0 })
        {
            await connection.SendAsync(Error(id, InvalidParams, filters is null
                ? $"subscription {subId} exists already"
                : $"a connection watches at most {MaxWatched} objects"), cancellationToken);
            return;
        }

        var subscription = new Subscription(subId, kind, [.. filters.Distinct(StringComparer.Ordinal)!]);
        IReadOnlyList<(string Filter, JsonNode Payload)> current;
        try
        {
            current = await StatesAsync(subscription, cancellationToken);
        }
        catch (CashuException ex)
        {
            await connection.SendAsync(Error(id, InvalidParams, ex.Detail), cancellationToken);
            return;
        }

        // The answer, then the current state of each object, then (from the watch loop) every change.
        await connection.SendAsync(Ok(id, subId), cancellationToken);
        foreach (var (filter, payload) in current)
        {
            subscription.Last[filter] = payload.ToJsonString();
            await connection.SendAsync(Notification(subId, payload), cancellationToken);
        }

        lock (connection.Subscriptions)
        {
            connection.Subscriptions[subId] = subscription;
        }
    }

    private async Task WatchAsync(Connection connection, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(options.Value.SubscriptionPollInterval, time);
        while (await timer.WaitForNextTickAsync(cancellationToken))
        {
            Subscription[] subscriptions;
            lock (connection.Subscriptions)
            {
                subscriptions = [.. connection.Subscriptions.Values];
            }

            foreach (var subscription in subscriptions)
            {
                IReadOnlyList<(string Filter, JsonNode Payload)> states;
                try
                {
                    states = await StatesAsync(subscription, cancellationToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogWatchFailed(logger, subscription.Kind, ex);
                    continue; // asked again on the next tick
                }

                foreach (var (filter, payload) in states)
                {
                    var json = payload.ToJsonString();
                    if (subscription.Last.GetValueOrDefault(filter) != json)
                    {
                        subscription.Last[filter] = json;
                        await connection.SendAsync(Notification(subscription.SubId, payload), cancellationToken);
                    }
                }
            }
        }
    }

    /// <summary>The current payload of each object a subscription watches; an unknown quote or a malformed Y is a <see cref="CashuException"/>.</summary>
    private async Task<IReadOnlyList<(string Filter, JsonNode Payload)>> StatesAsync(Subscription subscription, CancellationToken cancellationToken)
    {
        var states = new List<(string, JsonNode)>();
        switch (subscription.Kind)
        {
            case "bolt11_mint_quote":
                foreach (var quote in subscription.Filters)
                {
                    states.Add((quote, Node(await minting.GetMintQuoteAsync(quote, cancellationToken))));
                }

                break;
            case "bolt11_melt_quote":
                foreach (var quote in subscription.Filters)
                {
                    states.Add((quote, Node(await melting.GetMeltQuoteAsync(quote, cancellationToken))));
                }

                break;
            default:
                var checkedStates = await proofStates.CheckStateAsync(new CheckStateRequest(subscription.Filters), cancellationToken);
                states.AddRange(checkedStates.States.Select(s => (s.Y, Node(s))));
                break;
        }

        return states;
    }

    private static JsonNode Node<T>(T payload) => JsonSerializer.SerializeToNode(payload, MintEndpoints.Json)!;

    private static JsonObject Ok(JsonNode? id, string subId) => new()
    {
        ["jsonrpc"] = "2.0",
        ["result"] = new JsonObject { ["status"] = "OK", ["subId"] = subId },
        ["id"] = id?.DeepClone(),
    };

    private static JsonObject Error(JsonNode? id, int code, string message) => new()
    {
        ["jsonrpc"] = "2.0",
        ["error"] = new JsonObject { ["code"] = code, ["message"] = message },
        ["id"] = id?.DeepClone(),
    };

    private static JsonObject Notification(string subId, JsonNode payload) => new()
    {
        ["jsonrpc"] = "2.0",
        ["method"] = "subscribe",
        ["params"] = new JsonObject { ["subId"] = subId, ["payload"] = payload.DeepClone() },
    };

    private static string Clip(string s) => s.Length > 40 ? s[..40] + "…" : s;

    private sealed class Subscription(string subId, string kind, IReadOnlyList<string> filters)
    {
        public string SubId { get; } = subId;

        public string Kind { get; } = kind;

        public IReadOnlyList<string> Filters { get; } = filters;

        /// <summary>The last payload sent per object (only the watch loop writes it once the subscription is live).</summary>
        public Dictionary<string, string> Last { get; } = new(StringComparer.Ordinal);
    }

    private sealed class Connection(WebSocket socket) : IDisposable
    {
        private readonly SemaphoreSlim _send = new(1, 1);

        public WebSocket Socket { get; } = socket;

        public Dictionary<string, Subscription> Subscriptions { get; } = new(StringComparer.Ordinal);

        public async Task SendAsync(JsonObject message, CancellationToken cancellationToken)
        {
            var bytes = Encoding.UTF8.GetBytes(message.ToJsonString());
            await _send.WaitAsync(cancellationToken);
            try
            {
                await Socket.SendAsync(bytes, WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
            }
            finally
            {
                _send.Release();
            }
        }

        public void Dispose() => _send.Dispose();
    }
}
