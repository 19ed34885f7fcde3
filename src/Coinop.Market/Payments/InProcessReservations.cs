using Coinop.Market.Hosting;
using Coinop.Market.Inference;
using Coinop.Storage;
using Coinop.Storage.Cluster;
using Coinop.Storage.Ledger;

namespace Coinop.Market.Payments;

/// <summary>
/// Balance-key reservations of inference requests kept in this process on a single-node SQLite market
/// (<see cref="BalanceReservations"/>, the rule), instead of durable holds: a durable hold that dies with its process is
/// released at the next start, so one in memory has the same outcome (no money moves) and saves the request a store
/// transaction. A reservation and its growth are decided in the store's one writer turn against the posted balance;
/// every SQLite posting leaves what is reserved of the accounts it debits (<see cref="LedgerStore"/>); the settle ends
/// the reservation and debits the balance in one transaction; a release is no store work at all. The market claims its
/// SQLite file for its process, so no other process debits the balances meanwhile.
/// </summary>
public sealed class InProcessReservations(
    Database database,
    ILedgerStore ledger,
    BalanceReservations reservations,
    IProviderLinkStore links,
    MarketOptions market,
    PaymentsMetrics metrics,
    TimeProvider time)
{
    /// <summary>True on SQLite, where one process owns the store; PostgreSQL nodes share balances, so they keep durable holds.</summary>
    public bool Available => database.Dialect == SqlDialect.Sqlite;

    /// <summary>Whether the request holds a reservation here.</summary>
    public bool Holds(string requestId) => reservations.Find(requestId) is not null;

    /// <summary>Reserves <paramref name="amountMsat"/> of the balance; false when it is too low (or there is no such balance).</summary>
    public Task<bool> ReserveAsync(string account, string requestId, long amountMsat, CancellationToken cancellationToken) =>
        database.UnderWriterAsync(async c =>
            await ledger.PostedBalanceAsync(c, null, account, cancellationToken) is { } posted
            && reservations.TryReserve(requestId, account, amountMsat, posted, time.GetUtcNow()), cancellationToken);

    /// <summary>Adds <paramref name="extraMsat"/> to the request's reservation (a retry at a dearer provider); false when the balance does not leave it.</summary>
    public Task<bool> GrowAsync(string requestId, long extraMsat, CancellationToken cancellationToken) =>
        database.UnderWriterAsync(async c =>
            reservations.Find(requestId) is { } held
            && await ledger.PostedBalanceAsync(c, null, held.Account, cancellationToken) is { } posted
            && reservations.TryGrow(requestId, held.Account, extraMsat, posted), cancellationToken);

    /// <summary>Ends the request's reservation without a charge; false when it held none here.</summary>
    public bool Release(string requestId) => reservations.Take(requestId) is not null;

    /// <summary>
    /// Settles the request: in one transaction its charge (its cost, at most <paramref name="capMsat"/> and its
    /// reservation) goes from the balance to the provider and the fee, and the reservation ends. Taken out before the
    /// debit, which must leave what other requests reserve: the balance held this one, so the debit cannot fail on that.
    /// Null when the reservation had ended meanwhile.
    /// </summary>
    public async Task<SettledHold?> SettleAsync(string requestId, long costMsat, long capMsat, string providerId, long linkEpoch, CancellationToken cancellationToken)
    {
        BalanceReservation? taken = null;
        SettledHold? settled = null;
        try
        {
            await database.WriteAsync(async (c, t) =>
            {
                settled = null;
                // Fenced on the provider's link, as a durable hold's settle is.
                if (linkEpoch > 0 && !await links.IsCurrentAsync(c, t, providerId, linkEpoch, cancellationToken))
                {
                    throw new ProviderLinkRevokedException(providerId, linkEpoch);
                }

                taken ??= reservations.Take(requestId); // kept across a retry of this transaction
                if (taken is null)
                {
                    return;
                }

                var charge = Math.Min(Settlement.Charge(costMsat, capMsat), taken.AmountMsat);
                var share = Settlement.ProviderShare(charge, market.FeePercent);
                await ledger.PostAsync(c, t, "settle", requestId,
                [
                    new(taken.Account, LedgerAccounts.Spent, charge),
                    new(LedgerAccounts.Spent, LedgerAccounts.Provider(providerId), share),
                    new(LedgerAccounts.Spent, LedgerAccounts.Fee, charge - share),
                ], time.GetUtcNow(), cancellationToken);
                settled = new SettledHold(charge, share, charge - share, 0, null);
            }, cancellationToken);
        }
        finally
        {
            // A settle that failed for good ends the reservation with the money still in the balance: what a durable hold
            // whose settle failed comes to when it is released.
            taken ??= reservations.Take(requestId);
        }

        if (settled is not null)
        {
            metrics.Charged(settled.ChargeMsat);
        }

        return settled;
    }

    /// <summary>
    /// Ends the reservations made before <paramref name="before"/>: left by requests that ended without settling or
    /// releasing (as the sweep releases such durable holds). Returns how many and how much.
    /// </summary>
    public (int Count, long Msat) Sweep(DateTimeOffset before)
    {
        var swept = reservations.Sweep(before);
        return (swept.Count, swept.Sum(r => r.AmountMsat));
    }
}
