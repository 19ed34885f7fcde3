using System.Text.Json;
using Coinop.Core.Pricing;
using Coinop.Core.Text;
using Coinop.Core.Workloads;
using Coinop.Market.Inference;
using Coinop.Storage.Providers;
using Coinop.Storage.Workloads;
using Microsoft.AspNetCore.Http;

namespace Coinop.Market.Workloads;

/// <summary>
/// The consumer's workload API: submit, list, show, follow output, cancel, top up, collect the refund, read the sealed
/// access receipt (following output is <see cref="WorkloadLogsApi"/>). A workload belongs to its submitter: every request about it must carry the owner key it was submitted
/// with (<see cref="WorkloadOwnerKey.Header"/>; made and returned at submit when the request sent none), and the list
/// shows only the key's own workloads. On a paid market submit and top-up are paid like requests (<c>X-Cashu</c> or a
/// Bearer balance; no payment → 402 with a payment request), and cancel and refund also need the credential that paid.
/// Bad input is a 400 with a JSON error, no owner key a 401, someone else's a 403, an unknown id a 404, no room on any
/// provider a 503 with <c>Retry-After</c>; nothing here throws at a consumer.
/// </summary>
public static class WorkloadsApi
{
    private const int MaxListed = 500;

    /// <summary>Where ecash given back (a refund, a payment returned whole) travels, as it does for requests.</summary>
    private const string RefundHeader = "X-Cashu";

    private static readonly TimeSpan DefaultDuration = TimeSpan.FromHours(1);

    public static async Task SubmitAsync(HttpContext http, WorkloadSupervisor supervisor, IWorkloadBilling billing, IWorkloadUsageStore usage, IWorkloadCheckpointStore checkpoints,
        IWorkloadReceiptStore receipts, IProviderRegistryStore registry)
    {
        var ct = http.RequestAborted;
        var sentKey = WorkloadOwners.KeyOf(http.Request);
        if (sentKey.Length > 0 && !WorkloadOwnerKey.IsWellFormed(sentKey))
        {
            await Error(http, WorkloadOwners.MalformedKey());
            return;
        }

        // No key sent: the market makes one and returns it, once, in this answer.
        var ownerKey = sentKey.Length > 0 ? sentKey : WorkloadOwnerKey.New();
        var request = await ReadAsync(http, WorkloadJsonContext.Default.SubmitWorkloadRequest);
        if (request is null)
        {
            await BadRequest(http, "the body must be a JSON object like {\"command\": \"sleep\", \"args\": [\"60\"]}");
            return;
        }

        if (SubmitWorkloadRules.Problem(request) is { } problem)
        {
            await BadRequest(http, problem);
            return;
        }

        if (!RestartPolicy.TryParse(request.Restart ?? "never", out var restart, out var restartError))
        {
            await BadRequest(http, restartError);
            return;
        }

        var requested = request.DurationSeconds is { } seconds ? TimeSpan.FromSeconds(seconds) : DefaultDuration;
        var isolation = request.Isolation is null ? WorkloadIsolation.Sandbox : WireEnum.Parse<WorkloadIsolation>(request.Isolation);
        var spec = new WorkloadSpec(request.Command!, request.Args ?? [], request.Cpu ?? 1, request.MemoryMb ?? 256, requested, request.Port,
            restart, request.Standbys ?? 0, request.Checkpointed ?? false, isolation);
        var specErrors = spec.Validate();
        if (specErrors.Count > 0)
        {
            await BadRequest(http, string.Join("; ", specErrors));
            return;
        }

        string? pinned = null;
        if (request.Provider is { } pin)
        {
            // A display name is anyone's to copy: it pins only when no other provider the market knows carries it.
            (pinned, var pinProblem) = WorkloadPlacement.ResolvePin(pin, (await registry.ListAsync(ct)).Select(p => (p.Id, p.Name)));
            if (pinProblem is not null)
            {
                await BadRequest(http, pinProblem);
                return;
            }
        }

        var sealedKeys = request.SealedKeys ?? new Dictionary<string, string>();
        var holders = spec.Checkpointed ? sealedKeys.Keys.ToHashSet(StringComparer.Ordinal) : null;
        var (plan, unplaced) = await supervisor.PlanAsync(spec, pinned, holders, ct);
        if (plan is null)
        {
            await NoCapacity(http, unplaced!);
            return;
        }

        var id = request.Id ?? WorkloadIds.New();
        var quote = plan.Quote(spec);
        var payment = await billing.AuthorizeAsync(new WorkloadBillingRequest(id, http.Request, quote, requested), ct);
        if (!payment.Accepted)
        {
            await Refuse(http, payment);
            return;
        }

        var terms = new WorkloadTerms(pinned, request.SealTo, quote.MsatPerSecond, payment.PaidMsat);
        SubmitOutcome outcome;
        try
        {
            outcome = await supervisor.SubmitAsync(id, spec with { Duration = payment.Lease }, plan, terms, sealedKeys,
                WorkloadStore.OwnedBy(WorkloadOwnerKey.Hash(ownerKey), payment.Commit), ct);
        }
        catch (Exception)
        {
            await billing.FinishAsync(payment, applied: false, CancellationToken.None);
            throw;
        }

        if (outcome.Workload is null)
        {
            await GiveBackAsync(http, billing, payment);
            await (outcome.Capacity
                ? NoCapacity(http, outcome.Problem!)
                : Error(http, new ApiError(409, "invalid_request_error", "not_started", outcome.Problem!)));
            return;
        }

        await billing.FinishAsync(payment, applied: true, CancellationToken.None);
        http.Response.StatusCode = StatusCodes.Status201Created;
        http.Response.Headers.Location = "/api/workloads/" + id;
        await WriteViewAsync(http, outcome.Workload, billing, usage, checkpoints, receipts, madeOwnerKey: sentKey.Length > 0 ? null : ownerKey);
    }

