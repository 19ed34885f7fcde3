using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Coinop.Ecash;
using Coinop.Ecash.MintApi;
using Coinop.Ecash.Wallet;
using NBitcoin.Secp256k1;

namespace Coinop.Market.Tests.Mint;

/// <summary>NUT-20: a mint quote made with a pubkey is minted only with a signature by its key.</summary>
public class Nut20MintTests
{
    [Fact]
    public async Task A_quote_with_a_pubkey_mints_only_with_a_valid_signature_and_bad_pubkeys_are_refused()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await TestMarket.StartAsync();
        using var key = ECPrivKey.Create(RandomNumberGenerator.GetBytes(32));
        using var stranger = ECPrivKey.Create(RandomNumberGenerator.GetBytes(32));
        var pub = Convert.ToHexStringLower(key.CreatePubKey().ToBytes(true));

        using (var bad = await market.Http.PostAsJsonAsync(market.MintUrl + "/v1/mint/quote/bolt11", new { amount = 8, unit = "sat", pubkey = "02" + new string('0', 64) }, ct))
        {
            Assert.Equal(CashuErrorCode.MintPubkeyInvalid, JsonNode.Parse(await bad.Content.ReadAsStringAsync(ct))!["code"]!.GetValue<int>());
        }

        using var created = await market.Http.PostAsJsonAsync(market.MintUrl + "/v1/mint/quote/bolt11", new { amount = 8, unit = "sat", pubkey = pub }, ct);
        var quote = JsonNode.Parse(await created.Content.ReadAsStringAsync(ct))!;
        Assert.Equal(pub, quote["pubkey"]!.GetValue<string>());
        var id = quote["quote"]!.GetValue<string>();
        Assert.Equal(MintQuoteState.Paid, (await market.Mint.GetMintQuoteAsync(id, ct)).State);

        var outputs = BlindedOutputs.Create((await market.Mint.GetActiveKeysetAsync(ct)).Id, Amounts.Split(8));
        var messages = outputs.Select(o => o.Message).ToList();
        var bs = messages.Select(m => m.B).ToList();
        await CashuAssert.FailsWith(CashuErrorCode.MintSignatureInvalid, () => market.Mint.MintAsync(new MintRequest(id, messages), ct));
        await CashuAssert.FailsWith(CashuErrorCode.MintSignatureInvalid, () => market.Mint.MintAsync(new MintRequest(id, messages, Nut20.Sign(id, bs, stranger)), ct));
        var minted = await market.Mint.MintAsync(new MintRequest(id, messages, Nut20.Sign(id, bs, key)), ct);
        Assert.Equal(8UL, (await market.Mint.UnblindAsync(outputs, minted.Signatures, ct)).Aggregate(0UL, (s, p) => s + p.Amount));
        Assert.True((await market.Mint.GetInfoAsync(ct)).Nuts!["20"]["supported"]!.GetValue<bool>());
    }
}
