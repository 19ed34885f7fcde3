using System.Text;
using NBitcoin.Secp256k1;
using SHA256 = System.Security.Cryptography.SHA256;

namespace Coinop.Ecash.MintApi;

/// <summary>
/// NUT-20 signed mint quotes: a quote created with a public key is minted only with a BIP-340 Schnorr signature of
/// SHA-256(quote id ‖ B_0 ‖ … ‖ B_n-1) (UTF-8 of the id and of each output's hex) by the matching secret key.
/// </summary>
public static class Nut20
{
    public static byte[] Message(string quoteId, IEnumerable<string> blindedMessages)
    {
        var text = new StringBuilder(quoteId);
        foreach (var b in blindedMessages)
        {
            text.Append(b);
        }

        return Encoding.UTF8.GetBytes(text.ToString());
    }

    /// <summary>True when <paramref name="pubkeyHex"/> is a compressed secp256k1 point (33 bytes hex).</summary>
    public static bool IsValidPubkey(string? pubkeyHex) =>
        pubkeyHex is { Length: 66 } && pubkeyHex.All(char.IsAsciiHexDigit)
        && ECPubKey.TryCreate(Convert.FromHexString(pubkeyHex), Context.Instance, out var compressed, out _) && compressed;

    public static bool Verify(string quoteId, IEnumerable<string> blindedMessages, string pubkeyHex, string? signatureHex)
    {
        if (signatureHex is not { Length: 128 } || !signatureHex.All(char.IsAsciiHexDigit) || !IsValidPubkey(pubkeyHex))
        {
            return false;
        }

        var key = ECPubKey.Create(Convert.FromHexString(pubkeyHex)).ToXOnlyPubKey();
        return SecpSchnorrSignature.TryCreate(Convert.FromHexString(signatureHex), out var signature) && signature is not null
            && key.SigVerifyBIP340(signature, SHA256.HashData(Message(quoteId, blindedMessages)));
    }

    /// <summary>The wallet's side: signs a mint request for a quote made with <paramref name="secretKey"/>'s public key.</summary>
    public static string Sign(string quoteId, IEnumerable<string> blindedMessages, ECPrivKey secretKey) =>
        Convert.ToHexStringLower(secretKey.SignBIP340(SHA256.HashData(Message(quoteId, blindedMessages))).ToBytes());
}
