using Coinop.Core.Protocol;
using Coinop.Market.Gateway;
using Coinop.Market.Hosting;
using Coinop.Market.Inference.Responses;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Coinop.Market.Inference;

/// <summary>
/// Serves one inference request: read and check it, admit it (<see cref="JobAdmission"/>: a provider's slot, waiting
/// its turn when all are busy, and the reservation at that provider's offer), dispatch it and relay the output,
/// retrying on another provider while nothing has reached the consumer, then settle (or release) and record the job.
/// Each attempt at a provider is the <see cref="AttemptRunner"/>'s; this class decides what follows it (another
/// provider, or the job's end and what the consumer is told). The request's own task is the only writer of the
/// response and the only owner of the <see cref="InferenceJob"/>.
/// </summary>
public sealed class InferencePipeline(
    JobAdmission admission,
    AttemptRunner attempts,
    ResponsesService responses,
    IInferenceBilling billing,
    JobRecordWriter records,
    InferenceMetrics metrics,
    IOptions<InferenceOptions> inferenceOptions,
    MarketOptions market,
    TimeProvider time,
    IHostApplicationLifetime lifetime,
    ILogger<InferencePipeline> logger)
{
    private readonly InferenceOptions _options = inferenceOptions.Value;

    public async Task ServeAsync(HttpContext http, InferenceRoute route)
    {
        metrics.Request(route);
        var shape = route.Shape();
        if (!ConsumerHeaders.TryRead(http.Request, market.RequestTimeout, out var ceiling, out var timeout, out var headerError))
        {
            await ReplyAsync(http, headerError!, shape);
            return;
        }

        var (request, bodyError) = await InferenceRequest.ReadAsync(http.Request, route, market.MaxRequestBodyBytes, http.RequestAborted);
        if (request is null)
        {
            await ReplyAsync(http, bodyError!, shape);
            return;
        }

        using (request)
        {
            if (route == InferenceRoute.Responses && await responses.ResolveAsync(request, http.Request, http.RequestAborted) is { } turnError)
            {
                await ReplyAsync(http, turnError, shape);
                return;
            }

            var needs = new RouteNeeds(request.Model, OfferNeeds.For(request), ceiling, request.ReservationBasis);
            if (await admission.CheckAsync(request, needs, http.RequestAborted) is { } unavailable)
            {
                await ReplyAsync(http, unavailable, shape);
                return;
            }

            var now = time.GetUtcNow();
            var job = new InferenceJob(JobIds.NewVersion7(now), request.Model, route, now, _options.MaxAttempts, timeout);
            // The deadline counts from arrival: time spent waiting for a provider's slot is part of it.
            using var deadline = new CancellationTokenSource(timeout, time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, deadline.Token);
            var consumer = ConsumerIdentity.Of(http);
            needs = needs with { BudgetMsat = billing.BudgetMsat(http.Request) };
            Admission admitted;
            try
            {
                admitted = await admission.AdmitAsync(http.Request, job.Id, needs, consumer, linked.Token);
            }
            catch (OperationCanceledException) when (linked.IsCancellationRequested)
            {
                // Never got a provider, so nothing was held: a consumer gone is only recorded, a passed deadline answered.
                var gone = http.RequestAborted.IsCancellationRequested;
                if (gone)
                {
                    job.Cancel("consumer_gone", time.GetUtcNow());
                }
                else
                {
                    job.Fail(ApiError.Deadline().Code, time.GetUtcNow());
                    await ReplyAsync(http, ApiError.Deadline(), shape);
                }

                records.Add(job.ToRecord());
                return;
            }

            if (admitted.Reservation is not { } reservation)
            {
                foreach (var (name, value) in admitted.Headers ?? [])
                {
                    http.Response.Headers[name] = value;
                }

                await ReplyAsync(http, admitted.Refusal!, shape);
                return;
            }

            metrics.JobStarted();
            try
            {
                var run = new JobRun(http, request, job, reservation, new ConsumerOutput(http.Response), deadline, job.CreatedAt + timeout, consumer, linked.Token);
                await RunJobAsync(run, needs, admitted.Pick, shape);
            }
            finally
            {
                metrics.JobEnded();
                records.Add(job.ToRecord());
            }
        }
    }

    private async Task RunJobAsync(JobRun run, RouteNeeds needs, RoutePick first, ErrorShape shape)
    {
        var (http, request, job) = (run.Http, run.Request, run.Job);
        var tried = new List<IRoutableProvider>(_options.MaxAttempts);
        ApiError? lastFailure = null;
        AttemptResult result = default;
        RoutePick? next = first;
        while (job.CanRetry)
        {
            RoutePick? pick;
            try
            {
                pick = next ?? await admission.RetryAsync(run.Reservation, needs, tried, run.Consumer, run.Cancellation);
            }
            catch (OperationCanceledException) when (run.Cancellation.IsCancellationRequested)
            {
                // Waiting for a retry's slot ended: the job still holds its reservation, released below.
                result = http.RequestAborted.IsCancellationRequested
                    ? new AttemptResult(AttemptOutcome.Cancelled, null, "consumer_gone")
                    : new AttemptResult(AttemptOutcome.Final, ApiError.Deadline(), null);
                break;
            }

            next = null;
            if (pick is not { } chosen)
            {
                break;
            }

            var session = chosen.Provider;
            tried.Add(session);
            if (job.Attempts > 0)
            {
                metrics.Retry();
            }

            var fence = job.Dispatch(session.ProviderId, time.GetUtcNow());
            try
            {
                result = await attempts.RunAsync(run, session, chosen.Offer, fence);
            }
            finally
            {
                admission.Release(session);
            }

            if (result.Outcome != AttemptOutcome.Retry)
            {
                break;
            }

            lastFailure = result.Error;
            job.AttemptFailed();
            InferenceLog.Retrying(logger, job.Id, fence, session.ProviderId, result.Error?.Message ?? "failed");
        }

        if (job.State == JobState.Completed)
        {
            return;
        }

        // The job failed or was cancelled: the reservation is released and the consumer told (if still there).
        var now = time.GetUtcNow();
        var error = result.Outcome is AttemptOutcome.Final or AttemptOutcome.Cancelled
            ? result.Error
            : lastFailure ?? (lifetime.ApplicationStopping.IsCancellationRequested ? ApiError.ShuttingDown() : ApiError.NoProvider(request.Model));
        if (result.Outcome == AttemptOutcome.Cancelled)
        {
            job.Cancel(result.CancelReason ?? "cancelled", now);
        }
        else
        {
            job.Fail(error?.Code ?? "failed", now);
        }

        try
        {
            // What reached the consumer before the job broke is charged: the input estimate and the output relayed.
            var delivered = run.DeliveredBy is { } by
                ? new BillingUsage(new TokenUsage(request.InputTokenEstimate, run.DeliveredOutputTokens ?? 0), by.ProviderId, by.Price, by.LinkEpoch)
                : null;
            await billing.ReleaseAsync(run.Reservation, delivered, CancellationToken.None);
        }
        catch (Exception ex)
        {
            InferenceLog.BillingFailed(logger, job.Id, ex);
        }

        if (error is not null)
        {
            metrics.Error(error.Status, error.Code);
            if (!run.Output.Started && !http.RequestAborted.IsCancellationRequested)
            {
                await error.WriteResponseAsync(http.Response, shape, CancellationToken.None);
            }
        }
    }

    private async Task ReplyAsync(HttpContext http, ApiError error, ErrorShape shape)
    {
        metrics.Error(error.Status, error.Code);
        await error.WriteResponseAsync(http.Response, shape, http.RequestAborted);
    }
}