    /// <summary>The caller's workloads (those its owner key submitted), newest first.</summary>
    public static async Task ListAsync(HttpContext http, IWorkloadStore store)
    {
        var key = WorkloadOwners.KeyOf(http.Request);
        if (!WorkloadOwnerKey.IsWellFormed(key))
        {
            await Error(http, WorkloadOwners.KeyRequired());
            return;
        }

        var owned = await store.ListOwnedAsync(WorkloadOwnerKey.Hash(key), MaxListed, http.RequestAborted);
        await http.Response.WriteAsJsonAsync(owned.Select(WorkloadViews.Summary).ToArray(), WorkloadJsonContext.Default.WorkloadSummaryArray,
            cancellationToken: http.RequestAborted);
    }

    public static async Task GetAsync(HttpContext http, string id, IWorkloadStore store, IWorkloadBilling billing, IWorkloadUsageStore usage,
        IWorkloadCheckpointStore checkpoints, IWorkloadReceiptStore receipts)
    {
        if (await WorkloadOwners.FindOwnedAsync(http, id, store) is { } stored)
        {
            await WriteViewAsync(http, stored, billing, usage, checkpoints, receipts);
        }
    }

    /// <summary>
    /// Stops the workload. What was paid and not consumed comes back as a <c>cashuB</c> token, in the <c>X-Cashu</c> header
    /// and in the body's <c>refund</c>; on a paid workload only the credential that paid may cancel.
    /// </summary>
    public static async Task CancelAsync(HttpContext http, string id, WorkloadSupervisor supervisor, IWorkloadBilling billing, IWorkloadStore store,
        IWorkloadUsageStore usage, IWorkloadCheckpointStore checkpoints, IWorkloadReceiptStore receipts)
    {
        if (await WorkloadOwners.FindOwnedAsync(http, id, store) is null)
        {
            return;
        }

        if (await billing.CheckPayerAsync(id, http.Request, http.RequestAborted) is { } notPayer)
        {
            await Error(http, notPayer);
            return;
        }

        var outcome = await supervisor.CancelAsync(id, http.RequestAborted);
        if (outcome.Rejection is { } rejection)
        {
            await Error(http, new ApiError(409, "invalid_request_error", "not_cancellable", rejection));
            return;
        }

        if ((await billing.MoneyAsync(id, http.RequestAborted))?.Refund?.Token is { } token)
        {
            http.Response.Headers[RefundHeader] = token;
        }

        await WriteViewAsync(http, outcome.Workload!, billing, usage, checkpoints, receipts, payer: true);
    }

