using System.Security.Cryptography;
using System.Text;

namespace Coinop.Core.Identity;

/// <summary>The provider handshake's signed payload and the id derived from a provider's key.</summary>
public static class ProviderAuth
{
    public const int ProtocolVersion = 1;
    public const int NonceBytes = 32;

    private static readonly byte[] Domain = Encoding.ASCII.GetBytes("coinop/provider-auth/v1\0");

    /// <summary>
    /// The bytes a provider signs: a fixed domain tag, the market id and the nonce. The domain tag keeps the
    /// signature from being valid for any other message; the market id binds it to one market.
    /// </summary>
    public static byte[] SigningPayload(string marketId, ReadOnlySpan<byte> nonce)
    {
        var market = Encoding.UTF8.GetBytes(marketId);
        var payload = new byte[Domain.Length + market.Length + 1 + nonce.Length];
        Domain.CopyTo(payload, 0);
        market.CopyTo(payload, Domain.Length);
        payload[Domain.Length + market.Length] = 0;
        nonce.CopyTo(payload.AsSpan(Domain.Length + market.Length + 1));
        return payload;
    }

    /// <summary>A provider id: "p" followed by 20 lowercase base32 characters of SHA-256 of the public key.</summary>
    public static string ProviderIdFor(ReadOnlySpan<byte> publicKey)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(publicKey, hash);
        return "p" + Base32.EncodeLower(hash[..12])[..20];
    }
}

/// <summary>RFC 4648 base32 without padding, lowercase (ids and codes).</summary>
public static class Base32
{
    private const string Alphabet = "abcdefghijklmnopqrstuvwxyz234567";

    public static string EncodeLower(ReadOnlySpan<byte> data)
    {
        var sb = new StringBuilder((data.Length * 8 + 4) / 5);
        int buffer = 0, bits = 0;
        foreach (var b in data)
        {
            buffer = (buffer << 8) | b;
            bits += 8;
            while (bits >= 5)
            {
                sb.Append(Alphabet[(buffer >> (bits - 5)) & 31]);
                bits -= 5;
            }
        }

        if (bits > 0)
        {
            sb.Append(Alphabet[(buffer << (5 - bits)) & 31]);
        }

        return sb.ToString();
    }
}
