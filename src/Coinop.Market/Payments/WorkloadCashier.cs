using System.Data.Common;
using Coinop.Core.Pricing;
using Coinop.Core.Workloads;
using Coinop.Market.Hosting;
using Coinop.Market.Workloads;
using Coinop.Storage;
using Coinop.Storage.Ledger;
using Coinop.Storage.Payments;

namespace Coinop.Market.Payments;

/// <summary>
/// The money of paid workloads, each movement one store transaction. A workload's money sits in its ledger account
/// <c>workload:&lt;id&gt;</c>: a payment moves in from its hold in the transaction that grants the lease it buys
/// (<see cref="CommitAsync"/>); consumed time moves out to <c>spent</c>, split into each serving provider's earnings at
/// its rate and the market fee, as time passes (<see cref="SettleAsync"/>); when the workload ends the rest is refunded
/// as ecash of our mint, whole sats, the sub-sat remainder going to the fee (<see cref="CloseAsync"/>).
/// </summary>
public sealed class WorkloadCashier(
    Database database,
    ILedgerStore ledger,
    IPaymentHoldStore holds,
    IWorkloadAccountStore accounts,
    ChangeStock change,
    ForeignChange foreignChange,
    IForeignPaymentStore foreignStore,
    MarketOptions market,
    PaymentsMetrics metrics,
    TimeProvider time)
{
    /// <summary>
    /// Inside the transaction that grants a lease: the payment's hold is closed and its value moves into the workload's
    /// account, which a submit opens (<paramref name="openFor"/>: the payer's balance account) and a top-up finds open.
    /// Throws when the hold is no longer held or the account is closed, rolling the grant back.
    /// </summary>
    public async Task CommitAsync(DbConnection c, DbTransaction t, Guid paymentId, long amountMsat, Workload workload, string? openFor,
        CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        // The payment's hold is settled for its whole value: the cost recorded on it is what moved into the workload's account.
        _ = await holds.TryCloseAsync(c, t, paymentId.ToString(), new HoldOutcome(HoldState.Settled, amountMsat), now, cancellationToken)
            ?? throw new InvalidOperationException($"the payment {paymentId} for workload {workload.Id} is no longer held");
        if (openFor is not null)
        {
            await accounts.OpenAsync(c, t, workload.Id, openFor, workload.CreatedAt, now, cancellationToken);
        }
        else if (await accounts.FindAsync(c, t, workload.Id, cancellationToken) is not { IsOpen: true })
        {
            throw new InvalidOperationException($"workload {workload.Id} has no open account");
        }

        await ledger.PostAsync(c, t, "workload-payment", workload.Id,
            [new LedgerTransfer(LedgerAccounts.Holds, LedgerAccounts.Workload(workload.Id), amountMsat)], now, cancellationToken);
    }

    /// <summary>
    /// Charges the workload's time from where it was settled to <paramref name="until"/> to the providers that served it.
    /// Returns how far it is settled now; null when it has no account (nobody paid for it).
    /// </summary>
    public async Task<DateTimeOffset?> SettleAsync(string workloadId, WorkloadQuote quote, IReadOnlyList<ProviderRate> serving, DateTimeOffset until,
        CancellationToken cancellationToken)
    {
        try
        {
            var charged = 0L;
            var settled = await database.WriteAsync(async (c, t) =>
            {
                charged = 0;
                if (await accounts.FindAsync(c, t, workloadId, cancellationToken) is not { } account)
                {
                    return (DateTimeOffset?)null;
                }

                if (!account.IsOpen || until <= account.SettledUntil)
                {
                    return account.SettledUntil;
                }

                charged = await SettleSpanAsync(c, t, account, quote, serving, until, cancellationToken);
                return until;
            }, cancellationToken);
            metrics.Charged(charged);
            return settled;
        }
        catch (SettledMeanwhileException)
        {
            // Another market node settled this span first: continue from where it got.
            return (await accounts.FindAsync(workloadId, cancellationToken))?.SettledUntil;
        }
    }

    /// <summary>
    /// Settles up to <paramref name="end"/> and refunds the rest once: the workload's account is closed with its refund
    /// (whole sats as a <c>cashuB</c> token, kept on the account for the payer). Called again, returns the same refund.
    /// Null when the workload has no account.
    /// </summary>
    public async Task<WorkloadRefund?> CloseAsync(string workloadId, WorkloadQuote quote, IReadOnlyList<ProviderRate> serving, DateTimeOffset end,
        CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await TryCloseAsync(workloadId, quote, serving, end, cancellationToken);
            }
            catch (SettledMeanwhileException) when (attempt < 3)
            {
                // Another market node closed it (or settled a span) first: read again.
            }
        }
    }

    /// <summary>Closes the open accounts of finished workloads: their time is settled up to the end (no provider is paid for what the store cannot prove), the rest refunded.</summary>
    public async Task<int> RecoverAsync(CancellationToken cancellationToken)
    {
        var finished = await accounts.OpenOfFinishedAsync(cancellationToken);
        foreach (var f in finished)
        {
            await CloseAsync(f.WorkloadId, new WorkloadQuote(0), [], f.EndedAt < f.PaidUntil ? f.EndedAt : f.PaidUntil, cancellationToken);
        }

        return finished.Count;
    }

    public Task<WorkloadAccount?> FindAsync(string workloadId, CancellationToken cancellationToken) => accounts.FindAsync(workloadId, cancellationToken);

    private async Task<WorkloadRefund?> TryCloseAsync(string workloadId, WorkloadQuote quote, IReadOnlyList<ProviderRate> serving, DateTimeOffset end,
        CancellationToken cancellationToken)
    {
        var issued = false;
        var refund = await database.WriteAsync<WorkloadRefund?>(async (c, t) =>
        {
            issued = false;
            if (await accounts.FindAsync(c, t, workloadId, cancellationToken) is not { } account)
            {
                return null;
            }

            if (!account.IsOpen)
            {
                return new WorkloadRefund(account.RefundMsat ?? 0, account.RefundToken);
            }

            if (end > account.SettledUntil)
            {
                await SettleSpanAsync(c, t, account, quote, serving, end, cancellationToken);
            }

            var now = time.GetUtcNow();
            var left = await ledger.BalanceAsync(c, t, LedgerAccounts.Workload(workloadId), cancellationToken) ?? 0;
            var (sats, remainder) = Settlement.Change(left, 0);
            // Paid with another accepted mint's ecash: refunded in it, from the notes the market holds of that mint; when they
            // cannot make it, the refund goes to the payer's balance (to refund from later) rather than in our ecash.
            var other = sats > 0 && market.AcceptMints.Count > 0 ? await foreignStore.BalanceMintAsync(c, t, account.PayerAccount, cancellationToken) : null;
            var token = sats == 0 ? null
                : other is null ? await change.TakeAsync(c, t, sats, cancellationToken)
                : await foreignChange.TakeAsync(c, t, other, PaymentKeys.TokenKeyOf(account.PayerAccount), sats, LedgerAccounts.Workload(workloadId), cancellationToken);
            await ledger.PostAsync(c, t, "workload-refund", workloadId,
            [
                new LedgerTransfer(LedgerAccounts.Workload(workloadId), token is null && sats > 0 ? account.PayerAccount : LedgerAccounts.Refunded, sats * 1000),
                new LedgerTransfer(LedgerAccounts.Workload(workloadId), LedgerAccounts.Spent, remainder),
                new LedgerTransfer(LedgerAccounts.Spent, LedgerAccounts.Fee, remainder),
            ], now, cancellationToken);
            issued = token is not null && other is null;
            if (!await accounts.CloseAsync(c, t, workloadId, sats * 1000, token, now, cancellationToken))
            {
                throw new SettledMeanwhileException();
            }

            return new WorkloadRefund(sats * 1000, token);
        }, cancellationToken);
        if (issued)
        {
            change.Wake();
        }

        return refund;
    }

    /// <summary>
    /// Moves the cost of [settled_until, until) out of the workload's account: each serving provider's charge at its rate
    /// (see <see cref="WorkloadQuote.Charges"/>) is split into its earnings and the fee. The account advances only from the
    /// value read, so a span is charged once.
    /// </summary>
    private async Task<long> SettleSpanAsync(DbConnection c, DbTransaction t, WorkloadAccount account, WorkloadQuote quote, IReadOnlyList<ProviderRate> serving,
        DateTimeOffset until, CancellationToken cancellationToken)
    {
        var id = account.WorkloadId;
        var available = await ledger.BalanceAsync(c, t, LedgerAccounts.Workload(id), cancellationToken) ?? 0;
        var charges = quote.Charges(serving, (long)(until - account.SettledUntil).TotalMilliseconds, available);
        var total = charges.Sum(x => x.Msat);
        if (!await accounts.AdvanceAsync(c, t, id, account.SettledUntil, until, total, cancellationToken))
        {
            throw new SettledMeanwhileException();
        }

        List<LedgerTransfer> transfers = [new(LedgerAccounts.Workload(id), LedgerAccounts.Spent, total)];
        foreach (var charge in charges)
        {
            var share = Settlement.ProviderShare(charge.Msat, market.FeePercent);
            transfers.Add(new LedgerTransfer(LedgerAccounts.Spent, LedgerAccounts.Provider(charge.ProviderId), share));
            transfers.Add(new LedgerTransfer(LedgerAccounts.Spent, LedgerAccounts.Fee, charge.Msat - share));
        }

        await ledger.PostAsync(c, t, "workload-usage", id, transfers, time.GetUtcNow(), cancellationToken);
        return total;
    }

    /// <summary>A conditional update found the account moved on by another writer: the transaction rolls back.</summary>
    private sealed class SettledMeanwhileException() : Exception("the workload's account was settled or closed meanwhile");
}
