using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Coinop.Ecash;
using Coinop.Ecash.MintApi;
using Coinop.Ecash.Wallet;
using Coinop.Market.Mint;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace Coinop.Market.Tests.Mint;

/// <summary>Every kind of bad request gets HTTP 400 with a NUT-00 error body and the right code, never a 500.</summary>
public class MintBadInputTests
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.General);

    [Fact]
    public async Task Malformed_bodies_and_values_are_400_with_a_code()
    {
        await using var market = await TestMarket.StartAsync();
        var proofs = await market.MintProofsAsync(8, [4, 4]);
        var active = (await market.Mint.GetActiveKeysetAsync(TestContext.Current.CancellationToken)).Id;
        var good = BlindedOutputs.Create(active, [4, 4]).Select(o => o.Message).ToList();

        string Swap(IEnumerable<Proof> inputs, IEnumerable<BlindedMessage> outputs) => JsonSerializer.Serialize(new SwapRequest([.. inputs], [.. outputs]), Json);
        BlindedMessage Output(ulong amount, string? id = null, string? b = null) =>
            new() { Amount = amount, Id = id ?? active, B = b ?? BlindedOutputs.Create(active, [amount])[0].Message.B };

        var cases = new (string Name, string Path, string Body, int Code)[]
        {
            ("not JSON", "/v1/swap", "{", CashuErrorCode.BadRequest),
            ("JSON array", "/v1/swap", "[]", CashuErrorCode.BadRequest),
            ("missing fields", "/v1/swap", "{}", CashuErrorCode.BadRequest),
            ("null input", "/v1/swap", """{"inputs":[null],"outputs":[]}""", CashuErrorCode.BadRequest),
            ("null secret", "/v1/swap", """{"inputs":[{"amount":1,"id":"00","secret":null,"C":"02"}],"outputs":[]}""", CashuErrorCode.BadRequest),
            ("amount above 2^64", "/v1/swap", """{"inputs":[{"amount":18446744073709551616,"id":"00","secret":"s","C":"02"}],"outputs":[]}""", CashuErrorCode.BadRequest),
            ("negative amount", "/v1/swap", """{"inputs":[{"amount":-1,"id":"00","secret":"s","C":"02"}],"outputs":[]}""", CashuErrorCode.BadRequest),
            ("no inputs", "/v1/swap", Swap([], good), CashuErrorCode.BadRequest),
            ("bad point in outputs", "/v1/swap", Swap(proofs, [Output(4, b: "02" + new string('z', 64)), good[1]]), CashuErrorCode.BadRequest),
            ("point not on the curve", "/v1/swap", Swap(proofs, [Output(4, b: "02" + new string('f', 64)), good[1]]), CashuErrorCode.BadRequest),
            ("unknown output keyset", "/v1/swap", Swap(proofs, [Output(4, id: "01" + new string('a', 64)), good[1]]), CashuErrorCode.KeysetUnknown),
            ("unknown input keyset", "/v1/swap", Swap([proofs[0] with { Id = "00ffffffffffffff" }, proofs[1]], good), CashuErrorCode.KeysetUnknown),
            ("duplicate outputs", "/v1/swap", Swap(proofs, [good[0], good[0]]), CashuErrorCode.DuplicateOutputs),
            ("duplicate inputs", "/v1/swap", Swap([proofs[0], proofs[0]], good), CashuErrorCode.DuplicateInputs),
            ("output sum overflow", "/v1/swap", Swap(proofs, [Output(Amounts.MaxNote), Output(Amounts.MaxNote)]), CashuErrorCode.AmountOutOfLimitRange),
            ("output amount not a power of two", "/v1/swap", Swap(proofs, [Output(3), Output(5)]), CashuErrorCode.AmountOutOfLimitRange),
            ("unbalanced", "/v1/swap", Swap(proofs, [Output(8), Output(8)]), CashuErrorCode.TransactionNotBalanced),
            ("forged signature", "/v1/swap", Swap([proofs[0] with { C = proofs[1].C }, proofs[1]], good), CashuErrorCode.ProofVerificationFailed),
            ("wrong amount for signature", "/v1/swap", Swap([proofs[0] with { Amount = 8 }], [Output(8)]), CashuErrorCode.ProofVerificationFailed),
            ("spending condition secret", "/v1/swap", Swap([proofs[0] with { Secret = """["P2PK",{"nonce":"00","data":"02"}]""" }, proofs[1]], good), CashuErrorCode.ProofVerificationFailed),
            ("unsupported unit", "/v1/mint/quote/bolt11", """{"amount":10,"unit":"usd"}""", CashuErrorCode.UnitNotSupported),
            ("zero amount", "/v1/mint/quote/bolt11", """{"amount":0,"unit":"sat"}""", CashuErrorCode.AmountOutOfLimitRange),
            ("unknown mint quote", "/v1/mint/bolt11", JsonSerializer.Serialize(new MintRequest("nope", good), Json), CashuErrorCode.BadRequest),
            ("not an invoice", "/v1/melt/quote/bolt11", """{"request":"hello","unit":"sat"}""", CashuErrorCode.BadRequest),
            ("cut-off invoice", "/v1/melt/quote/bolt11", """{"request":"lnbc1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypq","unit":"sat"}""", CashuErrorCode.BadRequest),
            ("amountless invoice", "/v1/melt/quote/bolt11", $$"""{"request":"{{AmountlessInvoice}}","unit":"sat"}""", CashuErrorCode.AmountlessInvoiceNotSupported),
            ("testnet invoice", "/v1/melt/quote/bolt11", $$"""{"request":"{{TestnetInvoice}}","unit":"sat"}""", CashuErrorCode.BadRequest),
            ("unknown melt quote", "/v1/melt/bolt11", JsonSerializer.Serialize(new MeltRequest { Quote = "nope", Inputs = proofs }, Json), CashuErrorCode.BadRequest),
            ("bad Y", "/v1/checkstate", """{"Ys":["zz"]}""", CashuErrorCode.BadRequest),
            ("bad B_ in restore", "/v1/restore", """{"outputs":[{"amount":1,"id":"00","B_":"03"}]}""", CashuErrorCode.BadRequest),
        };

        foreach (var (name, path, body, code) in cases)
        {
            var (status, error) = await PostRawAsync(market, path, body);
            Assert.True(status == HttpStatusCode.BadRequest, $"{name}: HTTP {(int)status} {error}");
            Assert.True(code == error!["code"]!.GetValue<int>(), $"{name}: expected {code}, got {error}");
            Assert.False(string.IsNullOrWhiteSpace(error["detail"]!.GetValue<string>()), name);
        }

        // None of the bad swaps spent anything: the proofs still swap once, and then never again.
        var ct = TestContext.Current.CancellationToken;
        await market.Mint.SwapAsync(new SwapRequest(proofs, good), ct);
        await CashuAssert.FailsWith(CashuErrorCode.ProofsAlreadySpent,
            () => market.Mint.SwapAsync(new SwapRequest(proofs, [.. BlindedOutputs.Create(active, [4, 4]).Select(o => o.Message)]), ct));
        var other = await market.MintProofsAsync(8, [4, 4]);
        await CashuAssert.FailsWith(CashuErrorCode.OutputsAlreadySigned, () => market.Mint.SwapAsync(new SwapRequest(other, good), ct));
        await CashuAssert.FailsWith(CashuErrorCode.KeysetUnknown, () => market.Mint.GetKeysetKeysAsync("01" + new string('0', 64), ct));
        await CashuAssert.FailsWith(CashuErrorCode.KeysetUnknown, () => market.Mint.GetKeysetKeysAsync("../etc", ct));
    }

    [Fact]
    public async Task Unpaid_expired_and_already_issued_quotes_are_refused()
    {
        var ct = TestContext.Current.CancellationToken;
        var time = new FakeTimeProvider(DateTimeOffset.FromUnixTimeSeconds(1_800_000_000));
        await using var market = await TestMarket.StartAsync(services: s => s.AddSingleton<TimeProvider>(time));
        market.Lightning.AutoPay = false;
        var active = (await market.Mint.GetActiveKeysetAsync(ct)).Id;
        List<BlindedMessage> Outputs(ulong amount) => [.. BlindedOutputs.Create(active, Amounts.Split(amount)).Select(o => o.Message)];

        var unpaid = await market.Mint.CreateMintQuoteAsync(10, ct);
        Assert.Equal(time.GetUtcNow().AddSeconds(600).ToUnixTimeSeconds(), unpaid.Expiry);
        await CashuAssert.FailsWith(CashuErrorCode.QuoteNotPaid, () => market.Mint.MintAsync(new MintRequest(unpaid.Quote, Outputs(10)), ct));

        time.Advance(TimeSpan.FromSeconds(601));
        await CashuAssert.FailsWith(CashuErrorCode.QuoteExpired, () => market.Mint.MintAsync(new MintRequest(unpaid.Quote, Outputs(10)), ct));

        var paid = await market.Mint.CreateMintQuoteAsync(10, ct);
        var hash = Coinop.Ecash.Lightning.Bolt11Invoice.Parse(paid.Request).PaymentHashHex;
        market.Lightning.MarkPaid(hash);
        Assert.Equal(MintQuoteState.Paid, (await market.Mint.GetMintQuoteAsync(paid.Quote, ct)).State);
        await CashuAssert.FailsWith(CashuErrorCode.TransactionNotBalanced, () => market.Mint.MintAsync(new MintRequest(paid.Quote, Outputs(11)), ct));
        await market.Mint.MintAsync(new MintRequest(paid.Quote, Outputs(10)), ct);
        await CashuAssert.FailsWith(CashuErrorCode.QuoteAlreadyIssued, () => market.Mint.MintAsync(new MintRequest(paid.Quote, Outputs(10)), ct));

        // Melt quotes live 120 s.
        market.Lightning.AutoPay = true;
        var proofs = await market.MintProofsAsync(16, [1, 1, 2, 4, 8]);
        var invoice = market.Lightning.Invoice(5000);
        var melt = await market.Mint.CreateMeltQuoteAsync(invoice, ct);
        Assert.Equal(time.GetUtcNow().AddSeconds(120).ToUnixTimeSeconds(), melt.Expiry);
        await CashuAssert.FailsWith(CashuErrorCode.TransactionNotBalanced,
            () => market.Mint.MeltAsync(new MeltRequest { Quote = melt.Quote, Inputs = [.. proofs.Where(p => p.Amount == 1)] }, ct));
        time.Advance(TimeSpan.FromSeconds(121));
        await CashuAssert.FailsWith(CashuErrorCode.QuoteExpired, () => market.Mint.MeltAsync(new MeltRequest { Quote = melt.Quote, Inputs = proofs }, ct));
    }

    [Fact]
    public async Task Input_and_output_counts_are_limited()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var market = await TestMarket.StartAsync(services: s => s.Configure<MintOptions>(o =>
        {
            o.MaxInputs = 3;
            o.MaxOutputs = 3;
        }));
        var active = (await market.Mint.GetActiveKeysetAsync(ct)).Id;
        var three = await market.MintProofsAsync(7);
        await CashuAssert.FailsWith(CashuErrorCode.MaxOutputsExceeded,
            () => market.Mint.SwapAsync(new SwapRequest(three, [.. BlindedOutputs.Create(active, [1, 1, 1, 4]).Select(o => o.Message)]), ct));
        var more = await market.MintProofsAsync(1);
        await CashuAssert.FailsWith(CashuErrorCode.MaxInputsExceeded,
            () => market.Mint.SwapAsync(new SwapRequest([.. three, .. more], [.. BlindedOutputs.Create(active, [8]).Select(o => o.Message)]), ct));
    }

    /// <summary>BOLT 11's donation example: valid and signed, without an amount.</summary>
    private const string AmountlessInvoice = "lnbc1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdpl2pkx2ctnv5sxxmmwwd5kgetjypeh2ursdae8g6twvus8g6rfwvs8qun0dfjkxaq9qrsgq357wnc5r2ueh7ck6q93dj32dlqnls087fxdwk8qakdyafkq3yap9us6v52vjjsrvywa6rt52cm9r9zqt8r2t7mlcwspyetp5h2tztugp9lfyql";

    /// <summary>BOLT 11's testnet example (the mint's node is on mainnet).</summary>
    private const string TestnetInvoice = "lntb20m1pvjluezsp5zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zygshp58yjmdan79s6qqdhdzgynm4zwqd5d7xmw5fk98klysy043l2ahrqspp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqfpp3x9et2e20v6pu37c5d9vax37wxq72un989qrsgqdj545axuxtnfemtpwkc45hx9d2ft7x04mt8q7y6t0k2dge9e7h8kpy9p34ytyslj3yu569aalz2xdk8xkd7ltxqld94u8h2esmsmacgpghe9k8";

    private static async Task<(HttpStatusCode Status, JsonNode? Error)> PostRawAsync(TestMarket market, string path, string body)
    {
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        using var response = await market.Http.PostAsync(market.MintUrl + path, content, TestContext.Current.CancellationToken);
        var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        JsonNode? parsed = null;
        try
        {
            parsed = JsonNode.Parse(text);
        }
        catch (JsonException)
        {
        }

        return (response.StatusCode, parsed ?? JsonValue.Create(text));
    }
}
