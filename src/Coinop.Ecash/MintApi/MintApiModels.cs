using System.Text.Json.Serialization;

namespace Coinop.Ecash.MintApi;

// The JSON bodies of the Cashu mint HTTP API (NUT-01..09, 12, 23), shared by the mint and the wallet's client.

/// <summary>A mint error: HTTP 400 with this body (NUT-00); codes from the NUT error table.</summary>
public sealed record ErrorResponse([property: JsonPropertyName("detail")] string Detail, [property: JsonPropertyName("code")] int Code);

public sealed record KeysetKeysResponse
{
    [JsonPropertyName("id")]
    public required string Id { get; init; }

    [JsonPropertyName("unit")]
    public required string Unit { get; init; }

    [JsonPropertyName("active")]
    public bool Active { get; init; }

    [JsonPropertyName("input_fee_ppk")]
    public ulong InputFeePpk { get; init; }

    [JsonPropertyName("final_expiry")]
    public long? FinalExpiry { get; init; }

    [JsonPropertyName("keys")]
    public required IReadOnlyDictionary<string, string> Keys { get; init; }
}

public sealed record KeysResponse([property: JsonPropertyName("keysets")] IReadOnlyList<KeysetKeysResponse> Keysets);

public sealed record KeysetInfo
{
    [JsonPropertyName("id")]
    public required string Id { get; init; }

    [JsonPropertyName("unit")]
    public required string Unit { get; init; }

    [JsonPropertyName("active")]
    public bool Active { get; init; }

    [JsonPropertyName("input_fee_ppk")]
    public ulong InputFeePpk { get; init; }

    [JsonPropertyName("final_expiry")]
    public long? FinalExpiry { get; init; }
}

public sealed record KeysetsResponse([property: JsonPropertyName("keysets")] IReadOnlyList<KeysetInfo> Keysets);

public sealed record SwapRequest(
    [property: JsonPropertyName("inputs")] IReadOnlyList<Proof> Inputs,
    [property: JsonPropertyName("outputs")] IReadOnlyList<BlindedMessage> Outputs);

public sealed record SignaturesResponse([property: JsonPropertyName("signatures")] IReadOnlyList<BlindSignature> Signatures);

/// <summary>Mint quote states (NUT-23).</summary>
public static class MintQuoteState
{
    public const string Unpaid = "UNPAID";
    public const string Paid = "PAID";
    public const string Issued = "ISSUED";
}

/// <summary>Melt quote states (NUT-05).</summary>
public static class MeltQuoteState
{
    public const string Unpaid = "UNPAID";
    public const string Pending = "PENDING";
    public const string Paid = "PAID";
}

/// <summary>Proof states (NUT-07).</summary>
public static class ProofState
{
    public const string Unspent = "UNSPENT";
    public const string Pending = "PENDING";
    public const string Spent = "SPENT";
}

public sealed record MintQuoteRequest
{
    [JsonPropertyName("amount")]
    public required ulong Amount { get; init; }

    [JsonPropertyName("unit")]
    public required string Unit { get; init; }

