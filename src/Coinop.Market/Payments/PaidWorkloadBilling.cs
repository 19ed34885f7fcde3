using System.Globalization;
using Coinop.Core.Pricing;
using Coinop.Market.Inference;
using Coinop.Market.Workloads;
using Microsoft.AspNetCore.Http;

namespace Coinop.Market.Payments;

/// <summary>
/// Billing of workloads on a paid market. A submit or a top-up is paid like a request (<see cref="PaymentIntake"/>):
/// an <c>X-Cashu</c> token worth at least what the requested duration costs (its whole value buys time: lease =
/// value ÷ rate), or a balance named by <c>Authorization: Bearer</c> (charged exactly the requested duration); no
/// payment gets a 402 with a NUT-18 payment request for that duration. A top-up may name no duration and pay with a
/// token alone (at least one second's worth). The money then lives in the workload's account (<see cref="WorkloadCashier"/>).
/// Only the credential that paid at submit (the token, or the <c>sk-</c> key) may cancel the workload or collect its refund.
/// </summary>
public sealed class PaidWorkloadBilling(PaymentIntake intake, Cashier cashier, RequestHolds holds, PayerMints payerMints, WorkloadCashier workloads) : IWorkloadBilling
{
    public ValueTask<WorkloadPayment> AuthorizeAsync(WorkloadBillingRequest request, CancellationToken cancellationToken) =>
        PayAsync(request, submit: true, cancellationToken);

    public ValueTask<WorkloadPayment> TopUpAsync(WorkloadBillingRequest request, CancellationToken cancellationToken) =>
        PayAsync(request, submit: false, cancellationToken);

    public async ValueTask<string?> FinishAsync(WorkloadPayment payment, bool applied, CancellationToken cancellationToken)
    {
        if (payment.State is not PaidWorkloadHold hold)
        {
            return null;
        }

        if (applied)
        {
            holds.Forget(hold.HoldId);
            return null;
        }

        // Not applied: given back whole, as change on the response while the consumer waits for it, else to the payer's balance.
        var http = hold.Http;
        return await holds.ReleaseAsync(hold.HoldId, giveChange: hold.Token && !http.Response.HasStarted && !http.RequestAborted.IsCancellationRequested,
            cancellationToken);
    }

    public async ValueTask<DateTimeOffset?> SettleAsync(string workloadId, WorkloadQuote quote, IReadOnlyList<ProviderRate> serving, DateTimeOffset until,
        CancellationToken cancellationToken) =>
        await workloads.SettleAsync(workloadId, quote, serving, until, cancellationToken);

    public async ValueTask<WorkloadRefund?> CloseAsync(string workloadId, WorkloadQuote quote, IReadOnlyList<ProviderRate> serving, DateTimeOffset end,
        CancellationToken cancellationToken) =>
        await workloads.CloseAsync(workloadId, quote, serving, end, cancellationToken);

    public async ValueTask RecoverAsync(CancellationToken cancellationToken) => await workloads.RecoverAsync(cancellationToken);

    public async ValueTask<WorkloadMoney?> MoneyAsync(string workloadId, CancellationToken cancellationToken) =>
        await workloads.FindAsync(workloadId, cancellationToken) is { } account
            ? new WorkloadMoney(account.ChargedMsat, account.SettledUntil,
                account.IsOpen ? null : new WorkloadRefund(account.RefundMsat ?? 0, account.RefundToken))
            : null;

    public async ValueTask<ApiError?> CheckPayerAsync(string workloadId, HttpRequest http, CancellationToken cancellationToken)
    {
        if (await workloads.FindAsync(workloadId, cancellationToken) is not { } account)
        {
            return null;
        }

        if (PaymentIntake.Bearer(http) is not { } bearer)
        {
            return new ApiError(401, "authentication_error", "payer_required",
                "only whoever paid for this workload may do this: send 'Authorization: Bearer <the cashu token or sk- key that paid at submit>'");
        }

        return PaymentIntake.PayerAccountOf(bearer) == account.PayerAccount
            ? null
            : new ApiError(403, "permission_error", "not_the_payer", "this credential did not pay for this workload");
    }

