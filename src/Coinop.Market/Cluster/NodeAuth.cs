using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Coinop.Storage.Meta;
using Microsoft.AspNetCore.Http;

namespace Coinop.Market.Cluster;

/// <summary>
/// Authenticates the node-to-node channel with a secret only the nodes know: 32 random bytes kept in the shared store
/// (created by the first node), never sent anywhere. Each internal request carries the sending node's id, a timestamp and
/// an HMAC-SHA256 over them, the method, the path and the body's hash; the receiver recomputes it, refuses a timestamp
/// outside ±<see cref="Window"/> and a signature it has already accepted (a replay). Consumer credentials (API keys,
/// tokens, the admin token) mean nothing here.
/// </summary>
public sealed class NodeAuth(IMarketMetaStore meta, TimeProvider time)
{
    public const string NodeHeader = "X-Coinop-Node";
    public const string TimeHeader = "X-Coinop-Node-Time";
    public const string SignatureHeader = "X-Coinop-Node-Signature";
    public static readonly TimeSpan Window = TimeSpan.FromSeconds(60);
    private const string MetaKey = "node_secret";
    private readonly ConcurrentDictionary<string, long> _seen = new(StringComparer.Ordinal);
    private byte[]? _key;
    private long _forgotAt;

    public async Task LoadAsync(CancellationToken cancellationToken)
    {
        var secret = await meta.GetOrAddAsync(MetaKey, Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), cancellationToken);
        _key = Convert.FromBase64String(secret);
    }

    /// <summary>The three headers for a request from <paramref name="nodeId"/>.</summary>
    public IEnumerable<KeyValuePair<string, string>> Sign(string nodeId, string method, string path, ReadOnlySpan<byte> body)
    {
        var at = time.GetUtcNow().ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture);
        return
        [
            new(NodeHeader, nodeId),
            new(TimeHeader, at),
            new(SignatureHeader, Convert.ToBase64String(Mac(nodeId, at, method, path, body))),
        ];
    }

    /// <summary>The sending node's id when the request is signed with the market's node secret, fresh and not replayed; else null.</summary>
    public string? Verify(HttpRequest request, ReadOnlySpan<byte> body)
    {
        if (_key is null
            || request.Headers[NodeHeader].ToString() is not { Length: > 0 and <= 64 } nodeId
            || request.Headers[TimeHeader].ToString() is not { Length: > 0 and <= 20 } at
            || !long.TryParse(at, NumberStyles.None, CultureInfo.InvariantCulture, out var atMs)
            || request.Headers[SignatureHeader].ToString() is not { Length: > 0 and <= 64 } signature)
        {
            return null;
        }

        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        if (Math.Abs(now - atMs) > (long)Window.TotalMilliseconds)
        {
            return null;
        }

        Span<byte> given = stackalloc byte[48];
        if (!Convert.TryFromBase64String(signature, given, out var length) || length != 32
            || !CryptographicOperations.FixedTimeEquals(given[..length], Mac(nodeId, at, request.Method, request.Path.Value ?? "", body)))
        {
            return null;
        }

        // Remembered by the MAC's bytes, not its text: base64 spells the same bytes many ways (whitespace, unused low bits).
        Forget(now);
        return _seen.TryAdd(Convert.ToHexString(given[..length]), atMs + (long)Window.TotalMilliseconds) ? nodeId : null;
    }

    private byte[] Mac(string nodeId, string at, string method, string path, ReadOnlySpan<byte> body)
    {
        Span<byte> bodyHash = stackalloc byte[32];
        SHA256.HashData(body, bodyHash);
        var text = $"coinop/node/v1\n{method}\n{path}\n{nodeId}\n{at}\n{Convert.ToHexStringLower(bodyHash)}";
        return HMACSHA256.HashData(_key ?? throw new InvalidOperationException("the node secret is not loaded yet"), Encoding.UTF8.GetBytes(text));
    }

    /// <summary>Drops remembered signatures once their timestamps are outside the window (they would be refused anyway); at most once a second.</summary>
    private void Forget(long now)
    {
        var last = Interlocked.Read(ref _forgotAt);
        if (now - last < 1000 || Interlocked.CompareExchange(ref _forgotAt, now, last) != last)
        {
            return;
        }

        foreach (var (signature, until) in _seen)
        {
            if (until < now)
            {
                _seen.TryRemove(signature, out _);
            }
        }
    }
}
