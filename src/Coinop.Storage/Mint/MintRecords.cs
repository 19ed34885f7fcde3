namespace Coinop.Storage.Mint;

/// <summary>A mint keyset as stored: its private keys are derived from the mint seed and <see cref="DerivationIndex"/>.</summary>
public sealed record MintKeysetRecord(string Id, string Unit, long DerivationIndex, ulong InputFeePpk, int MaxOrder, bool Active, DateTimeOffset CreatedAt);

/// <summary>A NUT-04 mint quote. States: UNPAID, PAID, ISSUED.</summary>
public sealed record MintQuoteRecord(
    string Id,
    string Method,
    string Request,
    string PaymentHash,
    ulong Amount,
    string Unit,
    string State,
    DateTimeOffset CreatedAt,
    DateTimeOffset ExpiresAt,
    DateTimeOffset? PaidAt = null,
    DateTimeOffset? IssuedAt = null,
    string? Pubkey = null);

/// <summary>A NUT-05 melt quote. States: UNPAID, PENDING (its inputs are locked while the invoice is paid), PAID.</summary>
public sealed record MeltQuoteRecord(
    string Id,
    string Method,
    string Request,
    string PaymentHash,
    ulong Amount,
    ulong FeeReserve,
    string Unit,
    string State,
    DateTimeOffset CreatedAt,
    DateTimeOffset ExpiresAt,
    DateTimeOffset UpdatedAt,
    ulong? InputAmount = null,
    ulong? InputFee = null,
    string? ChangeOutputs = null,
    ulong? FeePaid = null,
    string? PaymentPreimage = null,
    string? Change = null);

/// <summary>A proof entering the spent set (or locked as pending), keyed by <see cref="Y"/> (compressed hash_to_curve(secret)).</summary>
public sealed record SpentProofRecord(byte[] Y, string KeysetId, ulong Amount, string Secret, string C, string? Witness);

/// <summary>A blind signature the mint issued, keyed by the blinded message <see cref="B"/>.</summary>
public sealed record SignatureRecord(byte[] B, string KeysetId, ulong Amount, string C, string DleqE, string DleqS);

/// <summary>The state of a proof in the store; absent means unspent.</summary>
public sealed record ProofStateRecord(byte[] Y, string State, string? Witness);

/// <summary>Conversions for amounts stored as the bit pattern of an unsigned 64-bit value in a signed column.</summary>
internal static class StoredAmount
{
    public static long ToColumn(ulong amount) => unchecked((long)amount);

    public static ulong FromColumn(long value) => unchecked((ulong)value);
}
