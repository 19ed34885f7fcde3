using System.Collections.Concurrent;
using Coinop.Market.Hosting;
using Coinop.Market.Inference;
using Coinop.Storage;
using Coinop.Storage.Cluster;
using Coinop.Storage.Ledger;

namespace Coinop.Market.Payments;

/// <summary>How a settled hold was split. <see cref="ChangeToken"/> is the ecash given back when a token paid.</summary>
public sealed record SettledHold(long ChargeMsat, long ProviderMsat, long FeeMsat, long ChangeSat, string? ChangeToken);

/// <summary>
/// The holds of paid requests and workload payments, from reservation to settlement or release: reserving part of a
/// balance (a durable hold, or one kept in process: <see cref="InProcessReservations"/>), growing it for a dearer
/// retry, settling it (provider share, fee, change issued as ecash), releasing it; and the sweeps that release holds
/// whose requests died. Each is one store transaction that moves the ledger together with the hold. A token fills its
/// hold in the transaction that takes it (<see cref="Cashier"/>); change is made by <see cref="HoldChange"/>.
/// </summary>
public sealed class RequestHolds(
    Database database,
    ILedgerStore ledger,
    IPaymentHoldStore holds,
    HoldChange holdChange,
    ChangeStock change,
    NodeIdentity node,
    IProviderLinkStore links,
    MarketOptions market,
    PaymentsMetrics metrics,
    InProcessReservations reservations,
    TimeProvider time)
{
    /// <summary>Holds this process opened and has not closed: the sweep leaves them alone.</summary>
    private readonly ConcurrentDictionary<string, byte> _open = new(StringComparer.Ordinal);

    /// <summary>
    /// Reserves <paramref name="amountMsat"/> of a balance for the request; false when the balance is too low. With
    /// <paramref name="inProcess"/> on SQLite (one market process per store) the reservation is kept in this process
    /// (<see cref="BalanceReservations"/>, no store transaction); otherwise the amount moves into a durable hold.
    /// </summary>
    public async Task<bool> ReserveAsync(string account, Guid requestId, long amountMsat, CancellationToken cancellationToken, bool inProcess = false)
    {
        var id = requestId.ToString();
        if (inProcess && reservations.Available)
        {
            return await reservations.ReserveAsync(account, id, amountMsat, cancellationToken);
        }

        _open[id] = 0;
        try
        {
            await database.WriteAsync(async (c, t) =>
            {
                var now = time.GetUtcNow();
                await ledger.PostAsync(c, t, "reserve", id, [new LedgerTransfer(account, LedgerAccounts.Holds, amountMsat)], now, cancellationToken);
                await holds.InsertAsync(c, t, new PaymentHold(id, node.NodeId, HoldPayer.Balance, account, amountMsat, HoldState.Held, now), cancellationToken);
            }, cancellationToken);
            return true;
        }
        catch (InsufficientFundsException)
        {
            _open.TryRemove(id, out _);
            return false;
        }
        catch
        {
            _open.TryRemove(id, out _);
            throw;
        }
    }

    /// <summary>
    /// Moves <paramref name="extraMsat"/> more from the balance that filled a request's hold into it (a retry went to a
    /// dearer provider); false when the balance is too low or the hold is no longer held. Nothing moves then.
    /// </summary>
    public async Task<bool> GrowHoldAsync(Guid requestId, long extraMsat, CancellationToken cancellationToken)
    {
        var id = requestId.ToString();
        if (reservations.Holds(id))
        {
            return await reservations.GrowAsync(id, extraMsat, cancellationToken);
        }

        try
        {
            return await database.WriteAsync(async (c, t) =>
            {
                var hold = await holds.TryGrowAsync(c, t, id, extraMsat, cancellationToken);
                if (hold is null || hold.Payer != HoldPayer.Balance)
                {
                    throw new InsufficientFundsException(id); // rolls the growth back: only a balance can add to its hold
                }

                await ledger.PostAsync(c, t, "reserve", id, [new LedgerTransfer(hold.ReleaseTo, LedgerAccounts.Holds, extraMsat)], time.GetUtcNow(), cancellationToken);
                return true;
            }, cancellationToken);
        }
        catch (InsufficientFundsException)
        {
            return false;
        }
    }

    /// <summary>
    /// Settles a request's hold: the charge (its cost, at most <paramref name="reservationMsat"/>) goes to the provider
    /// and the fee; the rest goes back to the balance, or, when a token paid, comes back as whole sats of change
    /// (from the change stock, in the same transaction; see <see cref="ReplenishChange"/>) with the sub-sat remainder to the fee — unless <paramref name="changeAsToken"/>
    /// is false (no response can carry it any more): then it goes to the token's balance, to the msat. Null when the
    /// hold was no longer held (already settled or released).
    /// </summary>
    public async Task<SettledHold?> SettleAsync(Guid requestId, long costMsat, long reservationMsat, string providerId, CancellationToken cancellationToken,
        bool changeAsToken = true, long linkEpoch = 0)
    {
        var id = requestId.ToString();
        if (reservations.Holds(id))
        {
            return await reservations.SettleAsync(id, costMsat, reservationMsat, providerId, linkEpoch, cancellationToken);
        }

        SettledHold? settled = null;
        await database.WriteAsync(async (c, t) =>
        {
            settled = null;
            // Fenced on the provider's link: once the provider linked again (to any node), a result from the old link
            // credits nothing. The check holds the link row until this commits, so a takeover waits for it.
            if (linkEpoch > 0 && !await links.IsCurrentAsync(c, t, providerId, linkEpoch, cancellationToken))
            {
                throw new ProviderLinkRevokedException(providerId, linkEpoch);
            }

            var now = time.GetUtcNow();
            var charge = Settlement.Charge(costMsat, reservationMsat);
            var hold = await holds.TryCloseAsync(c, t, id, new HoldOutcome(HoldState.Settled, charge, providerId), now, cancellationToken);
            if (hold is null)
            {
                return;
            }

            charge = Math.Min(charge, hold.AmountMsat);
            var share = Settlement.ProviderShare(charge, market.FeePercent);
            var asToken = hold.Payer == HoldPayer.Token && changeAsToken;
            var (changeSat, remainder) = asToken ? Settlement.Change(hold.AmountMsat, charge) : (0, 0);
            var token = changeSat > 0 ? await holdChange.MakeAsync(c, t, id, hold.ReleaseTo, changeSat, cancellationToken) : null;
            if (changeSat > 0 && token is null)
            {
                // Change in the payer's mint could not be made from the notes the market holds: it waits in the token's balance.
                (asToken, changeSat, remainder) = (false, 0, 0);
            }

            var spent = charge + remainder;
            List<LedgerTransfer> transfers =
            [
                new(LedgerAccounts.Holds, LedgerAccounts.Spent, spent),
                new(LedgerAccounts.Spent, LedgerAccounts.Provider(providerId), share),
                new(LedgerAccounts.Spent, LedgerAccounts.Fee, spent - share),
            ];
            transfers.Add(asToken
                ? new LedgerTransfer(LedgerAccounts.Holds, LedgerAccounts.Refunded, changeSat * 1000)
                : new LedgerTransfer(LedgerAccounts.Holds, hold.ReleaseTo, hold.AmountMsat - charge));
            await ledger.PostAsync(c, t, "settle", id, transfers, now, cancellationToken);
            settled = new SettledHold(charge, share, spent - share, changeSat, token);
        }, cancellationToken);
        _open.TryRemove(id, out _);
        if (settled is not null)
        {
            metrics.Charged(settled.ChargeMsat);
        }

        return settled;
    }

    /// <summary>
    /// Asks the change stock to replace change a settle took. Callers do this once the response carrying the change
    /// has gone out: making change is CPU work (about 0.3 ms a proof) that should not delay that response.
    /// </summary>
    public void ReplenishChange() => change.Wake();

    /// <summary>
    /// Releases a request's hold without charging anything. With <paramref name="giveChange"/> (a token paid and the
    /// consumer is still there to receive it) the whole value comes back as ecash; otherwise it goes to the hold's
    /// balance (the paying token's or the key's). Returns the change token, if any; null also when the hold was
    /// already closed.
    /// </summary>
    public Task<string?> ReleaseAsync(Guid requestId, bool giveChange, CancellationToken cancellationToken) =>
        // A reservation kept in process ends without a transaction: its money never left the balance.
        reservations.Release(requestId.ToString()) ? Task.FromResult<string?>(null) : ReleaseAsync(requestId.ToString(), giveChange, cancellationToken);

    /// <summary>A hold this process opened was closed by the caller (inside another transaction): the sweep may look at it again.</summary>
    public void Forget(Guid requestId) => _open.TryRemove(requestId.ToString(), out _);

    /// <summary>A token filled the request's hold (<see cref="Cashier.AcceptAsync"/>): the sweep leaves it alone until it closes.</summary>
    public void Opened(Guid requestId) => _open[requestId.ToString()] = 0;

    /// <summary>
    /// Releases this node's holds created before <paramref name="before"/> that no live request of this process owns:
    /// at start, all of them (their requests died with the previous run); later, ones whose settle failed. Their value
    /// goes to the balance of the paying token or key. Returns how many and how much.
    /// </summary>
    public async Task<(int Count, long Msat)> ReleaseAbandonedAsync(DateTimeOffset before, CancellationToken cancellationToken)
    {
        var count = 0;
        long msat = 0;
        foreach (var hold in await holds.HeldAsync(node.NodeId, before, cancellationToken))
        {
            if (_open.ContainsKey(hold.RequestId))
            {
                continue;
            }

            await ReleaseAsync(hold.RequestId, giveChange: false, cancellationToken);
            count++;
            msat += hold.AmountMsat;
        }

        return (count, msat);
    }

    /// <summary>
    /// Releases every hold of <paramref name="nodeId"/>, a market node that is gone (its requests died with it), into the
    /// balance of the paying token or key. A hold that node settles or releases meanwhile is left alone (closing a hold is
    /// conditional). Returns how many and how much.
    /// </summary>
    public async Task<(int Count, long Msat)> ReleaseHoldsOfAsync(string nodeId, CancellationToken cancellationToken)
    {
        if (nodeId == node.NodeId)
        {
            throw new ArgumentException("a node's own holds are released by its own sweep", nameof(nodeId));
        }

        var count = 0;
        long msat = 0;
        foreach (var hold in await holds.HeldAsync(nodeId, null, cancellationToken))
        {
            await ReleaseAsync(hold.RequestId, giveChange: false, cancellationToken);
            count++;
            msat += hold.AmountMsat;
        }

        return (count, msat);
    }

    private async Task<string?> ReleaseAsync(string id, bool giveChange, CancellationToken cancellationToken)
    {
        string? token = null;
        await database.WriteAsync(async (c, t) =>
        {
            token = null;
            var now = time.GetUtcNow();
            var hold = await holds.TryCloseAsync(c, t, id, new HoldOutcome(HoldState.Released), now, cancellationToken);
            if (hold is null)
            {
                return;
            }

            var (changeSat, remainder) = giveChange && hold.Payer == HoldPayer.Token ? Settlement.Change(hold.AmountMsat, 0) : (0, hold.AmountMsat);
            token = changeSat > 0 ? await holdChange.MakeAsync(c, t, id, hold.ReleaseTo, changeSat, cancellationToken) : null;
            if (changeSat > 0 && token is null)
            {
                (changeSat, remainder) = (0, hold.AmountMsat); // no change in the payer's mint now: the value waits in its balance
            }

            await ledger.PostAsync(c, t, "release", id,
                [new LedgerTransfer(LedgerAccounts.Holds, LedgerAccounts.Refunded, changeSat * 1000), new LedgerTransfer(LedgerAccounts.Holds, hold.ReleaseTo, remainder)],
                now, cancellationToken);
        }, CancellationToken.None);
        _open.TryRemove(id, out _);
        if (token is not null)
        {
            change.Wake();
        }

        return token;
    }
}
