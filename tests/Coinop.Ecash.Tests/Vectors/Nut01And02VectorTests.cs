using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Coinop.Ecash.Keysets;

namespace Coinop.Ecash.Tests.Vectors;

public class Nut01And02VectorTests
{
    [Fact]
    public void Nut01_rejects_the_invalid_keysets_and_accepts_the_valid_ones()
    {
        var rejected = 0;
        var accepted = 0;
        var mode = "";
        foreach (var block in VectorFile.Load("01-tests.md").Where(b => b.Language == "json"))
        {
            mode = block.Prose.Contains("should be rejected", StringComparison.Ordinal) ? "reject"
                : block.Prose.Contains("should be accepted", StringComparison.Ordinal) ? "accept"
                : mode;
            var keys = Keys(block.Json());
            var ok = KeysetKeys.TryParse(keys, out var parsed, out var error);
            if (mode == "reject")
            {
                Assert.False(ok, block.Body);
                Assert.NotEmpty(error);
                rejected++;
            }
            else
            {
                Assert.True(ok, error);
                Assert.Equal(keys.Count, parsed!.Points.Count);
                accepted++;
            }
        }

        Assert.Equal(2, rejected);
        Assert.Equal(2, accepted);
    }

    [Fact]
    public void Nut01_accepts_the_amount_two_to_the_sixty_third()
    {
        var big = VectorFile.Load("01-tests.md").Where(b => b.Language == "json").Last();
        var parsed = KeysetKeys.Parse(Keys(big.Json()));
        Assert.True(parsed.Points.ContainsKey(9223372036854775808UL));
    }

    [Fact]
    public void Nut02_version_1_ids_match()
    {
        var blocks = VectorFile.Load("02-tests.md").Where(b => b.Heading == "Version 1").ToList();
        Assert.Equal(2, blocks.Count);
        foreach (var block in blocks)
        {
            var id = Regex.Match(block.Prose, "Keyset id: `([0-9a-f]+)`").Groups[1].Value;
            var keys = KeysetKeys.Parse(Keys(block.Json()));
            Assert.Equal(id, KeysetId.DeriveV1(keys.Hex));
            Assert.True(keys.Matches(id, "sat", 0, null));
            Assert.True(KeysetId.IsWellFormed(id));
        }
    }

    [Fact]
    public void Nut02_version_2_ids_match()
    {
        var blocks = VectorFile.Load("02-tests.md").Where(b => b.Heading.StartsWith("Vector ", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, blocks.Count);
        foreach (var block in blocks)
        {
            string? Field(string name) => Regex.Match(block.Prose, $@"- {name}: `([^`]+)`") is { Success: true } m ? m.Groups[1].Value : null;
            var id = Field("Keyset id")!;
            var fee = ulong.Parse(Field("Input fee ppk") ?? "0", CultureInfo.InvariantCulture);
            long? expiry = Field("Final expiry") is { } e ? long.Parse(e, CultureInfo.InvariantCulture) : null;
            var keys = KeysetKeys.Parse(Keys(block.Json()));
            Assert.Equal(id, KeysetId.DeriveV2(keys.Hex, Field("Unit")!, fee, expiry));
            Assert.True(keys.Matches(id, Field("Unit")!, fee, expiry));
            Assert.True(KeysetId.IsWellFormed(id));
            Assert.Equal(id[..16], KeysetId.Short(id));
        }
    }

    private static Dictionary<string, string> Keys(JsonNode json) =>
        json.AsObject().ToDictionary(p => p.Key, p => p.Value!.GetValue<string>());
}
