using System.Security.Cryptography;
using System.Text;
using Coinop.Core.Identity;
using Coinop.Ecash.Tokens;
using Coinop.Storage.Ledger;

namespace Coinop.Market.Payments;

/// <summary>
/// The keys balances are filed under. Keys are never stored: a balance account is named by a hash. An API key is
/// hashed as it is; a token by its proofs' secrets (sorted), so the same ecash names the same balance however the
/// token was encoded (V3 or V4, padded or not).
/// </summary>
public static class PaymentKeys
{
    public const string ApiKeyPrefix = "sk-";

    /// <summary>A new API key: 160 random bits.</summary>
    public static string NewApiKey() => ApiKeyPrefix + Base32.EncodeLower(RandomNumberGenerator.GetBytes(20));

    public static string ApiKeyAccount(string apiKey) => LedgerAccounts.Balance("k" + Hash("coinop/api-key/v1", apiKey));

    /// <summary>The id of a token's ecash: what its balance account and its foreign redemption are keyed by.</summary>
    public static string TokenKey(Token token) =>
        "t" + Hash("coinop/token-key/v1", string.Join('\n', token.Proofs.Select(p => p.Secret).Order(StringComparer.Ordinal)));

    public static string TokenAccount(string tokenKey) => LedgerAccounts.Balance(tokenKey);

    /// <summary>The token key a balance account is filed under, when a token's (null for an API key's balance).</summary>
    public static string? TokenKeyOf(string account) =>
        account.StartsWith(LedgerAccounts.Balance("t"), StringComparison.Ordinal) ? account[LedgerAccounts.Balance("").Length..] : null;

    private static string Hash(string domain, string value) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(domain + "\0" + value)));
}
