using System.Formats.Cbor;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Coinop.Ecash.Tokens;

/// <summary>
/// Serializes tokens: V4 <c>cashuB</c> (CBOR, single mint, proofs grouped by keyset, short v2 ids) and V3
/// <c>cashuA</c> (JSON). Decoding accepts both versions, a <c>cashu:</c> URI prefix, either base64 alphabet and
/// missing or present padding. Malformed input raises <see cref="FormatException"/> with a clear reason.
/// </summary>
public static class TokenCodec
{
    private static readonly JsonSerializerOptions Json = new()
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.Strict,
    };

    /// <summary>Encodes a V4 token. Short keyset ids (8 bytes) by default, as the spec allows and wallets prefer.</summary>
    public static string EncodeV4(Token token, bool shortKeysetIds = true) => "cashuB" + Base64Url.Encode(EncodeV4Cbor(token, shortKeysetIds));

    private static byte[] EncodeV4Cbor(Token token, bool shortKeysetIds)
    {
        var w = new CborWriter(CborConformanceMode.Lax, convertIndefiniteLengthEncodings: false);
        w.WriteStartMap(token.Memo is null ? 3 : 4);
        w.WriteTextString("t");
        var groups = token.Proofs.GroupBy(p => shortKeysetIds ? Keysets.KeysetId.Short(p.Id) : p.Id).ToList();
        w.WriteStartArray(groups.Count);
        foreach (var g in groups)
        {
            w.WriteStartMap(2);
            w.WriteTextString("i");
            w.WriteByteString(HexBytes(g.Key, "keyset id"));
            w.WriteTextString("p");
            w.WriteStartArray(g.Count());
            foreach (var p in g)
            {
                WriteProof(w, p);
            }

            w.WriteEndArray();
            w.WriteEndMap();
        }

        w.WriteEndArray();
        if (token.Memo is not null)
        {
            w.WriteTextString("d");
            w.WriteTextString(token.Memo);
        }

        w.WriteTextString("m");
        w.WriteTextString(Token.NormalizeMintUrl(token.Mint));
        w.WriteTextString("u");
        w.WriteTextString(token.Unit);
        w.WriteEndMap();
        return w.Encode();
    }

    /// <summary>Encodes a (deprecated) V3 token; kept for wallets that only read V3.</summary>
    public static string EncodeV3(Token token)
    {
        var v3 = new V3Token
        {
            Token = [new V3Entry { Mint = Token.NormalizeMintUrl(token.Mint), Proofs = [.. token.Proofs] }],
            Unit = token.Unit,
            Memo = token.Memo,
        };
        return "cashuA" + Base64Url.Encode(JsonSerializer.SerializeToUtf8Bytes(v3, Json));
    }

    /// <summary>Decodes a <c>cashuA</c> or <c>cashuB</c> token.</summary>
    public static Token Decode(string text)
    {
        var s = (text ?? throw new FormatException("no token")).Trim();
        if (s.StartsWith("cashu:", StringComparison.OrdinalIgnoreCase) && !s.StartsWith("cashuA", StringComparison.Ordinal) && !s.StartsWith("cashuB", StringComparison.Ordinal))
        {
            s = s["cashu:".Length..];
        }

        if (s.Length < 7 || !s.StartsWith("cashu", StringComparison.Ordinal))
        {
            throw new FormatException("not a Cashu token: it must start with cashuA or cashuB");
        }

        if (!Base64Url.TryDecode(s[6..], out var bytes) || bytes.Length == 0)
        {
            throw new FormatException("the token is not valid base64");
        }

        return s[5] switch
        {
            'B' => DecodeV4(bytes),
            'A' => DecodeV3(bytes),
            _ => throw new FormatException($"token version '{s[5]}' is not supported (use cashuA or cashuB)"),
        };
    }

    /// <summary>The binary form (<c>craw</c> + version byte + CBOR), e.g. for NFC.</summary>
    public static byte[] EncodeBinaryV4(Token token) => [.. "crawB"u8, .. EncodeV4Cbor(token, shortKeysetIds: true)];

    public static Token DecodeBinary(ReadOnlySpan<byte> bytes) =>
        bytes.Length > 5 && bytes[..5].SequenceEqual("crawB"u8)
            ? DecodeV4(bytes[5..].ToArray())
            : throw new FormatException("not a binary V4 token: it must start with crawB");

    public static bool TryDecode(string text, out Token? token, out string error)
    {
        try
        {
            token = Decode(text);
            error = "";
            return true;
        }
        catch (FormatException ex)
        {
            token = null;
            error = ex.Message;
            return false;
        }
    }

    private static Token DecodeV3(byte[] json)
    {
        V3Token? v3;
        try
        {
            v3 = JsonSerializer.Deserialize<V3Token>(json, Json);
        }
        catch (JsonException ex)
        {
            throw new FormatException("the V3 token is not valid JSON: " + ex.Message, ex);
        }

        // Every field is the sender's: a null entry or proof is as malformed as a missing one.
        if (v3?.Token is not { Count: > 0 } entries || entries.Any(e => e is null || string.IsNullOrWhiteSpace(e.Mint) || e.Proofs is null))
        {
            throw new FormatException("the V3 token has no mint or no proofs");
        }

        var mints = entries.Select(e => Token.NormalizeMintUrl(e.Mint!)).Distinct().ToList();
        if (mints.Count != 1)
        {
            throw new FormatException("V3 tokens with proofs from several mints are not supported");
        }

        var proofs = entries.SelectMany(e => e.Proofs!).ToList();
        foreach (var p in proofs)
        {
            CheckProof(p);
        }

        return new Token(mints[0], v3.Unit ?? "sat", proofs, v3.Memo);
    }

    private static Token DecodeV4(byte[] cbor)
    {
        try
        {
            var r = new CborReader(cbor, CborConformanceMode.Lax);
            string? mint = null, unit = null, memo = null;
            var proofs = new List<Proof>();
            var count = r.ReadStartMap();
            for (var i = 0; count is null ? r.PeekState() != CborReaderState.EndMap : i < count; i++)
            {
                switch (r.ReadTextString())
                {
                    case "m":
                        mint = ReadOptionalText(r);
                        break;
                    case "u":
                        unit = ReadOptionalText(r);
                        break;
                    case "d":
                        memo = ReadOptionalText(r);
                        break;
                    case "t":
                        ReadArray(r, () => ReadKeysetGroup(r, proofs));
                        break;
                    default:
                        r.SkipValue();
                        break;
                }
            }

            r.ReadEndMap();
            if (string.IsNullOrWhiteSpace(mint) || unit is null || proofs.Count == 0)
            {
                throw new FormatException("the V4 token lacks its mint, unit or proofs");
            }

            return new Token(Token.NormalizeMintUrl(mint), unit, proofs, memo);
        }
        catch (Exception ex) when (ex is CborContentException or InvalidOperationException or OverflowException)
        {
            throw new FormatException("the V4 token is not valid CBOR: " + ex.Message, ex);
        }
    }

    private static void ReadKeysetGroup(CborReader r, List<Proof> proofs)
    {
        string? id = null;
        var group = new List<Func<string, Proof>>();
        ReadMap(r, key =>
        {
            switch (key)
            {
                case "i":
                    id = Convert.ToHexStringLower(r.ReadByteString());
                    break;
                case "p":
                    ReadArray(r, () => group.Add(ReadProof(r)));
                    break;
                default:
                    r.SkipValue();
                    break;
            }
        });
        if (id is null)
        {
            throw new FormatException("a keyset group of the V4 token has no id");
        }

        proofs.AddRange(group.Select(make => make(id)));
    }

    private static Func<string, Proof> ReadProof(CborReader r)
    {
        ulong? amount = null;
        string? secret = null, c = null, witness = null;
        DleqProof? dleq = null;
        ReadMap(r, key =>
        {
            switch (key)
            {
                case "a":
                    amount = r.ReadUInt64();
                    break;
                case "s":
                    secret = r.ReadTextString();
                    break;
                case "c":
                    c = Convert.ToHexStringLower(r.ReadByteString());
                    break;
                case "w":
                    witness = ReadOptionalText(r);
                    break;
                case "d" when r.PeekState() == CborReaderState.StartMap:
                    string? e = null, s = null, blinding = null;
                    ReadMap(r, k =>
                    {
                        switch (k)
                        {
                            case "e":
                                e = Convert.ToHexStringLower(r.ReadByteString());
                                break;
                            case "s":
                                s = Convert.ToHexStringLower(r.ReadByteString());
                                break;
                            case "r":
                                blinding = Convert.ToHexStringLower(r.ReadByteString());
                                break;
                            default:
                                r.SkipValue();
                                break;
                        }
                    });
                    dleq = e is not null && s is not null ? new DleqProof { E = e, S = s, R = blinding } : null;
                    break;
                default:
                    r.SkipValue();
                    break;
            }
        });
        if (amount is null || secret is null || c is null)
        {
            throw new FormatException("a proof of the V4 token lacks its amount, secret or signature");
        }

        return id =>
        {
            var p = new Proof { Amount = amount.Value, Id = id, Secret = secret, C = c, Dleq = dleq, Witness = witness };
            CheckProof(p);
            return p;
        };
    }

    private static void WriteProof(CborWriter w, Proof p)
    {
        w.WriteStartMap(3 + (p.Dleq is null ? 0 : 1) + (p.Witness is null ? 0 : 1));
        w.WriteTextString("a");
        w.WriteUInt64(p.Amount);
        w.WriteTextString("s");
        w.WriteTextString(p.Secret);
        w.WriteTextString("c");
        w.WriteByteString(HexBytes(p.C, "signature"));
        if (p.Dleq is { } d)
        {
            w.WriteTextString("d");
            w.WriteStartMap(d.R is null ? 2 : 3);
            w.WriteTextString("e");
            w.WriteByteString(HexBytes(d.E, "DLEQ e"));
            w.WriteTextString("s");
            w.WriteByteString(HexBytes(d.S, "DLEQ s"));
            if (d.R is not null)
            {
                w.WriteTextString("r");
                w.WriteByteString(HexBytes(d.R, "DLEQ r"));
            }

            w.WriteEndMap();
        }

        if (p.Witness is not null)
        {
            w.WriteTextString("w");
            w.WriteTextString(p.Witness);
        }

        w.WriteEndMap();
    }

    private static void CheckProof(Proof? p)
    {
        if (p is null || p.Amount == 0 || string.IsNullOrEmpty(p.Secret) || p.Id is null || !Crypto.Hex.TryDecode(p.Id, out _) || !Crypto.Hex.IsHex(p.C, 66))
        {
            throw new FormatException("the token holds a malformed proof");
        }

        // A DLEQ proof is two scalars (and the blinding factor between wallets), each 32 bytes.
        if (p.Dleq is { } d && (!Crypto.Hex.IsHex(d.E, 64) || !Crypto.Hex.IsHex(d.S, 64) || (d.R is not null && !Crypto.Hex.IsHex(d.R, 64))))
        {
            throw new FormatException("the token holds a malformed DLEQ proof");
        }
    }

    private static byte[] HexBytes(string hex, string what) =>
        Crypto.Hex.TryDecode(hex, out var b) ? b : throw new FormatException($"the {what} '{hex}' is not hex");

    internal static string? ReadOptionalText(CborReader r)
    {
        if (r.PeekState() is CborReaderState.Null or CborReaderState.SimpleValue)
        {
            r.SkipValue();
            return null;
        }

        return r.ReadTextString();
    }

    internal static void ReadMap(CborReader r, Action<string> onKey)
    {
        var count = r.ReadStartMap();
        for (var i = 0; count is null ? r.PeekState() != CborReaderState.EndMap : i < count; i++)
        {
            onKey(r.ReadTextString());
        }

        r.ReadEndMap();
    }

    internal static void ReadArray(CborReader r, Action onItem)
    {
        var count = r.ReadStartArray();
        for (var i = 0; count is null ? r.PeekState() != CborReaderState.EndArray : i < count; i++)
        {
            onItem();
        }

        r.ReadEndArray();
    }

    private sealed class V3Token
    {
        [JsonPropertyName("token")]
        public List<V3Entry>? Token { get; set; }

        [JsonPropertyName("unit")]
        public string? Unit { get; set; }

        [JsonPropertyName("memo")]
        public string? Memo { get; set; }
    }

    private sealed class V3Entry
    {
        [JsonPropertyName("mint")]
        public string? Mint { get; set; }

        [JsonPropertyName("proofs")]
        public List<Proof>? Proofs { get; set; }
    }
}
