using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using Coinop.Ecash;
using Coinop.Ecash.MintApi;
using Coinop.Ecash.MintClient;
using Coinop.Ecash.Tokens;
using Coinop.Ecash.Wallet;

/// <summary>
/// Money for a paid load run, minted at the market's own mint through its fake Lightning backend: many small tokens
/// (one per X-Cashu request) or one large balance key.
/// </summary>
internal static class PaidSetup
{
    public static async Task<int> RunAsync(string[] args)
    {
        string Get(string name) => Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length
            ? args[i + 1]
            : throw new ArgumentException($"{name} is required");
        var market = Get("--market").TrimEnd('/');
        var sats = ulong.Parse(Get("--sats"), CultureInfo.InvariantCulture);
        using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(2) };
        var mint = new CashuMintClient(http, market + "/mint");
        if (args[0] == "balance")
        {
            var token = TokenCodec.EncodeV4(new Token(mint.MintUrl, "sat", await MintAsync(mint, Amounts.Split(sats))));
            using var response = await http.PostAsJsonAsync(market + "/v1/balance/create", new { token });
            using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            Console.WriteLine(body.RootElement.GetProperty("api_key").GetString());
            return 0;
        }

        if (!Amounts.IsPowerOfTwo(sats))
        {
            throw new ArgumentException("--sats must be a power of two: each token is one proof");
        }

        var count = int.Parse(Get("--count"), CultureInfo.InvariantCulture);
        var lines = new List<string>(count);
        while (lines.Count < count)
        {
            var batch = Math.Min(1000, count - lines.Count); // the mint signs at most 1000 outputs per request
            foreach (var proof in await MintAsync(mint, Enumerable.Repeat(sats, batch)))
            {
                lines.Add(TokenCodec.EncodeV4(new Token(mint.MintUrl, "sat", [proof])));
            }
        }

        await File.WriteAllLinesAsync(Get("--out"), lines);
        return 0;
    }

    private static async Task<List<Proof>> MintAsync(CashuMintClient mint, IEnumerable<ulong> amounts)
    {
        var split = amounts.ToList();
        var quote = await mint.CreateMintQuoteAsync(split.Aggregate(0UL, (a, b) => a + b), CancellationToken.None);
        var active = await mint.GetActiveKeysetAsync(CancellationToken.None);
        var outputs = BlindedOutputs.Create(active.Id, split);
        var signed = await mint.MintAsync(new MintRequest(quote.Quote, [.. outputs.Select(o => o.Message)]), CancellationToken.None);
        return await mint.UnblindAsync(outputs, signed.Signatures, CancellationToken.None);
    }
}
