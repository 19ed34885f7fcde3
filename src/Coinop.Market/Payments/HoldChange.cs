using System.Data.Common;
using Coinop.Ecash.MintApi;
using Coinop.Ecash.Tokens;
using Coinop.Market.Mint;
using Coinop.Storage;
using Coinop.Storage.Ledger;

namespace Coinop.Market.Payments;

/// <summary>
/// The change of holds paid by a token: made in the payer's mint when a hold settles or is released, and collected
/// back into the token's balance when it may never have reached the consumer.
/// </summary>
public sealed class HoldChange(
    Database database,
    ILedgerStore ledger,
    IPaymentHoldStore holds,
    CashuMint mint,
    PayerMints payerMints,
    ForeignChange foreignChange,
    ChangeStock change,
    TimeProvider time)
{
    /// <summary>
    /// Change for a hold, in the mint whose ecash its payer's balance holds: ours from the change stock; another accepted
    /// mint's from the notes its token was swapped into (<see cref="ForeignChange"/>), null when they cannot make it.
    /// </summary>
    internal async Task<string?> MakeAsync(DbConnection c, DbTransaction t, string requestId, string payerAccount, long sats, CancellationToken cancellationToken)
    {
        var token = await payerMints.MintOfAsync(c, t, payerAccount, cancellationToken) is { } other
            ? await foreignChange.TakeAsync(c, t, other, PaymentKeys.TokenKeyOf(payerAccount), sats, requestId, cancellationToken)
            : await change.TakeAsync(c, t, sats, cancellationToken);
        if (token is not null)
        {
            await holds.SetChangeTokenAsync(c, t, requestId, token, cancellationToken);
        }

        return token;
    }

    /// <summary>
    /// Collects into <paramref name="account"/> the change of holds it paid (a token's own balance) that may never have
    /// reached the consumer — a stream left before its end, a response lost with its connection: each change token is
    /// redeemed at our mint in the transaction that credits the balance and marks the change collected, so it is
    /// collected once. Change the consumer did receive and spend cannot be redeemed again: it is only marked. Returns
    /// the msat collected.
    /// </summary>
    public async Task<long> CollectChangeAsync(string account, CancellationToken cancellationToken)
    {
        long collected = 0;
        foreach (var change in await holds.UncollectedChangeAsync(account, cancellationToken))
        {
            RedeemResult? redeemed = null;
            try
            {
                if (TokenCodec.TryDecode(change.Token, out var token, out _) && token is not null && !payerMints.IsOurs(Token.NormalizeMintUrl(token.Mint)))
                {
                    continue; // change in another mint's ecash cannot be taken back without that mint: it stays the consumer's (known gap)
                }

                if (token is not null)
                {
                    redeemed = await mint.RedeemAsync((await mint.ResolveTokenAsync(token, cancellationToken)).Proofs, async (c, t, spent, ct) =>
                    {
                        var now = time.GetUtcNow();
                        if (!await holds.MarkChangeCollectedAsync(c, t, change.RequestId, now, ct))
                        {
                            throw new CashuException(CashuErrorCode.ProofsAlreadySpent, "collected meanwhile");
                        }

                        await ledger.PostAsync(c, t, "collect", change.RequestId,
                            [new LedgerTransfer(LedgerAccounts.Refunded, account, checked((long)spent.NetAmount * 1000))], now, ct);
                    }, CancellationToken.None);
                }
            }
            catch (CashuException)
            {
                // Its keyset is gone from this mint: the change cannot be redeemed here.
            }

            if (redeemed is { Succeeded: true })
            {
                collected += (long)redeemed.NetAmount * 1000;
                continue;
            }

            // Spent by the consumer (it got there after all) or collected meanwhile: nothing to move, only to remember.
            await database.WriteAsync((c, t) => holds.MarkChangeCollectedAsync(c, t, change.RequestId, time.GetUtcNow(), cancellationToken), cancellationToken);
        }

        return collected;
    }
}
