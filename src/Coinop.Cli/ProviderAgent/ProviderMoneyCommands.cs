using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Coinop.Cli.Shared;
using Coinop.Core.Identity;
using Coinop.Provider.Identity;
using NSec.Cryptography;

namespace Coinop.Cli.ProviderAgent;

/// <summary>
/// <c>coinop provider earnings</c> and <c>coinop provider payout</c>: a provider's money at a market, asked for with
/// requests signed by the provider's identity key (the one in its data directory).
/// </summary>
public static class ProviderMoneyCommands
{
    public static Command CreateEarnings(string defaultData)
    {
        var market = CliOptions.Market();
        var data = CliOptions.Data(defaultData, "Provider data directory (its identity key)");
        var json = new Option<bool>("--json") { Description = "Print the market's JSON answer" };
        var command = new Command("earnings", "Show what this provider earned at a market, was paid and is owed") { market, data, json };
        command.SetAction(async (parse, ct) =>
        {
            using var key = LoadKey(parse.GetValue(data)!);
            using var http = new HttpClient { BaseAddress = new Uri(parse.GetValue(market)! + "/"), Timeout = TimeSpan.FromSeconds(30) };
            var (status, body) = await SendSignedAsync(http, key, HttpMethod.Get, "/api/provider/earnings", null, ct);
            if (status != HttpStatusCode.OK)
            {
                throw new CliException($"{(int)status} {ApiErrorText.MessageOf(body)}");
            }

            if (parse.GetValue(json))
            {
                Console.WriteLine(body);
                return 0;
            }

            using var doc = JsonDocument.Parse(body);
            var e = doc.RootElement;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"Provider {e.GetProperty("provider_id").GetString()}: earned {Sats(e.GetProperty("earned_msat").GetInt64())}, paid out {Sats(e.GetProperty("paid_out_msat").GetInt64())}, owed {Sats(e.GetProperty("owed_msat").GetInt64())} ({e.GetProperty("payable_sat").GetInt64()} sat payable now)"));
            return 0;
        });
        return command;
    }

    public static Command CreatePayout(string defaultData)
    {
        var market = CliOptions.Market();
        var data = CliOptions.Data(defaultData, "Provider data directory (its identity key)");
        var amount = new Option<long?>("--amount") { Description = "Sats to pay out (default: every whole sat owed)" };
        var json = new Option<bool>("--json") { Description = "Print the market's JSON answer (token, amount, owed_msat)" };
        var invoice = new Option<string?>("--invoice") { Description = "Pay the earnings straight to this BOLT 11 Lightning invoice (through the market's mint)" };
        var command = new Command("payout", "Take this provider's earnings as a cashuB token any Cashu wallet can receive, or paid to a Lightning invoice")
        {
            market, data, amount, json, invoice,
        };
        command.SetAction(async (parse, ct) =>
        {
            if (parse.GetValue(amount) is < 1)
            {
                throw new CliException("--amount must be at least 1 sat", 2);
            }

            if (parse.GetValue(invoice) is { } bolt11)
            {
                if (parse.GetValue(amount) is not null)
                {
                    throw new CliException("--amount and --invoice do not go together: the invoice says the amount", 2);
                }

                return await ProviderInvoicePayout.RunAsync(parse.GetValue(market)!, parse.GetValue(data)!, bolt11, parse.GetValue(json), ct);
            }

            using var key = LoadKey(parse.GetValue(data)!);
            using var http = new HttpClient { BaseAddress = new Uri(parse.GetValue(market)! + "/"), Timeout = TimeSpan.FromSeconds(30) };
            var (status, body) = await SendSignedAsync(http, key, HttpMethod.Post, "/api/provider/payout", parse.GetValue(amount), ct);
            using var doc = JsonDocument.Parse(body.Length == 0 ? "{}" : body);
            // 409 with a token: a retry of ours after a lost answer; the market kept what it paid.
            if (status is HttpStatusCode.OK or HttpStatusCode.Conflict && doc.RootElement.TryGetProperty("token", out var token) && token.ValueKind == JsonValueKind.String)
            {
                if (parse.GetValue(json))
                {
                    Console.WriteLine(body);
                    return 0;
                }

                Console.WriteLine(token.GetString());
                if (doc.RootElement.TryGetProperty("amount", out var paid))
                {
                    await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                        $"Paid out {paid.GetInt64()} sat; {Sats(doc.RootElement.GetProperty("owed_msat").GetInt64())} still owed. Receive it with 'coinop wallet receive TOKEN'."));
                }

                return 0;
            }

            throw new CliException($"{(int)status} {ApiErrorText.MessageOf(body)}");
        });
        return command;
    }

    /// <summary>
    /// Sends one signed request (see <see cref="ProviderRequestAuth"/>). A network failure is retried with the SAME
    /// nonce, so a request the market already served is never served twice.
    /// </summary>
    internal static async Task<(HttpStatusCode Status, string Body)> SendSignedAsync(HttpClient http, Key key, HttpMethod method, string path, long? amount,
        CancellationToken cancellationToken)
    {
        var marketId = await MarketIdAsync(http, cancellationToken);
        var nonce = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var signedAt = TimeProvider.System.GetUtcNow().ToUnixTimeMilliseconds();
        var signature = SignatureAlgorithm.Ed25519.Sign(key, ProviderRequestAuth.SigningPayload(marketId, method.Method, path, amount, signedAt, nonce));
        for (var attempt = 1; ; attempt++)
        {
            using var request = new HttpRequestMessage(method, path.TrimStart('/'));
            request.Headers.Add(ProviderRequestAuth.KeyHeader, Convert.ToBase64String(key.PublicKey.Export(KeyBlobFormat.RawPublicKey)));
            request.Headers.Add(ProviderRequestAuth.TimestampHeader, signedAt.ToString(CultureInfo.InvariantCulture));
            request.Headers.Add(ProviderRequestAuth.NonceHeader, nonce);
            request.Headers.Add(ProviderRequestAuth.SignatureHeader, Convert.ToBase64String(signature));
            if (amount is { } sats)
            {
                request.Content = new StringContent(string.Create(CultureInfo.InvariantCulture, $$"""{"amount":{{sats}}}"""), Encoding.UTF8, "application/json");
            }

            try
            {
                using var response = await http.SendAsync(request, cancellationToken);
                return (response.StatusCode, await response.Content.ReadAsStringAsync(cancellationToken));
            }
            catch (HttpRequestException) when (attempt < 3)
            {
                await Task.Delay(TimeSpan.FromSeconds(attempt), cancellationToken);
            }
        }
    }

    private static async Task<string> MarketIdAsync(HttpClient http, CancellationToken cancellationToken)
    {
        using var response = await http.GetAsync("api/payments/info", cancellationToken);
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw new CliException($"{(int)response.StatusCode} {ApiErrorText.MessageOf(body)}");
        }

        using var doc = JsonDocument.Parse(body);
        return doc.RootElement.GetProperty("market_id").GetString() ?? throw new CliException("the market did not say its id");
    }

    /// <summary>The provider's Ed25519 key from its data directory (created by the first run of <c>coinop provider</c>).</summary>
    internal static Key LoadKey(string dataDir)
    {
        var path = Path.Combine(dataDir, ProviderIdentity.FileName);
        if (!File.Exists(path))
        {
            throw new CliException($"no provider identity at {path}: pass the --data directory the provider runs with");
        }

        return Key.TryImport(SignatureAlgorithm.Ed25519, File.ReadAllBytes(path), KeyBlobFormat.PkixPrivateKeyText, out var key) && key is not null
            ? key
            : throw new CliException($"{path} is not an Ed25519 private key");
    }

    private static string Sats(long msat) => string.Create(CultureInfo.InvariantCulture, $"{msat / 1000m:0.###} sat");
}
