using System.CommandLine;
using Coinop.Cli.Shared;
using Coinop.Ecash.MintApi;
using Coinop.Wallet;
using Spectre.Console;

namespace Coinop.Cli.Wallet;

/// <summary><c>coinop wallet</c>: a Cashu wallet in <c>&lt;data&gt;/wallet.db</c> (mint, balance, send, receive, history).</summary>
public static class WalletCommands
{
    public static Command Create()
    {
        var data = CliOptions.Data(".coinop/wallet", "Wallet data directory (wallet.db)");
        data.Recursive = true;
        var command = new Command("wallet", "A Cashu wallet: mint, balance, send, receive, history") { data };
        command.Subcommands.Add(CreateMint(data));
        command.Subcommands.Add(CreateBalance(data));
        command.Subcommands.Add(CreateSend(data));
        command.Subcommands.Add(CreateReceive(data));
        command.Subcommands.Add(CreateHistory(data));
        return command;
    }

    private static Command CreateMint(Option<string> data)
    {
        var amount = AmountArgument("Sats to mint");
        var mint = new Option<string>("--mint")
        {
            Description = "The mint's URL (a Coinop market's base URL works too)",
            Required = true,
            CustomParser = r => Uri.TryCreate(r.Tokens[0].Value, UriKind.Absolute, out var u) && u.Scheme is "http" or "https"
                ? r.Tokens[0].Value
                : Fail(r, $"'{r.Tokens[0].Value}' is not an http(s) URL"),
        };
        var wait = new Option<int>("--wait") { Description = "Seconds to wait for the invoice to be paid", DefaultValueFactory = _ => 300 };
        var json = CliOptions.Json();
        var command = new Command("mint", "Mint ecash: pay a Lightning invoice (paid at once by a fake backend)") { amount, mint, wait, json };
        command.SetAction((parse, ct) => RunAsync(parse.GetValue(data)!, async wallet =>
        {
            var asJson = parse.GetValue(json);
            var url = await wallet.ResolveMintUrlAsync(parse.GetValue(mint)!, ct);
            string? invoiceText = null;
            var minted = await CliProgress.RunAsync("Asking the mint for an invoice...", asJson, status => wallet.MintAsync(url, parse.GetValue(amount), invoice =>
            {
                invoiceText = invoice;
                if (!asJson)
                {
                    Console.WriteLine($"Invoice: {invoice}");
                }

                status("Waiting for the invoice to be paid...");
            }, TimeSpan.FromSeconds(parse.GetValue(wait)), ct));
            if (asJson)
            {
                Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(new { amount_sat = minted.Amount, mint = minted.Mint, invoice = invoiceText }));
                return 0;
            }

            Console.WriteLine($"Paid. Minted {minted.Amount} sat at {minted.Mint}");
            return 0;
        }, ct));
        return command;
    }

    private static Command CreateBalance(Option<string> data)
    {
        var json = CliOptions.Json();
        var command = new Command("balance", "Show the balance per mint") { json };
        command.SetAction((parse, ct) => RunAsync(parse.GetValue(data)!, async wallet =>
        {
            try
            {
                await wallet.RefreshReservedAsync(ct); // tokens sent and since claimed leave the "in sent tokens" column
            }
            catch (HttpRequestException)
            {
                // A mint that cannot be reached now: show what the wallet knows.
            }

            var balances = await wallet.BalancesAsync(ct);
            var total = balances.Aggregate(0UL, (a, b) => a + b.Available);
            if (parse.GetValue(json))
            {
                Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(new
                {
                    total_sat = total,
                    mints = balances.Select(b => new { mint = b.Mint, available_sat = b.Available, pending_sat = b.Reserved }),
                }));
                return 0;
            }

            var table = new Table().AddColumn("Mint").AddColumn(new TableColumn("Available (sat)").RightAligned()).AddColumn(new TableColumn("In sent tokens (sat)").RightAligned());
            foreach (var b in balances)
            {
                table.AddRow(Markup.Escape(b.Mint), b.Available.ToString(System.Globalization.CultureInfo.InvariantCulture), b.Reserved.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            AnsiConsole.Write(table);
            Console.WriteLine($"Total: {total} sat");
            return 0;
        }, ct));
        return command;
    }

    private static Command CreateSend(Option<string> data)
    {
        var amount = AmountArgument("Sats to put in the token");
        var mint = new Option<string?>("--mint") { Description = "Send ecash of this mint (default: the one with the largest balance)" };
        var memo = new Option<string?>("--memo") { Description = "A note for the receiver" };
        var command = new Command("send", "Create a cashuB token (its proofs are reserved until claimed)") { amount, mint, memo };
        command.SetAction((parse, ct) => RunAsync(parse.GetValue(data)!, async wallet =>
        {
            Console.WriteLine(await wallet.SendAsync(parse.GetValue(amount), parse.GetValue(mint), ct, parse.GetValue(memo)));
            return 0;
        }, ct));
        return command;
    }

    private static Command CreateReceive(Option<string> data)
    {
        var token = new Argument<string>("token") { Description = "A cashuA or cashuB token" };
        var json = CliOptions.Json();
        var command = new Command("receive", "Receive a token: swap its proofs for fresh ones at its mint") { token, json };
        command.SetAction((parse, ct) => RunAsync(parse.GetValue(data)!, async wallet =>
        {
            var received = await wallet.ReceiveAsync(parse.GetValue(token)!, ct);
            Console.WriteLine(parse.GetValue(json) ? System.Text.Json.JsonSerializer.Serialize(new { amount_sat = received }) : $"Received {received} sat");
            return 0;
        }, ct));
        return command;
    }

    private static Command CreateHistory(Option<string> data)
    {
        var limit = new Option<int>("--limit") { Description = "How many entries", DefaultValueFactory = _ => 50 };
        var json = CliOptions.Json();
        var command = new Command("history", "Show what the wallet minted, sent and received") { limit, json };
        command.SetAction((parse, ct) => RunAsync(parse.GetValue(data)!, async wallet =>
        {
            if (parse.GetValue(json))
            {
                Console.WriteLine(System.Text.Json.JsonSerializer.Serialize((await wallet.HistoryAsync(parse.GetValue(limit), ct))
                    .Select(h => new { at = h.At, kind = h.Kind, amount_sat = h.Amount, fee_sat = h.Fee, mint = h.Mint })));
                return 0;
            }

            var table = new Table().AddColumn("When (UTC)").AddColumn("What").AddColumn(new TableColumn("Sat").RightAligned()).AddColumn(new TableColumn("Fee").RightAligned()).AddColumn("Mint");
            foreach (var h in await wallet.HistoryAsync(parse.GetValue(limit), ct))
            {
                table.AddRow(h.At.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture), h.Kind,
                    h.Amount.ToString(System.Globalization.CultureInfo.InvariantCulture), h.Fee.ToString(System.Globalization.CultureInfo.InvariantCulture), Markup.Escape(h.Mint));
            }

            AnsiConsole.Write(table);
            return 0;
        }, ct));
        return command;
    }

    private static Argument<ulong> AmountArgument(string description) => new("amount")
    {
        Description = description,
        CustomParser = r => ulong.TryParse(r.Tokens[0].Value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var v) && v > 0
            ? v
            : Fail<ulong>(r, $"'{r.Tokens[0].Value}' is not a positive whole number of sats"),
    };

    private static T Fail<T>(System.CommandLine.Parsing.ArgumentResult result, string message)
    {
        result.AddError(message);
        return default!;
    }

    private static string Fail(System.CommandLine.Parsing.ArgumentResult result, string message) => Fail<string>(result, message);

    /// <summary>Opens the wallet (finishing anything a previous run left in flight) and maps wallet errors to one-line CLI errors.</summary>
    private static async Task<int> RunAsync(string dataDir, Func<CashuWallet, Task<int>> action, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(2) };
        try
        {
            var wallet = await CashuWallet.OpenAsync(dataDir, http, TimeProvider.System, cancellationToken);
            return await action(wallet);
        }
        catch (CashuException ex)
        {
            throw new CliException($"the mint refused: {ex.Detail} (code {ex.Code})");
        }
        catch (Exception ex) when (ex is FormatException or InvalidOperationException or TimeoutException)
        {
            throw new CliException(ex.Message);
        }
    }
}
