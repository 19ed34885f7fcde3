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
/// more than that. Past a cap the wallet gets a JSON-RPC error (code <see cref="LimitExceeded"/>) saying which. A
/// message that takes longer than <see cref="MintOptions.SubscriptionSendTimeout"/> to go out (a wallet that stopped
/// reading) ends the connection, so a slow wallet holds one message, not a queue; a close the market starts waits as
/// long for the wallet's close, then the connection ends anyway. Requests are read by <see cref="SubscriptionRequest"/>.
/// </summary>
public sealed partial class MintSubscriptions(Minting minting, Melting melting, ProofStates proofStates, IOptions<MintOptions> options, TimeProvider time, ILogger<MintSubscriptions> logger)
{
    public const int MaxWatched = 100;
    public const int MaxMessageBytes = 64 * 1024;
    public static readonly string[] Kinds = ["bolt11_mint_quote", "bolt11_melt_quote", "proof_state"];

    private const int InvalidParams = SubscriptionRequest.InvalidParams;

    /// <summary>A JSON-RPC server error (the range -32000 to -32099 is the implementation's): a per-client or per-connection cap.</summary>
    public const int LimitExceeded = SubscriptionRequest.LimitExceeded;

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
            using var once = new Connection(refused, options.Value.SubscriptionSendTimeout, time);
            LogTooManyConnections(logger, client, maxConnections);
            try
            {
                await once.SendAsync(Error(null, LimitExceeded, $"too many connections from this client: at most {maxConnections} connections at once"), context.RequestAborted);
                await once.CloseAsync(WebSocketCloseStatus.PolicyViolation, "too many connections from this client", context.RequestAborted);
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException)
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
        using var connection = new Connection(socket, options.Value.SubscriptionSendTimeout, time);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        var watching = WatchAsync(connection, stop.Token);
        try
        {
            await ReceiveAsync(connection, stop.Token);
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException)
        {
            // The wallet went away, broke the protocol (the socket sent the close saying how), or stopped reading.
        }
        finally
        {
            await stop.CancelAsync();
            try
            {
                await watching;
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or IOException)
            {
                // A notification that could not go out: the wallet is gone either way.
            }

            if (connection.TimedOut)
            {
                LogSlowClient(logger, ClientConnections.ClientOf(context.Connection.RemoteIpAddress), options.Value.SubscriptionSendTimeout);
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
                    await connection.CloseAsync(WebSocketCloseStatus.MessageTooBig, $"messages are at most {MaxMessageBytes} bytes", cancellationToken);
                    return;
                }

                result = await connection.Socket.ReceiveAsync(buffer.AsMemory(length), cancellationToken);
                length += result.Count;
            }
            while (!result.EndOfMessage);

            if (result.MessageType == WebSocketMessageType.Close)
            {
                await connection.CloseAsync(WebSocketCloseStatus.NormalClosure, null, cancellationToken);
                return;
            }

            await HandleMessageAsync(connection, buffer.AsMemory(0, length), cancellationToken);
        }
    }

    private async Task HandleMessageAsync(Connection connection, ReadOnlyMemory<byte> message, CancellationToken cancellationToken)
    {
        var (request, error) = SubscriptionRequest.Parse(message.Span);
        if (request is null)
        {
            await connection.SendAsync(Error(error!.Id, error.Code, error.Message), cancellationToken);
            return;
        }

        if (request.Method == SubscriptionRequest.Subscribe)
        {
            await SubscribeAsync(connection, request, cancellationToken);
            return;
        }

        bool removed;
        lock (connection.Subscriptions)
        {
            removed = connection.Subscriptions.Remove(request.SubId);
        }

        await connection.SendAsync(removed ? Ok(request.Id, request.SubId) : Error(request.Id, InvalidParams, $"no subscription {request.SubId}"), cancellationToken);
    }

    private async Task SubscribeAsync(Connection connection, SubscriptionRequest request, CancellationToken cancellationToken)
    {
        var (id, subId, kind) = (request.Id, request.SubId, request.Kind);
        var maxSubscriptions = options.Value.SubscriptionsPerConnection;
        (int Code, string Message)? refused;
        lock (connection.Subscriptions)
        {
            refused = connection.Subscriptions.ContainsKey(subId) ? (InvalidParams, $"subscription {subId} exists already")
                : connection.Subscriptions.Count >= maxSubscriptions
                    ? (LimitExceeded, $"a connection holds at most {maxSubscriptions} subscriptions: unsubscribe one first, or watch several objects in one")
                : connection.Subscriptions.Values.Sum(x => x.Filters.Count) + request.Filters.Count > MaxWatched
                    ? (LimitExceeded, $"a connection watches at most {MaxWatched} objects")
                : null;
        }

        if (refused is var (code, message))
        {
            await connection.SendAsync(Error(id, code, message), cancellationToken);
            return;
        }

        var subscription = new Subscription(subId, kind, [.. request.Filters.Distinct(StringComparer.Ordinal)]);
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
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The store failed, not the request: say so, and keep the connection.
            LogWatchFailed(logger, kind, ex);
            await connection.SendAsync(Error(id, SubscriptionRequest.InternalError, "the current state could not be read: try again"), cancellationToken);
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

    private sealed class Subscription(string subId, string kind, IReadOnlyList<string> filters)
    {
        public string SubId { get; } = subId;

        public string Kind { get; } = kind;

        public IReadOnlyList<string> Filters { get; } = filters;

        /// <summary>The last payload sent per object (only the watch loop writes it once the subscription is live).</summary>
        public Dictionary<string, string> Last { get; } = new(StringComparer.Ordinal);
    }

    /// <summary>One wallet's socket: what it watches, and sends that go out one at a time, each within the send timeout.</summary>
    private sealed class Connection(WebSocket socket, TimeSpan sendTimeout, TimeProvider time) : IDisposable
    {
        private readonly SemaphoreSlim _send = new(1, 1);

        public WebSocket Socket { get; } = socket;

        public Dictionary<string, Subscription> Subscriptions { get; } = new(StringComparer.Ordinal);

        /// <summary>Whether a send or a close handshake took longer than the send timeout (and so ended the connection).</summary>
        public bool TimedOut { get; private set; }

        public async Task SendAsync(JsonObject message, CancellationToken cancellationToken)
        {
            var bytes = Encoding.UTF8.GetBytes(message.ToJsonString());
            using var timeout = new CancellationTokenSource(sendTimeout, time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
            try
            {
                // The wait for the other sender counts too: it is blocked on the same wallet.
                await _send.WaitAsync(linked.Token);
                try
                {
                    // A cancelled send aborts the socket: the receive loop ends with it.
                    await Socket.SendAsync(bytes, WebSocketMessageType.Text, endOfMessage: true, linked.Token);
                }
                finally
                {
                    _send.Release();
                }
            }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                TimedOut = true;
                Socket.Abort();
                throw;
            }
        }

        /// <summary>Sends a close and waits for the wallet's (so the close frame is not lost to a reset), at most the send timeout.</summary>
        public async Task CloseAsync(WebSocketCloseStatus status, string? description, CancellationToken cancellationToken)
        {
            using var timeout = new CancellationTokenSource(sendTimeout, time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
            try
            {
                await Socket.CloseAsync(status, description, linked.Token);
            }
            catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                TimedOut = true;
                Socket.Abort();
            }
        }

        public void Dispose() => _send.Dispose();
    }
}
