using System.Text.Json;
using System.Text.Json.Nodes;
using Coinop.Ecash.Crypto;
using Coinop.Ecash.Tokens;

namespace Coinop.Ecash.Tests.Vectors;

public class Nut00VectorTests
{
    private static readonly List<VectorBlock> Blocks = VectorFile.Load("00-tests.md");

    [Fact]
    public void Hash_to_curve_matches_every_vector()
    {
        var block = Blocks.Under("Hash-to-curve function").Single();
        var lines = block.Lines().ToList();
        var checkedCount = 0;
        for (var i = 0; i < lines.Count; i++)
        {
            if (lines[i].StartsWith("Message:", StringComparison.Ordinal))
            {
                var message = Convert.FromHexString(lines[i]["Message:".Length..].Trim());
                var point = lines[i + 1]["Point:".Length..].Trim();
                Assert.Equal(point, Secp256k1.CompressedHex(Bdhke.HashToCurve(message)));
                checkedCount++;
            }
        }

        Assert.Equal(3, checkedCount);
    }

    [Fact]
    public void Blinded_messages_match_every_vector()
    {
        var block = Blocks.Under("Blinded messages").Single();
        var cases = SplitCases(block);
        Assert.NotEmpty(cases);
        foreach (var c in cases)
        {
            var y = Bdhke.HashToCurve(Convert.FromHexString(c["x"]));
            var b = Bdhke.Blind(y, Secp256k1.ParseScalar(c["r"]));
            Assert.Equal(c["B_"], Secp256k1.CompressedHex(b));
        }
    }

    [Fact]
    public void Blinded_signatures_match_every_vector()
    {
        var block = Blocks.Under("Blinded signatures").Single();
        var cases = SplitCases(block);
        Assert.Equal(2, cases.Count);
        foreach (var c in cases)
        {
            var k = Secp256k1.ParseScalar(c["mint private key"]);
            Assert.Equal(c["C_"], Secp256k1.CompressedHex(Bdhke.Sign(k, Secp256k1.ParsePoint(c["B_"]))));
        }
    }

    [Fact]
    public void Token_v3_serialization_vector_decodes_to_its_json_and_reencodes()
    {
        var blocks = Blocks.Under("Serialization of TokenV3").ToList();
        var json = blocks[0].Json();
        var serialized = blocks[1].Lines().Single();
        var token = TokenCodec.Decode(serialized);
        Assert.True(JsonNode.DeepEquals(json, V3Json(token)));
        Assert.Equal(serialized.TrimEnd('='), TokenCodec.EncodeV3(token));
    }

    [Fact]
    public void Token_v3_deserialization_vectors_reject_bad_prefixes_and_accept_padding_both_ways()
    {
        var blocks = Blocks.Under("Deserialization of TokenV3").ToList();
        var incorrect = blocks[0].Lines().ToList();
        Assert.Equal(2, incorrect.Count);
        foreach (var bad in incorrect)
        {
            Assert.Throws<FormatException>(() => TokenCodec.Decode(bad));
        }

        Assert.Equal(10UL, TokenCodec.Decode(blocks[1].Lines().Single()).Amount);
        var both = blocks[2].Lines().ToList();
        Assert.Equal(2, both.Count);
        Assert.Contains('=', both[0]);
        Assert.Equal(TokenCodec.Decode(both[0]), TokenCodec.Decode(both[1]), TokenEquality.Instance);
        Assert.Equal("Thank you very much.", TokenCodec.Decode(both[1]).Memo);
    }

    [Fact]
    public void Token_v4_vectors_decode_to_their_json_and_encode_to_the_same_string()
    {
        var sections = new[] { "Single keyset", "Multiple keysets" };
        foreach (var heading in sections)
        {
            var blocks = Blocks.Under(heading).ToList();
            var json = blocks[0].Json();
            var serialized = blocks[1].Lines().Single();
            var token = TokenCodec.Decode(serialized);
            Assert.True(JsonNode.DeepEquals(json, V4Json(token)), heading);
            var fromJson = FromV4Json(json);
            Assert.Equal(serialized.TrimEnd('='), TokenCodec.EncodeV4(fromJson));
        }
    }

    [Fact]
    public void Raw_binary_token_vector_round_trips()
    {
        var blocks = Blocks.Under("TokenV4").ToList();
        var json = blocks[0].Json();
        // The raw bytes are inline prose (not a code block): read them from the file text.
        var text = VectorFile.Text("00-tests.md");
        var hex = System.Text.RegularExpressions.Regex.Match(text, @"`h'(6372617742[0-9a-f]+)'`").Groups[1].Value;
        Assert.NotEmpty(hex);
        var token = TokenCodec.DecodeBinary(Convert.FromHexString(hex));
        Assert.True(JsonNode.DeepEquals(json, V4Json(token)));
        Assert.Equal(hex, Convert.ToHexStringLower(TokenCodec.EncodeBinaryV4(FromV4Json(json))));
    }

    private static List<Dictionary<string, string>> SplitCases(VectorBlock block)
    {
        var cases = new List<Dictionary<string, string>>();
        foreach (var part in block.Body.Split("# Test", StringSplitOptions.RemoveEmptyEntries))
        {
            var fields = new VectorBlock("", "", "", part).Fields();
            if (fields.Count > 0)
            {
                cases.Add(fields);
            }
        }

        return cases;
    }

    internal static JsonNode V3Json(Token token)
    {
        var o = new JsonObject
        {
            ["token"] = new JsonArray(new JsonObject
            {
                ["mint"] = token.Mint,
                ["proofs"] = JsonSerializer.SerializeToNode(token.Proofs),
            }),
            ["unit"] = token.Unit,
        };
        if (token.Memo is not null)
        {
            o["memo"] = token.Memo;
        }

        return o;
    }

    internal static JsonNode V4Json(Token token)
    {
        var groups = new JsonArray();
        foreach (var g in token.Proofs.GroupBy(p => p.Id))
        {
            var proofs = new JsonArray();
            foreach (var p in g)
            {
                proofs.Add(new JsonObject { ["a"] = p.Amount, ["s"] = p.Secret, ["c"] = p.C });
            }

            groups.Add(new JsonObject { ["i"] = g.Key, ["p"] = proofs });
        }

        var o = new JsonObject { ["t"] = groups, ["m"] = token.Mint, ["u"] = token.Unit };
        if (token.Memo is not null)
        {
            o["d"] = token.Memo;
        }

        return o;
    }

    internal static Token FromV4Json(JsonNode json)
    {
        var proofs = new List<Proof>();
        foreach (var g in json["t"]!.AsArray())
        {
            foreach (var p in g!["p"]!.AsArray())
            {
                proofs.Add(new Proof
                {
                    Amount = p!["a"]!.GetValue<ulong>(),
                    Id = g["i"]!.GetValue<string>(),
                    Secret = p["s"]!.GetValue<string>(),
                    C = p["c"]!.GetValue<string>(),
                });
            }
        }

        return new Token(json["m"]!.GetValue<string>(), json["u"]!.GetValue<string>(), proofs, json["d"]?.GetValue<string>());
    }
}

/// <summary>Token equality by content (records compare lists by reference).</summary>
public sealed class TokenEquality : IEqualityComparer<Token>
{
    public static readonly TokenEquality Instance = new();

    public bool Equals(Token? x, Token? y) =>
        x is not null && y is not null && x.Mint == y.Mint && x.Unit == y.Unit && x.Memo == y.Memo && x.Proofs.SequenceEqual(y.Proofs);

    public int GetHashCode(Token obj) => HashCode.Combine(obj.Mint, obj.Unit, obj.Proofs.Count);
}