    /// <summary>
    /// The refund of a finished workload (<c>{"refund_msat", "token"}</c>, the token also in <c>X-Cashu</c>), for the
    /// credential that paid: how a consumer whose workload completed, failed or ran out gets back what it did not use.
    /// </summary>
    public static async Task RefundAsync(HttpContext http, string id, IWorkloadStore store, IWorkloadBilling billing)
    {
        if (await WorkloadOwners.FindOwnedAsync(http, id, store) is not { } stored)
        {
            return;
        }

        if (await billing.CheckPayerAsync(id, http.Request, http.RequestAborted) is { } notPayer)
        {
            await Error(http, notPayer);
            return;
        }

        var money = await billing.MoneyAsync(id, http.RequestAborted);
        if (money?.Refund is not { } refund)
        {
            if (money is not null && stored.Workload.IsTerminal)
            {
                http.Response.Headers.RetryAfter = "1"; // it ended a moment ago: its last span is being settled
            }

            await Error(http, money is null
                ? new ApiError(404, "invalid_request_error", "no_refund", "nothing was paid for this workload")
                : new ApiError(409, "invalid_request_error", "not_finished", stored.Workload.IsTerminal
                    ? $"workload is {Core.Text.WireEnum.Name(stored.Workload.State)}; its refund is being settled, try again in a moment"
                    : $"workload is {Core.Text.WireEnum.Name(stored.Workload.State)}; its refund comes when it ends"));
            return;
        }

        if (refund.Token is { } token)
        {
            http.Response.Headers[RefundHeader] = token;
        }

        await http.Response.WriteAsJsonAsync(new RefundView(refund.Msat, refund.Token), WorkloadJsonContext.Default.RefundView, cancellationToken: http.RequestAborted);
    }

    /// <summary>
    /// Pays for more time: <c>{"duration_seconds": N}</c>, or on a paid market an <c>X-Cashu</c> token alone (its value
    /// buys the time). The lease grows by what was paid ÷ the workload's rate.
    /// </summary>
    public static async Task TopUpAsync(HttpContext http, string id, WorkloadSupervisor supervisor, IWorkloadBilling billing, IWorkloadStore store,
        IWorkloadUsageStore usage, IWorkloadCheckpointStore checkpoints, IWorkloadReceiptStore receipts)
    {
        var ct = http.RequestAborted;
        if (await WorkloadOwners.FindOwnedAsync(http, id, store) is not { } stored)
        {
            return;
        }

        var request = http.Request.ContentLength == 0 ? new TopUpRequest(null) : await ReadAsync(http, WorkloadJsonContext.Default.TopUpRequest);
        if (request is null || (request.DurationSeconds is { } seconds && (!double.IsFinite(seconds) || seconds < 1 || seconds > SubmitWorkloadRules.MaxDuration.TotalSeconds)))
        {
            await BadRequest(http, "the body must be {\"duration_seconds\": N} with N from 1 to 315360000 (or empty, when an X-Cashu token pays)");
            return;
        }

        if (stored.Workload.IsTerminal)
        {
            await Error(http, new ApiError(409, "invalid_request_error", "finished", "workload is " + Core.Text.WireEnum.Name(stored.Workload.State)));
            return;
        }

        var requested = request.DurationSeconds is { } d ? TimeSpan.FromSeconds(d) : (TimeSpan?)null;
        var payment = await billing.TopUpAsync(new WorkloadBillingRequest(id, http.Request, new WorkloadQuote(stored.Terms.RateMsatPerSecond), requested), ct);
        if (!payment.Accepted)
        {
            await Refuse(http, payment);
            return;
        }

        CommandOutcome outcome;
        try
        {
            outcome = await supervisor.TopUpAsync(id, payment.Lease, payment.PaidMsat, payment.Commit, ct);
        }
        catch (Exception)
        {
            await billing.FinishAsync(payment, applied: false, CancellationToken.None);
            throw;
        }

        if (outcome.Rejection is { } rejection)
        {
            await GiveBackAsync(http, billing, payment);
            await Error(http, new ApiError(409, "invalid_request_error", "not_extended", rejection));
            return;
        }

        await billing.FinishAsync(payment, applied: true, CancellationToken.None);
        await WriteViewAsync(http, outcome.Workload!, billing, usage, checkpoints, receipts);
    }

