using System.Globalization;
using Coinop.Market.Inference;
using Microsoft.AspNetCore.Http;

namespace Coinop.Market.Payments;

/// <summary>
/// Billing of a paid market. Before dispatch it reserves what the job may cost at the chosen provider's offer (the
/// input estimate and the output limit at that offer's price, within the operator's bounds) through
/// <see cref="PaymentIntake"/>: from an <c>X-Cashu</c> token given with the request (NUT-24; its whole value is held),
/// or from a balance named by <c>Authorization: Bearer</c>. No payment gets a 402 with a NUT-18 payment request. A
/// retry on another provider re-reserves for that provider's offer (a balance adds the difference to its reservation,
/// kept in process on single-node SQLite, see <see cref="RequestHolds.ReserveAsync"/>; a token covers it from its held value or that provider is skipped). On completion the billed cost is charged (at
/// most the reservation) and a token payer's change comes back in the <c>X-Cashu</c> response header, or for a stream
/// as the SSE comment <c>: X-Cashu &lt;token&gt;</c> before its end (and as an HTTP trailer when the client sent
/// <c>TE: trailers</c> over HTTP/2). A job that fails before any output costs nothing; one that breaks after output
/// reached the consumer is charged for what was delivered, and the rest goes to the payer's balance.
/// </summary>
public sealed class PaidInferenceBilling(RequestHolds holds, PaymentIntake intake, PaymentsMetrics metrics, TimeProvider time) : IInferenceBilling
{
    public const string HeaderName = PaymentIntake.HeaderName;

    public long? BudgetMsat(HttpRequest http) =>
        http.Headers.TryGetValue(HeaderName, out var header) && header.Count == 1 && intake.CheckToken(http, header.ToString()).Token is { } token
            ? token.AmountSat * 1000
            : null;

    public async ValueTask<BillingReservation> ReserveAsync(BillingRequest request, CancellationToken cancellationToken)
    {
        var reservationMsat = request.ReservationMsat;
        if (reservationMsat <= 0)
        {
            return BillingReservation.Free; // the chosen provider serves this model for nothing
        }

        var ask = new PaymentAsk("this request", UpTo: true,
            string.Create(CultureInfo.InvariantCulture, $"Coinop request, up to {reservationMsat} msat; change comes back"));
        var started = time.GetTimestamp();
        var held = await intake.HoldAsync(request.Http, request.JobId, reservationMsat, reservationMsat, ask, cancellationToken, balanceInProcess: true);
        if (!held.Held)
        {
            return BillingReservation.Refuse(held.Refusal!, held.Headers);
        }

        metrics.Held(held.Token, time.GetElapsedTime(started));

        var http = request.Http.HttpContext;
        var trailer = held.Token && AcceptsTrailers(http);
        if (trailer)
        {
            http.Response.DeclareTrailer(HeaderName);
        }

        return new BillingReservation(true, new PaidHold(request.JobId, http, held.Token, trailer) { HeldMsat = held.HeldMsat, CapMsat = reservationMsat });
    }

    public async ValueTask<bool> ResizeAsync(BillingReservation reservation, long reservationMsat, CancellationToken cancellationToken)
    {
        if (reservation.State is not PaidHold hold)
        {
            // Nothing was held (the first provider served for free): a dearer retry would go unpaid.
            return reservationMsat <= 0;
        }

        if (reservationMsat > hold.HeldMsat)
        {
            // A token's whole value is already held: it covers no more. A balance adds the difference, if it has it.
            if (hold.Token || !await holds.GrowHoldAsync(hold.JobId, reservationMsat - hold.HeldMsat, cancellationToken))
            {
                return false;
            }

            hold.HeldMsat = reservationMsat;
        }

        hold.CapMsat = Math.Max(0, reservationMsat);
        return true;
    }

    public async ValueTask<BillingSettlement> SettleAsync(BillingReservation reservation, BillingUsage usage, CancellationToken cancellationToken)
    {
        if (reservation.State is not PaidHold hold)
        {
            return BillingSettlement.Free;
        }

        var cost = usage.Price.CostMsat(usage.Usage);
        var started = time.GetTimestamp();
        var settled = await holds.SettleAsync(hold.JobId, cost, hold.CapMsat, usage.ProviderId, cancellationToken, linkEpoch: usage.LinkEpoch);
        metrics.Settled(hold.Token, time.GetElapsedTime(started));
        if (settled is null)
        {
            return BillingSettlement.Free;
        }

        if (settled.ChangeToken is not { } change)
        {
            return new BillingSettlement([], null, settled.ChargeMsat);
        }

        // Restock the change after the response is sent, not while it is being written (on a small machine the
        // restock's elliptic-curve work otherwise lands right on this request's tail).
        hold.Http.Response.OnCompleted(static state =>
        {
            ((RequestHolds)state).ReplenishChange();
            return Task.CompletedTask;
        }, holds);

        if (hold.TrailerDeclared && hold.Http.Response.HasStarted)
        {
            // A stream: the change also goes in the HTTP trailer the client asked for.
            hold.Http.Response.AppendTrailer(HeaderName, change);
        }

        return new BillingSettlement([new(HeaderName, change)], HeaderName + " " + change, settled.ChargeMsat);
    }

    public async ValueTask ReleaseAsync(BillingReservation reservation, BillingUsage? delivered, CancellationToken cancellationToken)
    {
        if (reservation.State is not PaidHold hold)
        {
            return;
        }

        if (delivered is not null)
        {
            // Output reached the consumer before the job broke: that much is charged and the provider credited. The
            // response cannot carry change any more, so the rest goes to the payer's balance (for a token payer, the
            // token's: spend or refund it with the same token as the Bearer key).
            try
            {
                await holds.SettleAsync(hold.JobId, delivered.Price.CostMsat(delivered.Usage), hold.CapMsat, delivered.ProviderId, cancellationToken,
                    changeAsToken: false, linkEpoch: delivered.LinkEpoch);
                return;
            }
            catch (ProviderLinkRevokedException)
            {
                // The output came over a link that was taken over: nothing is charged and the provider is not credited.
            }
        }

        // Change can ride on the error response only while it has not started and the consumer is still there;
        // otherwise the value goes to the token's balance.
        var http = hold.Http;
        var giveChange = hold.Token && !http.Response.HasStarted && !http.RequestAborted.IsCancellationRequested;
        var change = await holds.ReleaseAsync(hold.JobId, giveChange, cancellationToken);
        if (change is not null && !http.Response.HasStarted)
        {
            http.Response.Headers[HeaderName] = change;
        }
    }

    private static bool AcceptsTrailers(HttpContext http) =>
        http.Request.Headers.TE.Any(v => v is not null && v.Contains("trailers", StringComparison.OrdinalIgnoreCase)) && http.Response.SupportsTrailers();

    /// <summary>A job's hold: <see cref="HeldMsat"/> sits in the holds account; <see cref="CapMsat"/> is the most the job may be charged at the provider now serving it.</summary>
    private sealed record PaidHold(Guid JobId, HttpContext Http, bool Token, bool TrailerDeclared)
    {
        public long HeldMsat { get; set; }

        public long CapMsat { get; set; }
    }
}
