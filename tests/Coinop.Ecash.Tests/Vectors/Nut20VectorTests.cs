using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Coinop.Ecash.MintApi;
using NBitcoin.Secp256k1;

namespace Coinop.Ecash.Tests.Vectors;

/// <summary>NUT-20's official vectors (<c>cashu-nuts/20-test.md</c>): the message to sign, a valid and an invalid signature.</summary>
public class Nut20VectorTests
{
    private const string Pubkey = "03d56ce4e446a85bbdaa547b4ec2b073d40ff802831352b8272b7dd7a4de5a7cac";

    [Fact]
    public void The_valid_vector_verifies_the_invalid_one_does_not_and_the_message_matches()
    {
        var blocks = VectorFile.Load("20-test.md");
        var requests = blocks.Where(b => b.Language == "json").Select(b => b.Json()).ToList();
        var message = blocks.Single(b => b.Language.Length == 0).Body.Trim().Trim('[', ']').Split(',').Select(x => byte.Parse(x.Trim(), System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(2, requests.Count);

        static (string Quote, List<string> Bs, string Signature) Read(JsonNode r) =>
            (r["quote"]!.GetValue<string>(), [.. r["outputs"]!.AsArray().Select(o => o!["B_"]!.GetValue<string>())], r["signature"]!.GetValue<string>());

        var (quote, bs, valid) = Read(requests[0]);
        Assert.Equal(message, Nut20.Message(quote, bs));
        Assert.True(Nut20.Verify(quote, bs, Pubkey, valid));
        var (quote2, bs2, invalid) = Read(requests[1]);
        Assert.False(Nut20.Verify(quote2, bs2, Pubkey, invalid));
        Assert.False(Nut20.Verify(quote, bs[..^1], Pubkey, valid)); // an output swapped out breaks it
        Assert.False(Nut20.Verify(quote, bs, Pubkey, null));
        Assert.False(Nut20.Verify(quote, bs, "02zz", valid));
    }

    [Fact]
    public void A_wallet_signature_verifies()
    {
        using var key = ECPrivKey.Create(RandomNumberGenerator.GetBytes(32));
        var pub = Convert.ToHexStringLower(key.CreatePubKey().ToBytes(true));
        Assert.True(Nut20.IsValidPubkey(pub));
        var signature = Nut20.Sign("q1", ["02aa", "03bb"], key);
        Assert.True(Nut20.Verify("q1", ["02aa", "03bb"], pub, signature));
        Assert.False(Nut20.Verify("q2", ["02aa", "03bb"], pub, signature));
    }
}
