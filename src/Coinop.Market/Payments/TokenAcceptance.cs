using Coinop.Ecash.Tokens;

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
