using System.Collections.Concurrent;
using System.Data.Common;
using Coinop.Ecash.MintApi;
using Coinop.Ecash.Tokens;
using Coinop.Market.Hosting;
using Coinop.Market.Inference;
using Coinop.Market.Mint;
using Coinop.Storage;
using Coinop.Storage.Cluster;
using Coinop.Storage.Ledger;
using Coinop.Storage.Payments;
using Microsoft.Extensions.Options;

namespace Coinop.Market.Payments;

/// <summary>A token checked without any network call: well formed, in sat, of an accepted mint, of a sane amount.</summary>
public sealed record CheckedToken(Token Token, string Text, string Key, string Mint, bool OurMint, long AmountSat);

/// <summary>The result of <see cref="Cashier.CheckToken"/>: the token, or why it cannot pay (a Cashu error code).</summary>
public sealed record TokenCheck(CheckedToken? Token, int ErrorCode = 0, string? Error = null);

/// <summary>Where the value of an accepted token goes.</summary>
public abstract record TokenCredit;

/// <summary>Into a hold for request <paramref name="RequestId"/>, if it is worth at least <paramref name="MinimumMsat"/>.</summary>
public sealed record CreditHold(Guid RequestId, long MinimumMsat) : TokenCredit;

/// <summary>Into a balance account.</summary>
public sealed record CreditBalance(string Account) : TokenCredit;

public enum AcceptOutcome
{
    /// <summary>The token pays for the request: its whole value is held until the request settles.</summary>
    Held,

    /// <summary>The token's value is in the named balance.</summary>
    Credited,

    /// <summary>The token was taken but is worth less than the hold needed: its value is in the token's own balance.</summary>
    CreditedToTokenBalance,

    /// <summary>The token cannot pay (<see cref="TokenAcceptance.ErrorCode"/> says why); nothing was taken.</summary>
    Refused,

    /// <summary>The token's mint did not answer.</summary>
    MintUnavailable,
}

public sealed record TokenAcceptance(AcceptOutcome Outcome, long CreditedMsat = 0, int ErrorCode = 0, string? Error = null)
{
    public static TokenAcceptance Refuse(int code, string error) => new(AcceptOutcome.Refused, 0, code, error);

    public static TokenAcceptance Unavailable(string mint) => new(AcceptOutcome.MintUnavailable, 0, 0, mint);
}

