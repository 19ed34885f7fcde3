using Coinop.Core.Pricing;
using Coinop.Core.Workloads;
using Microsoft.Extensions.Logging;

namespace Coinop.Market.Workloads;

/// <summary>
/// The supervisor's side of workload money: charges running workloads' time to the providers serving them, closes a
/// workload's account with the refund when it ends, and now and then finishes accounts a previous run left open. Billing
/// failures are logged and tried again later; they never stop the loop.
/// </summary>
internal sealed class WorkloadSettlement(IWorkloadBilling billing, TimeSpan settleInterval, ILogger logger)
{
    private DateTimeOffset _lastRecovery;

    /// <summary>True when the workload's time was last settled <c>settle-interval</c> ago (or never).</summary>
    public bool Due(OpenWorkload entry, DateTimeOffset now) => entry.SettledUntil is not { } settled || now - settled >= settleInterval;

    /// <summary>Charges the time since the last settlement (at most up to the paid time) to the providers serving the workload now.</summary>
    public async Task SettleAsync(OpenWorkload entry, DateTimeOffset now, CancellationToken ct)
    {
        var w = entry.Workload;
        try
        {
            // A workload nobody pays for has no account: nothing to settle, ever.
            entry.SettledUntil = await billing.SettleAsync(w.Id, Quote(entry), Serving(entry, w), now < w.PaidUntil ? now : w.PaidUntil, ct)
                ?? DateTimeOffset.MaxValue;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The next tick tries again from where the store says the workload is settled.
            WorkloadSupervisorLog.BillingFailed(logger, w.Id, ex);
        }
    }

    /// <summary>Settles the last span with the providers that served it and refunds the rest (the recovery sweep finishes it if this fails).</summary>
    public async Task CloseAsync(OpenWorkload entry, IReadOnlyList<ProviderRate> serving, DateTimeOffset end, CancellationToken ct)
    {
        try
        {
            await billing.CloseAsync(entry.Id, Quote(entry), serving, end, ct);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            WorkloadSupervisorLog.BillingFailed(logger, entry.Id, ex);
        }
    }

    /// <summary>Now and then: closes the accounts of workloads that ended while their account stayed open (a market that died in between).</summary>
    public async Task RecoverAsync(DateTimeOffset now, CancellationToken ct)
    {
        if (now - _lastRecovery < settleInterval)
        {
            return;
        }

        _lastRecovery = now;
        try
        {
            await billing.RecoverAsync(ct);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            WorkloadSupervisorLog.BillingFailed(logger, "(recovery)", ex);
        }
    }

    /// <summary>
    /// Who serves <paramref name="w"/>, each at its rate: the copy allowed to run (once placed, until the workload ends) and
    /// every standby holding a reservation. A provider with no recorded rate (a workload from before rates were kept) is paid nothing.
    /// </summary>
    public static IReadOnlyList<ProviderRate> Serving(OpenWorkload entry, Workload w)
    {
        decimal Rate(string provider) => entry.Stored.Rates.TryGetValue(provider, out var r) || entry.PlacedRates.TryGetValue(provider, out r) ? r : 0;
        var serving = new List<ProviderRate>(w.Standbys.Count + 1);
        if (w is { IsTerminal: false, Provider: { } primary })
        {
            serving.Add(new ProviderRate(primary, Rate(primary)));
        }

        serving.AddRange(w.Standbys.Select(s => new ProviderRate(s.Provider, Rate(s.Provider))));
        return serving;
    }

    private static WorkloadQuote Quote(OpenWorkload entry) => new(entry.Stored.Terms.RateMsatPerSecond);
}
