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
        var command = new Command("wallet", "A Cashu wallet: mint, melt, balance, send, receive, history") { data };
        command.Subcommands.Add(CreateMint(data));
        command.Subcommands.Add(CreateMelt(data));
        command.Subcommands.Add(CreateBalance(data));
        command.Subcommands.Add(CreateSend(data));
        command.Subcommands.Add(CreateReceive(data));
        command.Subcommands.Add(CreateHistory(data));
        return command;
    }

    private static Command CreateMint(Option<string> data)
    {
        var amount = AmountArgument("Sats to mint");
        var mint = MintUrlOption("The market's URL (or any Cashu mint's)", required: true);
        var wait = new Option<int>("--wait") { Description = "Seconds to wait for the invoice to be paid", DefaultValueFactory = _ => 600 };
        var json = CliOptions.Json();
        var command = new Command("mint", "Mint ecash: shows a Lightning invoice (and its QR code), waits until it is paid, shows the balance") { amount, mint, wait, json };
        command.SetAction((parse, ct) => RunAsync(parse.GetValue(data)!, async wallet =>
        {
            var asJson = parse.GetValue(json);
            var sats = parse.GetValue(amount);
            var url = await wallet.ResolveMintUrlAsync(parse.GetValue(mint)!, ct);
            var quote = await CliProgress.RunAsync("Asking the mint for an invoice...", asJson, () => wallet.QuoteMintAsync(url, sats, ct));
            if (!asJson)
            {
                Console.WriteLine($"Invoice: {quote.Request}");
                if (quote.State == MintQuoteState.Unpaid)
                {
                    Console.WriteLine(TerminalQr.Render(quote.Request));
                }

                Console.Out.Flush();
            }

            var minted = await CliProgress.RunAsync("Waiting for the invoice to be paid...", asJson,
                () => wallet.FinishMintAsync(url, quote, sats, TimeSpan.FromSeconds(parse.GetValue(wait)), ct));
            var balance = (await wallet.BalancesAsync(ct)).FirstOrDefault(b => b.Mint == minted.Mint)?.Available ?? minted.Amount;
            if (asJson)
            {
                Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(new { amount_sat = minted.Amount, mint = minted.Mint, invoice = quote.Request, balance_sat = balance }));
                return 0;
            }

            Console.WriteLine($"Paid. Minted {minted.Amount} sat at {minted.Mint}");
            Console.WriteLine($"Balance at {minted.Mint}: {balance} sat");
            return 0;
        }, ct));
        return command;
    }

    private static Command CreateMelt(Option<string> data)
    {
        var invoice = new Argument<string>("invoice") { Description = "The BOLT 11 Lightning invoice to pay" };
        var mint = MintUrlOption("Pay with ecash of this mint (default: the one with the largest balance)", required: false);
        var json = CliOptions.Json();
        var command = new Command("melt", "Pay a Lightning invoice with the wallet's ecash (the fee reserve is shown first; unused reserve comes back as change)")
        {
            invoice, mint, json,
        };
        command.SetAction((parse, ct) => RunAsync(parse.GetValue(data)!, async wallet =>
        {
            var asJson = parse.GetValue(json);
            var offer = await wallet.QuoteMeltAsync(parse.GetValue(invoice)!, parse.GetValue(mint), ct);
            if (!asJson)
            {
                Console.WriteLine($"Paying {offer.Quote.Amount} sat with a fee reserve of up to {offer.Quote.FeeReserve} sat from {offer.Mint}");
                Console.Out.Flush();
            }

            var melted = await CliProgress.RunAsync("Paying the invoice...", asJson, () => wallet.MeltAsync(offer, ct));
            if (asJson)
            {
                Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(new
                {
                    state = melted.State,
                    amount_sat = melted.Amount,
                    fee_reserve_sat = offer.Quote.FeeReserve,
                    fee_paid_sat = melted.FeePaid,
                    change_sat = melted.Change,
                    preimage = melted.Preimage,
                    mint = melted.Mint,
                }));
            }
            else if (melted.State == MeltQuoteState.Paid)
            {
                Console.WriteLine($"Paid {melted.Amount} sat (fee {melted.FeePaid} sat, change kept {melted.Change} sat). Preimage: {melted.Preimage}");
            }
            else
            {
                Console.WriteLine($"The payment is {melted.State.ToLowerInvariant()}: the mint keeps the ecash locked until it settles; 'coinop wallet balance' picks up the change then");
            }

            return melted.State is MeltQuoteState.Paid or MeltQuoteState.Pending ? 0 : 1;
        }, ct));
        return command;
    }

    private static Option<string?> MintUrlOption(string description, bool required) => new("--mint", "--market")
    {
        Description = description,
        Required = required,
        CustomParser = r => Uri.TryCreate(r.Tokens[0].Value, UriKind.Absolute, out var u) && u.Scheme is "http" or "https"
            ? r.Tokens[0].Value
            : Fail(r, $"'{r.Tokens[0].Value}' is not an http(s) URL"),
    };

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
