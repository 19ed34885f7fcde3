namespace Coinop.Storage.Ledger;

/// <summary>What one request in flight reserves of a balance account, since when.</summary>
public sealed record BalanceReservation(string RequestId, string Account, long AmountMsat, DateTimeOffset Since);

/// <summary>
/// What requests in flight reserve of balance accounts, kept in the market's process instead of as durable holds: on a
/// single-node SQLite market a hold that dies with the process is released at the next start anyway (no money moves),
/// so a reservation in memory has the same outcome and saves the request a store transaction. The rule, for every
/// account: its posted balance − what is reserved of it ≥ 0. A reservation is granted only within what the posted
/// balance leaves (<see cref="TryReserve"/>, <see cref="TryGrow"/>); every debit of the account must leave at least what
/// is reserved for others (<see cref="ReservedMsat"/>, the floor the ledger's conditional update enforces); a request's settle
/// takes its own reservation out (<see cref="Take"/>) before debiting its cost, so a granted reservation can always be
/// settled for any cost up to it. Correct only while one process writes the store and every check and change happens
/// in that store's one writer turn (SQLite's <see cref="Database.UnderWriterAsync{T}"/> or a write transaction).
/// </summary>
public sealed class BalanceReservations
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, BalanceReservation> _byRequest = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _byAccount = new(StringComparer.Ordinal);

    /// <summary>Requests holding a reservation.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _byRequest.Count;
            }
        }
    }

    /// <summary>What requests in flight reserve of <paramref name="account"/> (0 when none).</summary>
    public long ReservedMsat(string account)
    {
        lock (_gate)
        {
            return _byAccount.GetValueOrDefault(account);
        }
    }

    /// <summary>The request's reservation, or null.</summary>
    public BalanceReservation? Find(string requestId)
    {
        lock (_gate)
        {
            return _byRequest.GetValueOrDefault(requestId);
        }
    }

    /// <summary>
    /// Reserves <paramref name="amountMsat"/> of <paramref name="account"/> for a request, given the account's posted
    /// balance; false (nothing reserved) when the balance less what is reserved of it is lower, or the request already
    /// holds a reservation.
    /// </summary>
    public bool TryReserve(string requestId, string account, long amountMsat, long postedBalanceMsat, DateTimeOffset now)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(amountMsat);
        lock (_gate)
        {
            var reserved = _byAccount.GetValueOrDefault(account);
            if (_byRequest.ContainsKey(requestId) || postedBalanceMsat - reserved < amountMsat)
            {
                return false;
            }

            _byRequest[requestId] = new BalanceReservation(requestId, account, amountMsat, now);
            _byAccount[account] = reserved + amountMsat;
            return true;
        }
    }

    /// <summary>
    /// Adds <paramref name="extraMsat"/> to a request's reservation (a retry went to a dearer provider), given
    /// <paramref name="account"/>'s posted balance; false (nothing changes) when the request holds none on that account
    /// (it may have been released and reserved again elsewhere since the balance was read) or the balance does not leave it.
    /// </summary>
    public bool TryGrow(string requestId, string account, long extraMsat, long postedBalanceMsat)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(extraMsat);
        lock (_gate)
        {
            if (!_byRequest.TryGetValue(requestId, out var held) || held.Account != account)
            {
                return false;
            }

            var reserved = _byAccount[held.Account];
            if (postedBalanceMsat - reserved < extraMsat)
            {
                return false;
            }

            _byRequest[requestId] = held with { AmountMsat = held.AmountMsat + extraMsat };
            _byAccount[held.Account] = reserved + extraMsat;
            return true;
        }
    }

    /// <summary>Removes a request's reservation (its settle or its release) and returns it; null when it holds none.</summary>
    public BalanceReservation? Take(string requestId)
    {
        lock (_gate)
        {
            return _byRequest.Remove(requestId, out var held) ? Remove(held) : null;
        }
    }

    /// <summary>
    /// Removes and returns the reservations made before <paramref name="before"/>: requests that outlived any request
    /// (one whose settle failed on a store error, or that never ended). Their money simply stays in the balance.
    /// </summary>
    public IReadOnlyList<BalanceReservation> Sweep(DateTimeOffset before)
    {
        lock (_gate)
        {
            var stale = _byRequest.Values.Where(r => r.Since < before).ToList();
            foreach (var r in stale)
            {
                _byRequest.Remove(r.RequestId);
                Remove(r);
            }

            return stale;
        }
    }

    private BalanceReservation Remove(BalanceReservation held)
    {
        var left = _byAccount[held.Account] - held.AmountMsat;
        if (left == 0)
        {
            _byAccount.Remove(held.Account);
        }
        else
        {
            _byAccount[held.Account] = left;
        }

        return held;
    }
}
