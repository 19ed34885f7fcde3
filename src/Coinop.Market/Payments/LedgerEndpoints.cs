using Coinop.Market.Hosting;
using Coinop.Market.Inference;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Coinop.Market.Payments;

/// <summary>
/// <c>GET /api/ledger/summary</c> (operator: see <see cref="Web.AdminAuth"/>): the
/// ledger's totals. <c>GET /api/payments/info</c> (public): what a client needs to pay and what a provider signs.
/// </summary>
internal static class LedgerEndpoints
{
    public static void Map(IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/api/ledger/summary", SummaryAsync);
        endpoints.MapGet("/api/payments/info", (PayerMints payerMints, MarketIdentity identity, MarketOptions market) => Results.Json(new
        {
            market_id = identity.MarketId,
            free = market.Free,
            mints = payerMints.AcceptedMints,
            unit = "sat",
            fee_percent = market.FeePercent,
        }));
    }

    private static async Task SummaryAsync(HttpContext http, Payouts payouts, MarketIdentity identity)
    {
        if (!Web.AdminAuth.IsAdmin(http.Request, identity.AdminToken))
        {
            await PaymentErrors.Unauthorized("send 'Authorization: Bearer <the token in the market's data directory, admin.token>'")
                .WriteResponseAsync(http.Response, ErrorShape.OpenAi, http.RequestAborted);
            return;
        }

        var s = await payouts.SummaryAsync(http.RequestAborted);
        await Results.Json(new
        {
            received_msat = s.ReceivedMsat,
            spent_msat = s.SpentMsat,
            refunded_msat = s.RefundedMsat,
            balances_msat = s.BalancesMsat,
            held_msat = s.HeldMsat,
            provider_earned_msat = s.ProviderEarnedMsat,
            owed_msat = s.OwedMsat,
            fee_msat = s.FeeMsat,
            paid_out_msat = s.PaidOutMsat,
        }).ExecuteAsync(http);
    }
}