    public static async Task AccessAsync(HttpContext http, string id, IWorkloadStore store, IWorkloadReceiptStore receipts)
    {
        if (await WorkloadOwners.FindOwnedAsync(http, id, store) is null)
        {
            return;
        }

        if (await receipts.LatestAsync(id, http.RequestAborted) is not { } receipt)
        {
            await Error(http, new ApiError(404, "invalid_request_error", "no_receipt", "no copy of this workload has sent an access receipt (yet); does it declare a port?"));
            return;
        }

        await http.Response.WriteAsJsonAsync(new AccessView(receipt.Epoch, receipt.ProviderId, receipt.Sealed, receipt.CreatedAt),
            WorkloadJsonContext.Default.AccessView, cancellationToken: http.RequestAborted);
    }

    /// <summary>The workload's view for its owner; the refund's token only for the payer; the owner key only when the market just made it.</summary>
    private static async Task WriteViewAsync(HttpContext http, StoredWorkload stored, IWorkloadBilling billing, IWorkloadUsageStore usage,
        IWorkloadCheckpointStore checkpoints, IWorkloadReceiptStore receipts, bool payer = false, string? madeOwnerKey = null)
    {
        var ct = http.RequestAborted;
        var id = stored.Workload.Id;
        var checkpoint = stored.Workload.Checkpoint is { } cid ? await checkpoints.FindAsync(cid, ct) : null;
        var view = WorkloadViews.View(stored, await usage.ListAsync(id, ct), checkpoint, await receipts.ListAsync(id, ct), await billing.MoneyAsync(id, ct), payer);
        await http.Response.WriteAsJsonAsync(view with { OwnerKey = madeOwnerKey }, WorkloadJsonContext.Default.WorkloadView, cancellationToken: ct);
    }

    /// <summary>A refused payment: its error, with its headers (a 402's payment request).</summary>
    private static Task Refuse(HttpContext http, WorkloadPayment payment)
    {
        foreach (var (name, value) in payment.Headers ?? [])
        {
            http.Response.Headers[name] = value;
        }

        return Error(http, payment.Refusal!);
    }

    /// <summary>Gives back a payment the supervisor did not apply; a token payer gets it as change in <c>X-Cashu</c>.</summary>
    private static async Task GiveBackAsync(HttpContext http, IWorkloadBilling billing, WorkloadPayment payment)
    {
        if (await billing.FinishAsync(payment, applied: false, CancellationToken.None) is { } change)
        {
            http.Response.Headers[RefundHeader] = change;
        }
    }

    private static async Task<T?> ReadAsync<T>(HttpContext http, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type) where T : class
    {
        if (http.Request.ContentType is { } contentType && !contentType.StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }

        try
        {
            return await JsonSerializer.DeserializeAsync(http.Request.Body, type, http.RequestAborted);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>
    /// No provider has room now: 503 with <c>Retry-After</c>. Room comes back as providers reconnect (within their ~1 s
    /// reconnect delay) or workloads end, so a consumer may retry; the problem says what was missing.
    /// </summary>
    private static Task NoCapacity(HttpContext http, string problem)
    {
        http.Response.Headers.RetryAfter = "1";
        return Error(http, new ApiError(503, "service_unavailable", "no_capacity", problem));
    }

    internal static Task BadRequest(HttpContext http, string message) => Error(http, new ApiError(400, "invalid_request_error", "invalid_workload", message));

    internal static Task Error(HttpContext http, ApiError error) => error.WriteResponseAsync(http.Response, ErrorShape.OpenAi, http.RequestAborted);
}
