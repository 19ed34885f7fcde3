using System.Data.Common;
using Coinop.Ecash.Tokens;
using Coinop.Market.Hosting;
using Coinop.Market.Mint;
using Coinop.Storage.Ledger;
using Coinop.Storage.Payments;

namespace Coinop.Market.Payments;

/// <summary>
/// Which mint's ecash pays here and which mint a balance holds: ours, or another accepted mint's (<c>--accept-mint</c>).
/// A balance funded by another mint's ecash takes only that mint's ecash, and its change and refunds are paid in it.
/// </summary>
public sealed class PayerMints(CashuMint mint, MarketOptions market, ILedgerStore ledger, IForeignPaymentStore foreignStore)
{
    /// <summary>The mints whose ecash pays here: ours first, then <c>--accept-mint</c>.</summary>
    public IReadOnlyList<string> AcceptedMints =>
        [Token.NormalizeMintUrl(mint.MintUrl), .. market.AcceptMints.Select(Token.NormalizeMintUrl).Where(m => !IsOurs(m))];

    /// <summary>Whether this market takes another mint's ecash at all (<c>--accept-mint</c>).</summary>
    public bool AcceptsOtherMints => market.AcceptMints.Count > 0;

    /// <summary>The mint whose ecash a balance holds (and its refunds are paid in): another accepted mint's, or ours.</summary>
    public async Task<string> MintOfBalanceAsync(string account, CancellationToken cancellationToken) =>
        (AcceptsOtherMints ? await foreignStore.BalanceMintAsync(account, cancellationToken) : null) ?? Token.NormalizeMintUrl(mint.MintUrl);

    /// <summary>The other accepted mint whose ecash a balance holds; null for ours (and always, on a market that accepts no other mint).</summary>
    internal async Task<string?> MintOfAsync(DbConnection c, DbTransaction t, string account, CancellationToken cancellationToken) =>
        market.AcceptMints.Count == 0 ? null : await foreignStore.BalanceMintAsync(c, t, account, cancellationToken);

    /// <summary>The mint an existing balance holds ecash of, when the token is of another one (null: it may be credited there).</summary>
    internal async Task<string?> OtherMintAsync(string account, CheckedToken token, CancellationToken cancellationToken)
    {
        if (await ledger.BalanceAsync(account, cancellationToken) is null)
        {
            return null; // a new balance takes the mint of its first token
        }

        var held = market.AcceptMints.Count == 0 ? null : await foreignStore.BalanceMintAsync(account, cancellationToken);
        var ours = Token.NormalizeMintUrl(mint.MintUrl);
        return string.Equals(held ?? ours, token.Mint, StringComparison.OrdinalIgnoreCase) ? null : held ?? ours;
    }

    internal bool IsOurs(string mintUrl) => string.Equals(mintUrl, Token.NormalizeMintUrl(mint.MintUrl), StringComparison.OrdinalIgnoreCase);
}
