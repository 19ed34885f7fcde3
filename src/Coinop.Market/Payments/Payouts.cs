using System.Collections.Concurrent;
using Coinop.Market.Mint;
using Coinop.Storage;
using Coinop.Storage.Ledger;
using Coinop.Storage.Payments;

namespace Coinop.Market.Payments;

/// <summary>A balance refund. <see cref="ChangeUnavailable"/> names the mint whose ecash it could not be paid in (nothing moved).</summary>
public sealed record BalanceRefund(long AmountSat, string? Token, long RemainingMsat, string? ChangeUnavailable = null);

public enum PayoutStatus
{
    Paid,
    NothingOwed,
    MoreThanOwed,
    Replayed,

    /// <summary>Another payout for the same provider was in flight (or committed under us): nothing was paid.</summary>
    Conflict,
}

public sealed record PayoutResult(PayoutStatus Status, long AmountSat = 0, string? Token = null, long OwedMsat = 0, ProviderRequestRecord? Original = null);

/// <summary>
/// Money leaving the market as ecash: a balance refunded (in the mint whose ecash the balance holds) and a provider
/// paid out (in our mint), each debited in the transaction that issues the token; also the provider's earnings and
/// the ledger's summary.
/// </summary>
public sealed class Payouts(
    Database database,
    ILedgerStore ledger,
    IProviderRequestStore providerRequests,
    CashuMint mint,
    PayerMints payerMints,
    ForeignChange foreignChange,
    TimeProvider time)
{
    private readonly ConcurrentDictionary<string, byte> _payouts = new(StringComparer.Ordinal);

    /// <summary>
    /// Empties a balance to its last whole sat as a token of our mint. The sub-sat remainder stays in the balance
    /// (the key keeps working; a top-up makes it spendable again). Null when there is no such balance.
    /// </summary>
    public async Task<BalanceRefund?> RefundAsync(string account, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await database.WriteAsync<BalanceRefund?>(async (c, t) =>
                {
                    if (await ledger.BalanceToDebitAsync(c, t, account, cancellationToken) is not { } balance)
                    {
                        return null;
                    }

                    var sats = balance / 1000;
                    if (sats == 0)
                    {
                        return new BalanceRefund(0, null, balance);
                    }

                    string? token;
                    if (await payerMints.MintOfAsync(c, t, account, cancellationToken) is { } other)
                    {
                        // A balance funded by another mint's ecash is paid back in it, from the notes the market holds of that mint.
                        token = await foreignChange.TakeAsync(c, t, other, PaymentKeys.TokenKeyOf(account), sats, "refund:" + account, cancellationToken);
                        if (token is null)
                        {
                            return new BalanceRefund(0, null, balance, other);
                        }
                    }
                    else
                    {
                        token = (await mint.IssueAsync(c, t, (ulong)sats, cancellationToken)).Token;
                    }

                    await ledger.PostAsync(c, t, "refund", account, [new LedgerTransfer(account, LedgerAccounts.Refunded, sats * 1000)], time.GetUtcNow(),
                        cancellationToken);
                    return new BalanceRefund(sats, token, balance - sats * 1000);
                }, cancellationToken);
            }
            catch (Exception ex) when (ex is InsufficientFundsException or ForeignChangeTakenException && attempt < 3)
            {
                // Another refund took the notes chosen for this one (PostgreSQL): read again. (The balance read stays true
                // until the debit: BalanceToDebitAsync locks the account's row there.)
            }
        }
    }

    /// <summary>
    /// Pays a provider the request's amount (default: every whole sat owed) as a token of our mint, recording
    /// the signed request under its nonce in the same transaction: a nonce pays once, a replay gets
    /// <see cref="PayoutStatus.Replayed"/> with the original request.
    /// </summary>
    public async Task<PayoutResult> PayoutAsync(ProviderRequestRecord request, CancellationToken cancellationToken)
    {
        // One payout per provider at a time on this node; a second one answers Conflict rather than racing the first
        // to the same balance (on PostgreSQL the loser's debit would fail inside its transaction).
        if (!_payouts.TryAdd(request.ProviderId, 0))
        {
            return new PayoutResult(PayoutStatus.Conflict);
        }

        try
        {
            return await PayoutOnceAsync(request, cancellationToken);
        }
        catch (InsufficientFundsException)
        {
            // Another node paid the same balance out between our read and our debit: the transaction rolled back.
            return new PayoutResult(PayoutStatus.Conflict);
        }
        finally
        {
            _payouts.TryRemove(request.ProviderId, out _);
        }
    }

    private async Task<PayoutResult> PayoutOnceAsync(ProviderRequestRecord request, CancellationToken cancellationToken)
    {
        var account = LedgerAccounts.Provider(request.ProviderId);
        var result = await database.WriteAsync(async (c, t) =>
        {
            if (!await providerRequests.TryRecordAsync(c, t, request, cancellationToken))
            {
                return new PayoutResult(PayoutStatus.Replayed);
            }

            var owed = await ledger.BalanceToDebitAsync(c, t, account, cancellationToken) ?? 0;
            var sats = request.AmountSat ?? owed / 1000;
            if (sats <= 0)
            {
                return new PayoutResult(PayoutStatus.NothingOwed, 0, null, owed);
            }

            if (sats > owed / 1000)
            {
                return new PayoutResult(PayoutStatus.MoreThanOwed, sats, null, owed);
            }

            await ledger.PostAsync(c, t, "payout", request.Nonce, [new LedgerTransfer(account, LedgerAccounts.PaidOut, sats * 1000)], time.GetUtcNow(),
                cancellationToken);
            var issued = await mint.IssueAsync(c, t, (ulong)sats, cancellationToken);
            await providerRequests.SetResultAsync(c, t, request.Nonce, issued.Token, cancellationToken);
            return new PayoutResult(PayoutStatus.Paid, sats, issued.Token, owed - sats * 1000);
        }, cancellationToken);
        return result.Status == PayoutStatus.Replayed
            ? result with { Original = await providerRequests.FindAsync(request.Nonce, cancellationToken) }
            : result;
    }

    /// <summary>Records a signed read-only request's nonce (so it cannot be replayed); false when the nonce was used.</summary>
    public Task<bool> RecordProviderRequestAsync(ProviderRequestRecord request, CancellationToken cancellationToken) =>
        database.WriteAsync((c, t) => providerRequests.TryRecordAsync(c, t, request, cancellationToken), cancellationToken);

    public Task<ProviderEarnings> EarningsAsync(string providerId, CancellationToken cancellationToken) => ledger.EarningsAsync(providerId, cancellationToken);

    public Task<LedgerSummary> SummaryAsync(CancellationToken cancellationToken) => ledger.SummaryAsync(cancellationToken);
}
