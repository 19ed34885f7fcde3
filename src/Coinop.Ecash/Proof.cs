using System.Text.Json.Serialization;

namespace Coinop.Ecash;

/// <summary>A NUT-12 DLEQ proof as hex on the wire; <see cref="R"/> (the blinding factor) only travels wallet to wallet.</summary>
public sealed record DleqProof
{
    [JsonPropertyName("e")]
    public required string E { get; init; }

    [JsonPropertyName("s")]
    public required string S { get; init; }

    [JsonPropertyName("r")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? R { get; init; }
}

/// <summary>An ecash note (NUT-00 <c>Proof</c>): amount, keyset, secret and the unblinded signature <c>C</c>.</summary>
public sealed record Proof
{
    [JsonPropertyName("amount")]
    public required ulong Amount { get; init; }

    [JsonPropertyName("id")]
    public required string Id { get; init; }

    [JsonPropertyName("secret")]
    public required string Secret { get; init; }

    [JsonPropertyName("C")]
    public required string C { get; init; }

    [JsonPropertyName("dleq")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public DleqProof? Dleq { get; init; }

    [JsonPropertyName("witness")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Witness { get; init; }
}

/// <summary>An output the wallet asks the mint to sign (NUT-00 <c>BlindedMessage</c>).</summary>
public sealed record BlindedMessage
{
    [JsonPropertyName("amount")]
    public required ulong Amount { get; init; }

    [JsonPropertyName("id")]
    public required string Id { get; init; }

    [JsonPropertyName("B_")]
    public required string B { get; init; }

    [JsonPropertyName("witness")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Witness { get; init; }
}

/// <summary>The mint's signature on an output (NUT-00 <c>BlindSignature</c>), with its DLEQ proof.</summary>
public sealed record BlindSignature
{
    [JsonPropertyName("amount")]
    public required ulong Amount { get; init; }

    [JsonPropertyName("id")]
    public required string Id { get; init; }

    [JsonPropertyName("C_")]
    public required string C { get; init; }

    [JsonPropertyName("dleq")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public DleqProof? Dleq { get; init; }
}