    private async ValueTask<WorkloadPayment> PayAsync(WorkloadBillingRequest request, bool submit, CancellationToken cancellationToken)
    {
        var quote = request.Quote;
        if (quote.IsFree)
        {
            return FreeWorkloadBilling.Free(request); // every provider it runs on asks nothing
        }

        if (request.Requested is null && !request.Http.Headers.ContainsKey(PaymentIntake.HeaderName))
        {
            return WorkloadPayment.Refuse(ApiError.InvalidBody(
                "say how much time to add ({\"duration_seconds\": N}), or pay with an X-Cashu token: its value buys the time"));
        }

        if (!submit && payerMints.AcceptsOtherMints && await OtherMintAsync(request, cancellationToken) is { } otherMint)
        {
            return WorkloadPayment.Refuse(otherMint);
        }

        // A duration's cost; a token alone must buy at least a second.
        var cost = quote.CostMsat(request.Requested ?? TimeSpan.FromSeconds(1));
        var what = request.Requested is { } d ? string.Create(CultureInfo.InvariantCulture, $"{d.TotalSeconds:0.###} s") : "time";
        var ask = new PaymentAsk(submit ? $"this workload ({what})" : $"this top-up ({what})", UpTo: false,
            string.Create(CultureInfo.InvariantCulture, $"Coinop workload {request.WorkloadId}: {what} at {quote.MsatPerSecond:0.###} msat/s"));
        var holdId = Guid.NewGuid();
        var held = await intake.HoldAsync(request.Http, holdId, cost, request.Requested is null ? null : cost, ask, cancellationToken);
        if (!held.Held)
        {
            return WorkloadPayment.Refuse(held.Refusal!, held.Headers);
        }

        var lease = quote.LeaseFor(held.HeldMsat)!.Value;
        var openFor = submit ? held.PayerAccount : null;
        return new WorkloadPayment(true, lease, held.HeldMsat,
            Commit: (c, t, saved, ct) => workloads.CommitAsync(c, t, holdId, held.HeldMsat, saved, openFor, ct),
            State: new PaidWorkloadHold(holdId, held.Token, request.Http.HttpContext));
    }

    /// <summary>
    /// A top-up must be in the ecash of the mint that paid at submit: the refund is paid in that mint's ecash, from what the
    /// market holds of it. Refused before anything is taken (or any mint is called).
    /// </summary>
    private async Task<ApiError?> OtherMintAsync(WorkloadBillingRequest request, CancellationToken cancellationToken)
    {
        if (await workloads.FindAsync(request.WorkloadId, cancellationToken) is not { } account)
        {
            return null;
        }

        string? payingIn = null;
        if (request.Http.Headers.TryGetValue(PaymentIntake.HeaderName, out var header) && header.Count > 0)
        {
            payingIn = cashier.CheckToken(header.ToString()).Token?.Mint;
        }
        else if (PaymentIntake.Bearer(request.Http) is { } bearer)
        {
            payingIn = PaymentIntake.PayerAccountOf(bearer) is { } payer && await cashier.BalanceAsync(payer, cancellationToken) is not null
                ? await payerMints.MintOfBalanceAsync(payer, cancellationToken)
                : cashier.CheckToken(bearer).Token?.Mint;
        }

        var paidIn = await payerMints.MintOfBalanceAsync(account.PayerAccount, cancellationToken);
        return payingIn is null || string.Equals(payingIn, paidIn, StringComparison.OrdinalIgnoreCase)
            ? null
            : PaymentErrors.InvalidPayment(Coinop.Ecash.MintApi.CashuErrorCode.KeysetUnknown,
                $"this workload was paid in ecash of {paidIn}, and its refund is paid in it: top it up with that mint's ecash");
    }

    private sealed record PaidWorkloadHold(Guid HoldId, bool Token, HttpContext Http);
}
