using System.Net;
using Coinop.Cli.Shared;
using Coinop.Market.Workloads;

namespace Coinop.Cli.Workloads;

/// <summary>How the workload commands pay a paid market from the consumer's wallet and take refunds back into it.</summary>
internal static class WorkloadPayments
{
    /// <summary>The memo on every token a workload command sends.</summary>
    internal const string Memo = "coinop workload";

    /// <summary>
    /// Sends a request that a paid market may answer with 402: then pays the payment request from the wallet and sends
    /// it again with the token (<paramref name="token"/>, when given, pays at once). A paid attempt that fails gets its
    /// ecash back into the wallet (the market's change, or reclaimed) before the error is raised.
    /// </summary>
    internal static async Task<(WorkloadView View, MarketPayment? Payment)> PaidAsync(WorkloadClient client, string walletDir, ulong maxSat, HttpMethod method, string path,
        Func<HttpContent?> body, CancellationToken ct, MarketPayment? token = null)
    {
        using var mints = new HttpClient { Timeout = TimeSpan.FromMinutes(2) };
        var payment = token;
        var response = await client.SendRawAsync(method, path, body(), payment?.Token, null, ct);
        if (payment is null && response.StatusCode == HttpStatusCode.PaymentRequired)
        {
            payment = await MarketPayment.PayAsync(response, client.Http, walletDir, mints, Memo, maxSat, ct)
                ?? throw new CliException("the market asks for payment but names no amount");
            response.Dispose();
            response = await client.SendRawAsync(method, path, body(), payment.Token, null, ct);
        }

        using (response)
        {
            if (payment is null || response.IsSuccessStatusCode)
            {
                return (await WorkloadClient.ReadAsync(response, WorkloadJsonContext.Default.WorkloadView, ct), payment);
            }

            // Runs to the end even after Ctrl-C: the ecash is the consumer's money.
            var back = await payment.FinishAsync(MarketPayment.ChangeIn(response), completed: false, CancellationToken.None);
            Console.Error.WriteLine($"coinop: {back} of {payment.Amount} sat back into the wallet");
            return (await WorkloadClient.ReadAsync(response, WorkloadJsonContext.Default.WorkloadView, ct), payment);
        }
    }

    /// <summary>Takes a refund into the wallet and says what came back; a refund taken before is only reported.</summary>
    internal static async Task ReceiveRefundAsync(WorkloadClient client, string walletDir, RefundView refund)
    {
        if (refund.Token is not { } token)
        {
            Console.WriteLine($"refund     {refund.RefundMsat} msat (less than a sat: nothing to give back)");
            return;
        }

        using var mints = new HttpClient { Timeout = TimeSpan.FromMinutes(2) };
        try
        {
            var sats = await MarketPayment.ReceiveAsync(token, walletDir, mints, client.Http, CancellationToken.None);
            Console.WriteLine($"refund     {refund.RefundMsat} msat: {sats} sat back into the wallet");
        }
        catch (CliException)
        {
            if (!await IsSpentAsync(mints, token))
            {
                throw;
            }

            Console.WriteLine($"refund     {refund.RefundMsat} msat (already taken)");
        }
    }

    internal static async Task<bool> IsSpentAsync(HttpClient http, string token)
    {
        var decoded = Ecash.Tokens.TokenCodec.Decode(token);
        var mint = new Coinop.Ecash.MintClient.CashuMintClient(http, decoded.Mint);
        var states = await mint.CheckStateAsync([.. decoded.Proofs.Select(p => Convert.ToHexStringLower(Ecash.Crypto.Bdhke.Y(p.Secret)))], CancellationToken.None);
        return states.States.All(s => s.State == Ecash.MintApi.ProofState.Spent);
    }
}
