using System.Security.Cryptography;
using Coinop.Ecash.Lightning;
using CsCheck;
using NBitcoin.Secp256k1;

namespace Coinop.Ecash.Tests.Vectors;

/// <summary>
/// The examples of BOLT 11 (<c>Vectors/bolt11/11-payment-encoding.md</c>, vendored with its CC-BY 4.0 licence note):
/// every valid example parses to the fields its breakdown names and to the signing key of the examples; every invalid
/// example is refused; the writer reproduces the examples byte for byte.
/// </summary>
public class Bolt11VectorTests
{
    private const string PayeeKey = "03e7156ae33b0a208d0744199163177e909e80176e55d97a2f221ede0f934dd9ad";
    private const string ExamplePrivateKey = "e126f68f7eafcc8b74f54d269fe206be715000f94dac067d1c04a8ca3b2db734";
    /// <summary>What (r, n - s) with the example's recovery flag recovers: high-S is accepted, and names another key.</summary>
    private const string HighSPayee = "02d0139ce7427d6dfffd26a326c18be754ef1e64672b42694ba5b23ef6e6e7803d";
    private const string ExampleHash = "0001020304050607080900010203040506070809000102030405060708090102";

    private static readonly DateTimeOffset ExampleTime = DateTimeOffset.FromUnixTimeSeconds(1496314658);