    [JsonPropertyName("description")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Description { get; init; }

    /// <summary>NUT-20: minting will need a signature by this key (compressed secp256k1, hex).</summary>
    [JsonPropertyName("pubkey")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Pubkey { get; init; }
}

public sealed record MintQuoteResponse
{
    [JsonPropertyName("quote")]
    public required string Quote { get; init; }

    [JsonPropertyName("request")]
    public required string Request { get; init; }

    [JsonPropertyName("amount")]
    public ulong Amount { get; init; }

    [JsonPropertyName("unit")]
    public required string Unit { get; init; }

    [JsonPropertyName("state")]
    public required string State { get; init; }

    [JsonPropertyName("expiry")]
    public long? Expiry { get; init; }

    [JsonPropertyName("pubkey")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Pubkey { get; init; }
}

public sealed record MintRequest(
    [property: JsonPropertyName("quote")] string Quote,
    [property: JsonPropertyName("outputs")] IReadOnlyList<BlindedMessage> Outputs,
    [property: JsonPropertyName("signature"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Signature = null);

public sealed record MeltQuoteRequest
{
    [JsonPropertyName("request")]
    public required string Request { get; init; }

    [JsonPropertyName("unit")]
    public required string Unit { get; init; }
}

public sealed record MeltQuoteResponse
{
    [JsonPropertyName("quote")]
    public required string Quote { get; init; }

    [JsonPropertyName("request")]
    public required string Request { get; init; }

    [JsonPropertyName("amount")]
    public ulong Amount { get; init; }

    [JsonPropertyName("unit")]
    public required string Unit { get; init; }

    [JsonPropertyName("fee_reserve")]
    public ulong FeeReserve { get; init; }

    [JsonPropertyName("state")]
    public required string State { get; init; }

    [JsonPropertyName("expiry")]
    public long Expiry { get; init; }

    [JsonPropertyName("payment_preimage")]
    public string? PaymentPreimage { get; init; }

    [JsonPropertyName("change")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<BlindSignature>? Change { get; init; }
}

public sealed record MeltRequest
{
    [JsonPropertyName("quote")]
    public required string Quote { get; init; }

    [JsonPropertyName("inputs")]
    public required IReadOnlyList<Proof> Inputs { get; init; }

    [JsonPropertyName("outputs")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<BlindedMessage>? Outputs { get; init; }
}

public sealed record CheckStateRequest([property: JsonPropertyName("Ys")] IReadOnlyList<string> Ys);

public sealed record ProofStateEntry(
    [property: JsonPropertyName("Y")] string Y,
    [property: JsonPropertyName("state")] string State,
    [property: JsonPropertyName("witness")] string? Witness);

public sealed record CheckStateResponse([property: JsonPropertyName("states")] IReadOnlyList<ProofStateEntry> States);

public sealed record RestoreRequest([property: JsonPropertyName("outputs")] IReadOnlyList<BlindedMessage> Outputs);

public sealed record RestoreResponse(
    [property: JsonPropertyName("outputs")] IReadOnlyList<BlindedMessage> Outputs,
    [property: JsonPropertyName("signatures")] IReadOnlyList<BlindSignature> Signatures);

/// <summary>NUT-06 mint info; <see cref="Nuts"/> maps a NUT number to its settings object.</summary>
public sealed record InfoResponse
{
    [JsonPropertyName("name")]
    public string? Name { get; init; }

    [JsonPropertyName("pubkey")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Pubkey { get; init; }

    [JsonPropertyName("version")]
    public string? Version { get; init; }

    [JsonPropertyName("description")]
    public string? Description { get; init; }

    [JsonPropertyName("time")]
    public long? Time { get; init; }

    [JsonPropertyName("nuts")]
    public IReadOnlyDictionary<string, System.Text.Json.Nodes.JsonObject>? Nuts { get; init; }
}

/// <summary>Error codes of the NUT error table used by this code base.</summary>
public static class CashuErrorCode
{
    /// <summary>Malformed request (not in the NUT table; the generic code Cashu mints use).</summary>
    public const int BadRequest = 0;
    public const int ProofVerificationFailed = 10001;
    public const int ProofsAlreadySpent = 11001;
    public const int ProofsPending = 11002;
    public const int OutputsAlreadySigned = 11003;
    public const int OutputsPending = 11004;
    public const int TransactionNotBalanced = 11005;
    public const int AmountOutOfLimitRange = 11006;
    public const int DuplicateInputs = 11007;
    public const int DuplicateOutputs = 11008;
    public const int MultipleUnits = 11009;
    public const int InputsOutputsUnitMismatch = 11010;
    public const int AmountlessInvoiceNotSupported = 11011;
    public const int AmountMismatch = 11012;
    public const int UnitNotSupported = 11013;
    public const int MaxInputsExceeded = 11014;
    public const int MaxOutputsExceeded = 11015;
    public const int KeysetUnknown = 12001;
    public const int KeysetInactive = 12002;
    public const int QuoteNotPaid = 20001;
    public const int QuoteAlreadyIssued = 20002;
    public const int MintingDisabled = 20003;
    public const int LightningPaymentFailed = 20004;
    public const int QuotePending = 20005;
    public const int InvoiceAlreadyPaid = 20006;
    public const int QuoteExpired = 20007;
    public const int MintSignatureInvalid = 20008;
    public const int MintPubkeyInvalid = 20009;
}

/// <summary>A Cashu protocol error: raised by the mint (served as 400) and by the wallet's client (received).</summary>
public sealed class CashuException(int code, string detail) : Exception(detail)
{
    public int Code { get; } = code;

    public string Detail => Message;
}
