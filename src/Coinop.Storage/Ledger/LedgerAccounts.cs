namespace Coinop.Storage.Ledger;

/// <summary>The ledger's accounts. Consumer balances and provider earnings have one account each, named by a prefix.</summary>
public static class LedgerAccounts
{
    /// <summary>Money that came in from outside (accepted ecash). The only account whose balance goes below zero.</summary>
    public const string Received = "received";

    /// <summary>Reservations of requests in flight (one <c>payment_holds</c> row each).</summary>
    public const string Holds = "holds";

    /// <summary>The prefix of a paid workload's account: what is still held for it (paid and not yet consumed or refunded).</summary>
    public const string WorkloadPrefix = "workload:";

    /// <summary>A clearing account: what a job cost passes through it to the provider and the market fee in one transaction.</summary>
    public const string Spent = "spent";

    public const string Fee = "fee";

    /// <summary>Ecash given back to consumers (change and balance refunds).</summary>
    public const string Refunded = "refunded";

    /// <summary>Ecash paid to providers.</summary>
    public const string PaidOut = "paid_out";

    public const string BalancePrefix = "balance:";

    public const string ProviderPrefix = "provider:";

    /// <summary>The balance account of a consumer key, given the key's hash (keys are never stored in clear).</summary>
    public static string Balance(string keyHash) => BalancePrefix + keyHash;

    public static string Provider(string providerId) => ProviderPrefix + providerId;

    public static string Workload(string workloadId) => WorkloadPrefix + workloadId;

    /// <summary>The kind of an account, as the schema's CHECKs know it.</summary>
    public static string KindOf(string account) => account switch
    {
        Received => "source",
        Holds => "hold",
        _ when account.StartsWith(WorkloadPrefix, StringComparison.Ordinal) => "hold",
        Spent => "clearing",
        Fee or Refunded or PaidOut => "sink",
        _ when account.StartsWith(BalancePrefix, StringComparison.Ordinal) => "balance",
        _ when account.StartsWith(ProviderPrefix, StringComparison.Ordinal) => "provider",
        _ => throw new ArgumentException($"'{account}' is not a ledger account", nameof(account)),
    };
}

/// <summary>One movement of money between two accounts, in msat.</summary>
public sealed record LedgerTransfer(string From, string To, long AmountMsat);

/// <summary>An account would go below zero (a balance too low for a reservation, a payout larger than what is owed).</summary>
public sealed class InsufficientFundsException(string account)
    : Exception($"account {account} holds too little for this transfer")
{
    public string Account { get; } = account;
}
