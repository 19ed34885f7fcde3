using System.Data.Common;
using Coinop.Ecash.MintApi;
using Coinop.Ecash.Tokens;
using Coinop.Market.Mint;
using Coinop.Storage.Ledger;
using Coinop.Storage.Payments;
using Microsoft.Extensions.Options;

namespace Coinop.Market.Payments;

/// <summary>
/// Takes the market's money in: checks a Cashu token, takes it (the proofs are spent at our mint, or swapped at
/// another accepted mint, in the transaction that credits the ledger) and credits its value to a request's hold, a
/// balance, or the token's own balance. What becomes of a hold afterwards is <see cref="RequestHolds"/>; refunds and
/// payouts are <see cref="Payouts"/>; which mint a balance holds is <see cref="PayerMints"/>.
/// </summary>
public sealed class Cashier(
    ILedgerStore ledger,
    IPaymentHoldStore holds,
    CashuMint mint,
    ForeignMints foreign,
    PayerMints payerMints,
    IForeignPaymentStore foreignStore,
    NodeIdentity node,
    IOptions<PaymentsOptions> options,
    PaymentsMetrics metrics,
    RequestHolds requestHolds,
    TimeProvider time)
{
    private readonly PaymentsOptions _options = options.Value;

    /// <summary>Checks a token without any network call: format, unit, mint, amount.</summary>
    public TokenCheck CheckToken(string text)
    {
        text = text.Trim();
        if (!TokenCodec.TryDecode(text, out var token, out var error) || token is null)
        {
            return new TokenCheck(null, CashuErrorCode.BadRequest, "the token is malformed: " + error);
        }

        if (token.Proofs.Count == 0)
        {
            return new TokenCheck(null, CashuErrorCode.BadRequest, "the token holds no proofs");
        }

        if (token.Unit != "sat")
        {
            return new TokenCheck(null, CashuErrorCode.UnitNotSupported, $"the token is in '{token.Unit}'; this market takes sat");
        }

        var mintUrl = Token.NormalizeMintUrl(token.Mint);
        if (!payerMints.AcceptedMints.Contains(mintUrl, StringComparer.OrdinalIgnoreCase))
        {
            return new TokenCheck(null, CashuErrorCode.KeysetUnknown,
                $"this market does not accept ecash of {mintUrl}; it accepts {string.Join(", ", payerMints.AcceptedMints)}");
        }

        if (token.Amount is not { } amount || amount == 0 || amount > (ulong)_options.MaxPaymentSat)
        {
            return new TokenCheck(null, CashuErrorCode.AmountOutOfLimitRange, $"a payment must be between 1 and {_options.MaxPaymentSat} sat");
        }

        return new TokenCheck(new CheckedToken(token, text, PaymentKeys.TokenKey(token), mintUrl, payerMints.IsOurs(mintUrl), (long)amount));
    }

    /// <summary>
    /// Takes a checked token: at our mint its proofs are spent in the transaction that credits the ledger; at another
    /// accepted mint they are swapped first (see <see cref="ForeignMints"/>). Money-moving steps ignore cancellation:
    /// once begun, they finish.
    /// </summary>
    public async Task<TokenAcceptance> AcceptAsync(CheckedToken token, TokenCredit credit, CancellationToken cancellationToken)
    {
        if (credit is CreditBalance target && await payerMints.OtherMintAsync(target.Account, token, cancellationToken) is { } balanceMint)
        {
            return TokenAcceptance.Refuse(CashuErrorCode.KeysetUnknown,
                $"this balance holds ecash of {balanceMint}: it takes only that mint's ecash (its refunds are paid in it)");
        }

        TokenAcceptance outcome;
        if (token.OurMint)
        {
            Token resolved;
            try
            {
                resolved = await mint.ResolveTokenAsync(token.Token, cancellationToken);
            }
            catch (CashuException ex)
            {
                return TokenAcceptance.Refuse(ex.Code, ex.Detail);
            }

            TokenAcceptance? credited = null;
            var redeemed = await mint.RedeemAsync(resolved.Proofs,
                async (c, t, spent, ct) => credited = await CreditAsync(c, t, token.Key, null, checked((long)spent.NetAmount * 1000), credit, ct),
                CancellationToken.None);
            outcome = redeemed.Succeeded ? credited! : TokenAcceptance.Refuse(redeemed.ErrorCode!.Value, redeemed.Detail ?? "the token cannot be redeemed");
        }
        else
        {
            outcome = await foreign.RedeemAsync(token, (c, t, key, mintUrl, msat, ct) => CreditAsync(c, t, key, mintUrl, msat, credit, ct), cancellationToken);
        }

        if (outcome.Outcome is AcceptOutcome.Held or AcceptOutcome.Credited or AcceptOutcome.CreditedToTokenBalance)
        {
            metrics.Received(outcome.CreditedMsat);
        }

        if (outcome.Outcome == AcceptOutcome.Held && credit is CreditHold held)
        {
            requestHolds.Opened(held.RequestId);
        }

        return outcome;
    }

    /// <summary>An account's balance in msat (null when there is no such account).</summary>
    public Task<long?> BalanceAsync(string account, CancellationToken cancellationToken) => ledger.BalanceAsync(account, cancellationToken);

    /// <summary>Resolves this node's foreign redemptions left pending (see <see cref="ForeignMints.RecoverAsync"/>).</summary>
    public Task RecoverForeignAsync(DateTimeOffset before, CancellationToken cancellationToken, string? nodeId = null) =>
        // The request the token paid for is gone: its value goes to the token's own balance.
        foreign.RecoverAsync(before, (c, t, tokenKey, mintUrl, msat, ct) => CreditAsync(c, t, tokenKey, mintUrl, msat, null, ct), cancellationToken, nodeId);

    /// <summary>
    /// Credits a token's value inside the transaction that took it: into a hold when it covers the hold's minimum,
    /// otherwise (or when <paramref name="credit"/> is null) into the token's own balance.
    /// </summary>
    private async Task<TokenAcceptance> CreditAsync(DbConnection c, DbTransaction t, string tokenKey, string? foreignMint, long msat, TokenCredit? credit,
        CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var reference = tokenKey;
        if (credit is CreditBalance target && await ledger.BalanceAsync(c, t, target.Account, cancellationToken) is not null
            && !string.Equals(await payerMints.MintOfAsync(c, t, target.Account, cancellationToken), foreignMint, StringComparison.OrdinalIgnoreCase))
        {
            credit = null; // the balance took another mint's ecash meanwhile: this token's value goes to its own balance
        }

        if (foreignMint is not null)
        {
            // Whatever this token's value becomes is owed back in its mint's ecash: its own balance, or the balance it funds.
            await foreignStore.SetBalanceMintAsync(c, t, credit is CreditBalance b ? b.Account : PaymentKeys.TokenAccount(tokenKey), foreignMint, cancellationToken);
        }

        switch (credit)
        {
            case CreditHold hold when msat >= hold.MinimumMsat && msat > 0:
                var id = hold.RequestId.ToString();
                await ledger.PostAsync(c, t, "payment", reference, [new LedgerTransfer(LedgerAccounts.Received, LedgerAccounts.Holds, msat)], now, cancellationToken);
                await holds.InsertAsync(c, t, new PaymentHold(id, node.NodeId, HoldPayer.Token, PaymentKeys.TokenAccount(tokenKey), msat, HoldState.Held, now),
                    cancellationToken);
                return new TokenAcceptance(AcceptOutcome.Held, msat);
            case CreditBalance balance:
                await ledger.OpenAsync(c, t, balance.Account, now, cancellationToken);
                await ledger.PostAsync(c, t, "payment", reference, [new LedgerTransfer(LedgerAccounts.Received, balance.Account, msat)], now, cancellationToken);
                return new TokenAcceptance(AcceptOutcome.Credited, msat);
            default:
                var account = PaymentKeys.TokenAccount(tokenKey);
                await ledger.OpenAsync(c, t, account, now, cancellationToken);
                await ledger.PostAsync(c, t, "payment", reference, [new LedgerTransfer(LedgerAccounts.Received, account, msat)], now, cancellationToken);
                return new TokenAcceptance(AcceptOutcome.CreditedToTokenBalance, msat);
        }
    }
}