    public static (List<(string Title, string Invoice)> Valid, List<(string Title, string Invoice)> Invalid) Examples()
    {
        var lines = File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "Vectors", "bolt11", "11-payment-encoding.md"));
        var valid = new List<(string, string)>();
        var invalid = new List<(string, string)>();
        var section = 0; // 1: "# Examples", 2: "# Examples of Invalid Invoices"
        var title = "";
        foreach (var line in lines)
        {
            if (line.StartsWith("# ", StringComparison.Ordinal))
            {
                section = line == "# Examples" ? 1 : line == "# Examples of Invalid Invoices" ? 2 : 0;
            }
            else if (section > 0 && line.StartsWith("> #", StringComparison.Ordinal))
            {
                title = line.TrimStart('>', ' ', '#');
            }
            else if (section > 0 && line.StartsWith("> ", StringComparison.Ordinal) && line.Length > 40)
            {
                (section == 1 ? valid : invalid).Add((title, line[2..].Trim()));
            }
        }

        return (valid, invalid);
    }

    [Fact]
    public void Every_valid_example_parses_and_its_signature_names_the_examples_key()
    {
        var (valid, _) = Examples();
        Assert.True(valid.Count >= 14, $"only {valid.Count} valid examples found");
        foreach (var (title, text) in valid)
        {
            Assert.True(Bolt11Invoice.TryParse(text, out var invoice, out var error), $"'{title}': {error}");
            Assert.Equal(title.Contains("high-S", StringComparison.Ordinal) ? HighSPayee : PayeeKey, Convert.ToHexStringLower(invoice!.PayeeNodeId));
            Assert.Equal(32, invoice.PaymentSecret.Length);
        }
    }

    [Fact]
    public void Every_invalid_example_is_refused()
    {
        var (_, invalid) = Examples();
        Assert.True(invalid.Count >= 10, $"only {invalid.Count} invalid examples found");
        Assert.All(invalid, e => Assert.False(Bolt11Invoice.TryParse(e.Invoice, out _, out _), $"'{e.Title}' was accepted"));
    }

    [Fact]
    public void The_examples_fields_are_read_as_their_breakdowns_say()
    {
        var (valid, _) = Examples();
        Bolt11Invoice Find(string titleStart, string? prefix = null) =>
            Bolt11Invoice.Parse(valid.First(e => e.Title.StartsWith(titleStart, StringComparison.Ordinal) && (prefix is null || e.Invoice.StartsWith(prefix, StringComparison.Ordinal))).Invoice);

        var donation = Find("Please make a donation");
        Assert.Null(donation.AmountMsat);
        Assert.Equal(ExampleHash, donation.PaymentHashHex);
        Assert.Equal("Please consider supporting this project", donation.Description);
        Assert.Equal(ExampleTime, donation.Timestamp);
        Assert.Equal(TimeSpan.FromHours(1), donation.Expiry);
        Assert.Equal(Bolt11Network.Mainnet, donation.Network);

        var coffee = Find("Please send $3 for a cup of coffee");
        Assert.Equal(250_000_000UL, coffee.AmountMsat);
        Assert.Equal(250_000UL, coffee.AmountSatRoundedUp);
        Assert.Equal("1 cup coffee", coffee.Description);
        Assert.Equal(TimeSpan.FromSeconds(60), coffee.Expiry);
        Assert.Equal(ExampleTime + TimeSpan.FromSeconds(60), coffee.ExpiresAt);

        Assert.Equal("ナンセンス 1杯", Find("Please send 0.0025 BTC for a cup of nonsense").Description);

        var hashed = Find("Now send $24 for an entire list of things");
        Assert.Equal(2_000_000_000UL, hashed.AmountMsat);
        Assert.Null(hashed.Description);
        Assert.Equal("3925b6f67e2c340036ed12093dd44e0368df1b6ea26c53dbe4811f58fd5db8c1", Convert.ToHexStringLower(hashed.DescriptionHash!));

        Assert.Equal(Bolt11Network.Testnet, Find("The same, on testnet").Network);

        var pico = Bolt11Invoice.Parse(valid.Single(e => e.Invoice.StartsWith("lnbc9678785340p1", StringComparison.Ordinal)).Invoice);
        Assert.Equal(967_878_534UL, pico.AmountMsat);
        Assert.Equal(967_879UL, pico.AmountSatRoundedUp);
        Assert.Equal("462264ede7e14047e9b249da94fefc47f41f7d02ee9b091815a5506bc8abf75f", pico.PaymentHashHex);
        Assert.Equal(TimeSpan.FromSeconds(604800), pico.Expiry);
        Assert.Equal(10UL, pico.MinFinalCltvExpiryDelta);

        var upper = valid.Single(e => e.Title.StartsWith("Same, but all upper case", StringComparison.Ordinal)).Invoice;
        var lower = Bolt11Invoice.Parse(upper.ToLowerInvariant());
        Assert.Equal(lower.PaymentHashHex, Bolt11Invoice.Parse(upper).PaymentHashHex);
        Assert.Equal(2_500_000_000UL, lower.AmountMsat);

        var ignored = Find("Same, but including fields which must be ignored");
        Assert.Equal(ExampleHash, ignored.PaymentHashHex);
        Assert.Equal("coffee beans", ignored.Description);

        Assert.Equal(HighSPayee, Convert.ToHexStringLower(Find("Public-key recovery with high-S signature").PayeeNodeId));
    }

    [Fact]
    public void The_writer_reproduces_the_examples_with_the_examples_key()
    {
        var (valid, _) = Examples();
        using var key = ECPrivKey.Create(Convert.FromHexString(ExamplePrivateKey));
        var secret = Convert.FromHexString(new string('1', 64));
        var donation = Bolt11Writer.Encode(new Bolt11Fields
        {
            Timestamp = ExampleTime,
            PaymentHash = Convert.FromHexString(ExampleHash),
            PaymentSecret = secret,
            Description = "Please consider supporting this project",
            FeatureBits = [8, 14],
        }, key);
        Assert.Equal(valid.First(e => e.Title.StartsWith("Please make a donation", StringComparison.Ordinal)).Invoice, donation);

        var coffee = Bolt11Writer.Encode(new Bolt11Fields
        {
            AmountMsat = 250_000_000,
            Timestamp = ExampleTime,
            PaymentHash = Convert.FromHexString(ExampleHash),
            PaymentSecret = secret,
            Description = "1 cup coffee",
            Expiry = TimeSpan.FromSeconds(60),
            FeatureBits = [8, 14],
        }, key);
        Assert.Equal(valid.First(e => e.Title.StartsWith("Please send $3 for a cup of coffee", StringComparison.Ordinal)).Invoice, coffee);
    }

    [Fact]
    public void Written_invoices_read_back_and_no_mutation_of_one_throws()
    {
        using var key = ECPrivKey.Create(RandomNumberGenerator.GetBytes(32));
        var pub = Convert.ToHexStringLower(key.CreatePubKey().ToBytes(true));
        var gen = Gen.Select(Gen.ULong[1, 2_100_000_000_000_000_000], Gen.Long[0, 1L << 34], Gen.Byte.Array[32], Gen.String[0, 100], Gen.Int[1, 1_000_000], Gen.Enum<Bolt11Network>());
        gen.Sample((msat, seconds, hash, description, expiry, network) =>
        {
            var text = Bolt11Writer.Encode(new Bolt11Fields
            {
                Network = network,
                AmountMsat = msat,
                Timestamp = DateTimeOffset.FromUnixTimeSeconds(seconds),
                PaymentHash = hash,
                PaymentSecret = hash,
                Description = description,
                Expiry = TimeSpan.FromSeconds(expiry),
                MinFinalCltvExpiryDelta = 40,
            }, key);
            var invoice = Bolt11Invoice.Parse(text);
            Assert.Equal(msat, invoice.AmountMsat);
            Assert.Equal(network, invoice.Network);
            Assert.Equal(Convert.ToHexStringLower(hash), invoice.PaymentHashHex);
            Assert.Equal(description, invoice.Description);
            Assert.Equal(TimeSpan.FromSeconds(expiry), invoice.Expiry);
            Assert.Equal(pub, Convert.ToHexStringLower(invoice.PayeeNodeId));
        }, iter: 50);

        var sample = Bolt11Writer.Encode(new Bolt11Fields
        {
            AmountMsat = 1000,
            Timestamp = ExampleTime,
            PaymentHash = new byte[32],
            PaymentSecret = new byte[32],
            Description = "x",
        }, key);
        Gen.Select(Gen.Int[0, sample.Length - 1], Gen.Char["qpzry9x8gf2tvdw0s3jn54khce6mua7l1LNBC0:é\0"]).Sample((at, c) =>
        {
            var mutated = sample[..at] + c + sample[(at + 1)..];
            if (Bolt11Invoice.TryParse(mutated, out var parsed, out _) && mutated != sample)
            {
                // A mutation that still passes the checksum and the signature must not change what was signed.
                Assert.Equal(Convert.ToHexStringLower(parsed!.PaymentHash), Convert.ToHexStringLower(new byte[32]));
            }
        }, iter: 2000);
        Assert.False(Bolt11Invoice.TryParse(null, out _, out _));
        Assert.False(Bolt11Invoice.TryParse("", out _, out _));
        Assert.False(Bolt11Invoice.TryParse("lnbc1", out _, out _));
    }
}
