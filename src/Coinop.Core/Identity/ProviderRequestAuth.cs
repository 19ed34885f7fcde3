using System.Globalization;
using System.Text;

namespace Coinop.Core.Identity;

/// <summary>
/// Signed HTTP requests a provider makes to a market about its money (earnings, payouts). The provider signs, with
/// its Ed25519 identity key, a payload that names this purpose (so no other signature of that key, such as a
/// handshake, can stand in for it), the market, the method and path, the amount, a timestamp and a fresh nonce.
/// The market refuses a stale timestamp and a nonce it has seen before.
/// </summary>
public static class ProviderRequestAuth
{
    public const string KeyHeader = "X-Coinop-Provider-Key";
    public const string TimestampHeader = "X-Coinop-Timestamp";
    public const string NonceHeader = "X-Coinop-Nonce";
    public const string SignatureHeader = "X-Coinop-Signature";

    private static readonly byte[] Domain = Encoding.ASCII.GetBytes("coinop/provider-request/v1\0");

    /// <summary>
    /// The bytes to sign: the domain tag, then the fields separated by NUL bytes. <paramref name="amountSat"/> is
    /// null when the request names no amount (earnings, or a payout of everything owed).
    /// </summary>
    public static byte[] SigningPayload(string marketId, string method, string path, long? amountSat, long timestampMs, string nonce)
    {
        if (!IsValidNonce(nonce))
        {
            throw new ArgumentException("the nonce must be 32 to 64 lowercase hex characters", nameof(nonce));
        }

        var fields = string.Join('\0',
            marketId,
            method.ToUpperInvariant(),
            path,
            amountSat?.ToString(CultureInfo.InvariantCulture) ?? "",
            timestampMs.ToString(CultureInfo.InvariantCulture),
            nonce);
        return [.. Domain, .. Encoding.UTF8.GetBytes(fields)];
    }

    /// <summary>Nonces are 16 to 32 random bytes in lowercase hex: no separator can hide in one.</summary>
    public static bool IsValidNonce(string? nonce) =>
        nonce is { Length: >= 32 and <= 64 } && nonce.All(ch => ch is (>= '0' and <= '9') or (>= 'a' and <= 'f'));
}
