using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;
using Coinop.Ecash.MintApi;

namespace Coinop.Ecash.MintClient;

/// <summary>
/// Waits for a mint quote to leave UNPAID: told over the mint's NUT-17 WebSocket the moment the mint sees its invoice
/// paid, and asking the mint every poll interval in any case (the fallback when the mint has no WebSocket or it
/// drops). Whatever the socket says, the quote the mint answers to a plain GET is what the wallet acts on.
/// </summary>
public static class MintQuoteWaiter
{
    private const int MaxMessageBytes = 256 * 1024;

    public static async Task<MintQuoteResponse> WaitAsync(CashuMintClient client, MintQuoteResponse quote, TimeSpan pollInterval, TimeSpan timeout,
        TimeProvider time, CancellationToken cancellationToken)
    {
        var deadline = time.GetUtcNow() + timeout;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var never = new TaskCompletionSource<bool>().Task;
        var pushed = WatchAsync(client.MintUrl, quote.Quote, stop.Token);
        try
        {
            while (quote.State == MintQuoteState.Unpaid)
            {
                if (time.GetUtcNow() >= deadline)
                {
                    throw new TimeoutException($"the invoice was not paid within {timeout.TotalSeconds:0} s (quote {quote.Quote})");
                }

                var wait = deadline - time.GetUtcNow();
                var tick = Task.Delay(wait < pollInterval ? (wait > TimeSpan.Zero ? wait : TimeSpan.Zero) : pollInterval, time, stop.Token);
                if (await Task.WhenAny(pushed, tick) == pushed)
                {
                    pushed = never; // told (or the socket failed): from here the polling alone
                }

                quote = await client.GetMintQuoteAsync(quote.Quote, cancellationToken);
            }

            return quote;
        }
        finally
        {
            await stop.CancelAsync();
        }
    }

    /// <summary>True once the socket says the quote is no longer UNPAID; false when the mint has no socket or it fails.</summary>
    private static async Task<bool> WatchAsync(string mintUrl, string quoteId, CancellationToken cancellationToken)
    {
        try
        {
            var url = new UriBuilder(mintUrl.TrimEnd('/') + "/v1/ws");
            url.Scheme = url.Scheme == "https" ? "wss" : "ws";
            using var socket = new ClientWebSocket();
            await socket.ConnectAsync(url.Uri, cancellationToken);
            var subscribe = new JsonObject
            {
                ["jsonrpc"] = "2.0",
                ["id"] = 0,
                ["method"] = "subscribe",
                ["params"] = new JsonObject { ["kind"] = "bolt11_mint_quote", ["subId"] = Guid.NewGuid().ToString(), ["filters"] = new JsonArray(quoteId) },
            };
            await socket.SendAsync(Encoding.UTF8.GetBytes(subscribe.ToJsonString()), WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
            var buffer = new byte[MaxMessageBytes];
            while (socket.State == WebSocketState.Open)
            {
                var length = 0;
                ValueWebSocketReceiveResult result;
                do
                {
                    if (length == buffer.Length)
                    {
                        return false;
                    }

                    result = await socket.ReceiveAsync(buffer.AsMemory(length), cancellationToken);
                    length += result.Count;
                }
                while (!result.EndOfMessage);

                if (result.MessageType == WebSocketMessageType.Close)
                {
                    return false;
                }

                var message = JsonNode.Parse(buffer.AsSpan(0, length));
                if (message?["error"] is not null)
                {
                    return false;
                }

                if (message?["params"]?["payload"]?["state"] is JsonValue state && state.TryGetValue<string>(out var s) && s != MintQuoteState.Unpaid)
                {
                    return true;
                }
            }

            return false;
        }
        catch (Exception ex) when (ex is WebSocketException or System.Text.Json.JsonException or HttpRequestException or InvalidOperationException or UriFormatException)
        {
            return false;
        }
    }
}