/// <summary>How a settled hold was split. <see cref="ChangeToken"/> is the ecash given back when a token paid.</summary>
public sealed record SettledHold(long ChargeMsat, long ProviderMsat, long FeeMsat, long ChangeSat, string? ChangeToken);

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
/// Every movement of the market's money, each one store transaction that moves the ledger together with the event
/// that causes it: taking a token (the proofs are spent at our mint, or swapped at another accepted mint, in the
/// transaction that credits the ledger), holding a reservation, settling a job (provider share, fee, change
/// issued as ecash), releasing a hold, refunding a balance, paying a provider out.
/// </summary>
public sealed class Cashier(
    Database database,
    ILedgerStore ledger,
    IPaymentHoldStore holds,
    IProviderRequestStore providerRequests,
    CashuMint mint,
    ForeignMints foreign,
    ForeignChange foreignChange,
    IForeignPaymentStore foreignStore,
    ChangeStock change,
    NodeIdentity node,
    IProviderLinkStore links,
    MarketOptions market,
    IOptions<PaymentsOptions> options,
    PaymentsMetrics metrics,
    TimeProvider time)
{
    private readonly PaymentsOptions _options = options.Value;

    /// <summary>Holds this process opened and has not closed: the sweep leaves them alone.</summary>
    private readonly ConcurrentDictionary<string, byte> _open = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, byte> _payouts = new(StringComparer.Ordinal);

    /// <summary>The mints whose ecash pays here: ours first, then <c>--accept-mint</c>.</summary>
    public IReadOnlyList<string> AcceptedMints =>
        [Token.NormalizeMintUrl(mint.MintUrl), .. market.AcceptMints.Select(Token.NormalizeMintUrl).Where(m => !IsOurs(m))];

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
        if (!AcceptedMints.Contains(mintUrl, StringComparer.OrdinalIgnoreCase))
        {
            return new TokenCheck(null, CashuErrorCode.KeysetUnknown,
                $"this market does not accept ecash of {mintUrl}; it accepts {string.Join(", ", AcceptedMints)}");
        }

        if (token.Amount is not { } amount || amount == 0 || amount > (ulong)_options.MaxPaymentSat)
        {
            return new TokenCheck(null, CashuErrorCode.AmountOutOfLimitRange, $"a payment must be between 1 and {_options.MaxPaymentSat} sat");
        }

        return new TokenCheck(new CheckedToken(token, text, PaymentKeys.TokenKey(token), mintUrl, IsOurs(mintUrl), (long)amount));
    }

    /// <summary>
    /// Takes a checked token: at our mint its proofs are spent in the transaction that credits the ledger; at another
    /// accepted mint they are swapped first (see <see cref="ForeignMints"/>). Money-moving steps ignore cancellation:
    /// once begun, they finish.
    /// </summary>
    public async Task<TokenAcceptance> AcceptAsync(CheckedToken token, TokenCredit credit, CancellationToken cancellationToken)
    {
        if (credit is CreditBalance target && await OtherMintAsync(target.Account, token, cancellationToken) is { } balanceMint)
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
            _open[held.RequestId.ToString()] = 0;
        }

        return outcome;
    }

    /// <summary>An account's balance in msat (null when there is no such account).</summary>
    public Task<long?> BalanceAsync(string account, CancellationToken cancellationToken) => ledger.BalanceAsync(account, cancellationToken);

    /// <summary>Moves <paramref name="amountMsat"/> from a balance into a hold for the request; false when the balance is too low.</summary>
    public async Task<bool> ReserveAsync(string account, Guid requestId, long amountMsat, CancellationToken cancellationToken)
    {
        var id = requestId.ToString();
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
            var token = changeSat > 0 ? await IssueAsync(c, t, id, hold.ReleaseTo, changeSat, cancellationToken) : null;
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
        ReleaseAsync(requestId.ToString(), giveChange, cancellationToken);

    /// <summary>A hold this process opened was closed by the caller (inside another transaction): the sweep may look at it again.</summary>
    public void Forget(Guid requestId) => _open.TryRemove(requestId.ToString(), out _);

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
                if (TokenCodec.TryDecode(change.Token, out var token, out _) && token is not null && !IsOurs(Token.NormalizeMintUrl(token.Mint)))
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

    /// <summary>Resolves this node's foreign redemptions left pending (see <see cref="ForeignMints.RecoverAsync"/>).</summary>
    public Task RecoverForeignAsync(DateTimeOffset before, CancellationToken cancellationToken, string? nodeId = null) =>
        // The request the token paid for is gone: its value goes to the token's own balance.
        foreign.RecoverAsync(before, (c, t, tokenKey, mintUrl, msat, ct) => CreditAsync(c, t, tokenKey, mintUrl, msat, null, ct), cancellationToken, nodeId);

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
                    if (await ledger.BalanceAsync(c, t, account, cancellationToken) is not { } balance)
                    {
                        return null;
                    }

                    var sats = balance / 1000;
                    if (sats == 0)
                    {
                        return new BalanceRefund(0, null, balance);
                    }

                    string? token;
                    if (await MintOfAsync(c, t, account, cancellationToken) is { } other)
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
                // A reservation took part of the balance between our read and our debit, or another refund took the notes
                // chosen for this one (PostgreSQL): read again.
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

            var owed = await ledger.BalanceAsync(c, t, account, cancellationToken) ?? 0;
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

    private bool IsOurs(string mintUrl) => string.Equals(mintUrl, Token.NormalizeMintUrl(mint.MintUrl), StringComparison.OrdinalIgnoreCase);

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
            token = changeSat > 0 ? await IssueAsync(c, t, id, hold.ReleaseTo, changeSat, cancellationToken) : null;
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

    /// <summary>
    /// Change for a hold, in the mint whose ecash its payer's balance holds: ours from the change stock; another accepted
    /// mint's from the notes its token was swapped into (<see cref="ForeignChange"/>), null when they cannot make it.
    /// </summary>
    private async Task<string?> IssueAsync(DbConnection c, DbTransaction t, string requestId, string payerAccount, long sats, CancellationToken cancellationToken)
    {
        var token = await MintOfAsync(c, t, payerAccount, cancellationToken) is { } other
            ? await foreignChange.TakeAsync(c, t, other, PaymentKeys.TokenKeyOf(payerAccount), sats, requestId, cancellationToken)
            : await change.TakeAsync(c, t, sats, cancellationToken);
        if (token is not null)
        {
            await holds.SetChangeTokenAsync(c, t, requestId, token, cancellationToken);
        }

        return token;
    }

    /// <summary>Whether this market takes another mint's ecash at all (<c>--accept-mint</c>).</summary>
    public bool AcceptsOtherMints => market.AcceptMints.Count > 0;

    /// <summary>The mint whose ecash a balance holds (and its refunds are paid in): another accepted mint's, or ours.</summary>
    public async Task<string> MintOfBalanceAsync(string account, CancellationToken cancellationToken) =>
        (AcceptsOtherMints ? await foreignStore.BalanceMintAsync(account, cancellationToken) : null) ?? Token.NormalizeMintUrl(mint.MintUrl);

    /// <summary>The other accepted mint whose ecash a balance holds; null for ours (and always, on a market that accepts no other mint).</summary>
    internal async Task<string?> MintOfAsync(DbConnection c, DbTransaction t, string account, CancellationToken cancellationToken) =>
        market.AcceptMints.Count == 0 ? null : await foreignStore.BalanceMintAsync(c, t, account, cancellationToken);

    /// <summary>The mint an existing balance holds ecash of, when the token is of another one (null: it may be credited there).</summary>
    private async Task<string?> OtherMintAsync(string account, CheckedToken token, CancellationToken cancellationToken)
    {
        if (await ledger.BalanceAsync(account, cancellationToken) is null)
        {
            return null; // a new balance takes the mint of its first token
        }

        var held = market.AcceptMints.Count == 0 ? null : await foreignStore.BalanceMintAsync(account, cancellationToken);
        var ours = Token.NormalizeMintUrl(mint.MintUrl);
        return string.Equals(held ?? ours, token.Mint, StringComparison.OrdinalIgnoreCase) ? null : held ?? ours;
    }

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
            && !string.Equals(await MintOfAsync(c, t, target.Account, cancellationToken), foreignMint, StringComparison.OrdinalIgnoreCase))
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
