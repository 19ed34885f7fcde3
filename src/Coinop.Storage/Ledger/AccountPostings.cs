namespace Coinop.Storage.Ledger;

/// <summary>
/// What one posting does to one account: the msat credited and debited to it, and whether the posting may open it
/// (an account that does not exist yet is then created with these totals; otherwise the posting fails on it). A
/// posting never takes an account it may open below what that account held, so it cannot fail on such an account.
/// </summary>
public readonly record struct AccountPosting(string Account, string Kind, long CreditMsat, long DebitMsat, bool MayOpen);

/// <summary>
/// The rule that turns a posting's transfers into one change per account: totals per account (a clearing account is
/// credited and debited in one change, as its CHECK requires), in ordinal name order (every posting locks accounts in
/// the same order, so concurrent ones do not deadlock). Only a balance, provider or workload account that ends the
/// posting with at least what it started (credited no less than debited, and credited at all) may be opened by it:
/// a missing account that would be left below zero, or any other missing account, fails the posting.
/// </summary>
public static class AccountPostings
{
    /// <summary>The account changes of <paramref name="transfers"/> (transfers of zero move nothing and are left out).</summary>
    public static IReadOnlyList<AccountPosting> Of(IReadOnlyList<LedgerTransfer> transfers)
    {
        var totals = new SortedDictionary<string, (long Credit, long Debit)>(StringComparer.Ordinal);
        foreach (var m in transfers)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(m.AmountMsat);
            if (m.AmountMsat == 0)
            {
                continue;
            }

            if (m.From == m.To)
            {
                throw new ArgumentException($"a transfer from {m.From} to itself");
            }

            var from = totals.GetValueOrDefault(m.From);
            totals[m.From] = (from.Credit, checked(from.Debit + m.AmountMsat));
            var to = totals.GetValueOrDefault(m.To);
            totals[m.To] = (checked(to.Credit + m.AmountMsat), to.Debit);
        }

        var postings = new AccountPosting[totals.Count];
        var i = 0;
        foreach (var (account, (credit, debit)) in totals)
        {
            var kind = LedgerAccounts.KindOf(account);
            var openable = kind is "balance" or "provider" || account.StartsWith(LedgerAccounts.WorkloadPrefix, StringComparison.Ordinal);
            postings[i++] = new AccountPosting(account, kind, credit, debit, openable && credit > 0 && credit >= debit);
        }

        return postings;
    }
}
