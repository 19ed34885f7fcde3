using System.Buffers;
using Coinop.Core.Pricing;
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
/// The request's own task is the only writer of the response and the only owner of the <see cref="InferenceJob"/>.
/// </summary>
public sealed class InferencePipeline(
    JobAdmission admission,
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
                result = await RunAttemptAsync(run, session, chosen.Offer, fence);
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

    private async Task<AttemptResult> RunAttemptAsync(JobRun run, IRoutableProvider session, ModelOffer offer, long fence)
    {
        var request = run.Request;
        var job = run.Job;
        using var attempt = new JobAttempt(job.Id, fence, session, _options.WindowBytes);
        using var relay = ResponseRelay.For(request, offer, job.Id, run.Output, _options.MaxBufferedResponseBytes);
        var message = new JobMessage(job.Id, fence, request.Model, request.FormatFor(offer), request.PathFor(offer),
            request.Stream && request.Route != InferenceRoute.Embeddings, request.ForBackend(offer),
            run.DeadlineAt.ToUnixTimeMilliseconds(), _options.WindowBytes);
        var startedAt = time.GetTimestamp();
        var remaining = run.DeadlineAt - time.GetUtcNow();
        using var firstChunk = new CancellationTokenSource(
            remaining < _options.FirstChunkTimeout ? (remaining > TimeSpan.Zero ? remaining : TimeSpan.FromMilliseconds(1)) : _options.FirstChunkTimeout, time);
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(run.Cancellation, firstChunk.Token);
        try
        {
            if (!await session.StartJobAsync(attempt, message, wait.Token))
            {
                return await ProviderFailure(run, session, relay, "the provider is disconnecting");
            }

            var gotOutput = false;
            // A result that settles without touching a store (nothing held; a Responses answer is stored, so it is not) is
            // completed on the reader's thread: as cheap as relaying a chunk, and one thread hand-over less per request.
            var settlesInline = run.Reservation.HoldsNothing && request.Route != InferenceRoute.Responses;
            while (true)
            {
                var e = await attempt.Events.ReadAsync(wait.Token);
                if (e.Kind != AttemptEventKind.Chunk && !(e.Kind == AttemptEventKind.Done && settlesInline))
                {
                    // Off the session reader's thread (the event may have been handed over inline): settling and
                    // failing over must not hold up the other jobs' frames on that link.
                    await Task.Yield();
                }

                switch (e.Kind)
                {
                    case AttemptEventKind.Chunk:
                        try
                        {
                            relay.Accept(e.Buffer.AsSpan(0, e.Length));
                        }
                        finally
                        {
                            ArrayPool<byte>.Shared.Return(e.Buffer!);
                        }

                        if (!gotOutput)
                        {
                            gotOutput = true;
                            firstChunk.CancelAfter(Timeout.InfiniteTimeSpan);
                        }

                        if (run.Output.Unflushed > 0)
                        {
                            await FlushAsync(run, run.Cancellation);
                            run.DeliveredOutputTokens = relay.OutputTokens;
                        }

                        attempt.Consumed(e.Length);
                        break;

                    case AttemptEventKind.Done:
                        if (!relay.Complete())
                        {
                            return await ProviderFailure(run, session, relay, "the provider's output is not a valid response");
                        }

                        if (!await CompleteAsync(run, session, offer, relay, e.Done!, startedAt))
                        {
                            return await ProviderFailure(run, session, relay, "the provider linked again elsewhere; this result does not count");
                        }

                        return default;

                    case AttemptEventKind.Error when e.Error!.Code == JobErrorCodes.InvalidRequest:
                        // The backend refused the request itself: the consumer's mistake, not the provider's.
                        return await Final(run, relay, ApiError.InvalidBody("the backend refused the request: " + e.Error.Message));

                    case AttemptEventKind.Error:
                        return await ProviderFailure(run, session, relay, $"{e.Error.Code}: {e.Error.Message}");

                    default:
                        return await ProviderFailure(run, session, relay, e.Reason == CloseCodes.DrainDeploy ? "market shutting down" : "provider lost: " + e.Reason);
                }
            }
        }
        catch (ProviderOutputException ex)
        {
            await Task.Yield();
            session.CancelJob(attempt, "bad_output");
            return await ProviderFailure(run, session, relay, ex.Message);
        }
        catch (OperationCanceledException)
        {
            await Task.Yield(); // maybe on a timer's or the reader's thread
            if (run.Http.RequestAborted.IsCancellationRequested)
            {
                session.CancelJob(attempt, "consumer_gone");
                return new AttemptResult(AttemptOutcome.Cancelled, null, "consumer_gone");
            }

            if (run.Deadline.IsCancellationRequested)
            {
                session.CancelJob(attempt, "deadline");
                return await Final(run, relay, ApiError.Deadline());
            }

            session.CancelJob(attempt, "deadline");
            return await ProviderFailure(run, session, relay, "no output before the first-chunk timeout");
        }
        finally
        {
            session.EndJob(attempt);
            if (run.DeliveredOutputTokens is not null)
            {
                // Output of this attempt reached the consumer (no other attempt follows one that did).
                run.DeliveredBy ??= (session.ProviderId, offer.Price, session.LinkEpoch);
            }
        }
    }

    /// <returns>False when billing refused the result because the provider's link was taken over meanwhile.</returns>
    private async Task<bool> CompleteAsync(JobRun run, IRoutableProvider session, ModelOffer offer, ResponseRelay relay, JobDone done, long startedAt)
    {
        // Billed: the provider's figure only within tolerance of what the market counted itself (input from the request,
        // output from the text it relayed). A provider whose backend reported nothing is billed the market's count.
        var claimed = relay.Usage ?? (done.Usage.InputTokens == 0 && done.Usage.OutputTokens == 0 ? null : done.Usage);
        var wire = new WireCount(run.Request.InputTokenEstimate, relay.CountedOutputTokens);
        var usage = BillableUsage.From(wire, claimed);
        if (claimed is not null && !BillableUsage.Accepts(wire, claimed))
        {
            metrics.UsageClaimRefused();
            InferenceLog.UsageClaimRefused(logger, run.Job.Id, session.ProviderId, claimed.InputTokens, claimed.OutputTokens, wire.InputTokens, wire.OutputTokens);
        }

        var price = offer.Price;
        BillingSettlement settlement;
        try
        {
            // Settling is money: it runs to the end even if the consumer leaves meanwhile.
            settlement = await billing.SettleAsync(run.Reservation, new BillingUsage(usage, session.ProviderId, price, session.LinkEpoch), CancellationToken.None);
        }
        catch (ProviderLinkRevokedException ex)
        {
            InferenceLog.ResultRefused(logger, run.Job.Id, ex.ProviderId, ex.Epoch);
            return false;
        }
        catch (Exception ex)
        {
            InferenceLog.BillingFailed(logger, run.Job.Id, ex);
            settlement = BillingSettlement.Free;
        }

        await relay.FinishingAsync(usage, CancellationToken.None);
        relay.Finish(settlement);
        var firstOutput = run.Job.State == JobState.Dispatched;
        try
        {
            await FlushAsync(run, run.Http.RequestAborted);
        }
        catch (OperationCanceledException)
        {
            // The consumer left after the work was done; the job still completed.
        }

        var now = time.GetUtcNow();
        if (firstOutput)
        {
            run.Job.FirstByteSent(now);
            metrics.FirstByte((now - run.Job.CreatedAt).TotalMilliseconds);
        }

        run.Job.Complete(usage, settlement.CostMsat, now);
        session.RecordSuccess(time.GetElapsedTime(startedAt).TotalMilliseconds);
        return true;
    }

    private async ValueTask FlushAsync(JobRun run, CancellationToken cancellationToken)
    {
        var flushed = await run.Http.Response.BodyWriter.FlushAsync(cancellationToken);
        if (flushed.IsCanceled || flushed.IsCompleted)
        {
            throw new OperationCanceledException("the consumer stopped reading");
        }

        if (run.Job.State == JobState.Dispatched)
        {
            var now = time.GetUtcNow();
            run.Job.FirstByteSent(now);
            metrics.FirstByte((now - run.Job.CreatedAt).TotalMilliseconds);
        }
    }

    /// <summary>A provider failed the attempt: retried elsewhere while rerunnable, a clean error in the stream after.</summary>
    private ValueTask<AttemptResult> ProviderFailure(JobRun run, IRoutableProvider session, ResponseRelay relay, string reason)
    {
        if (session.RecordFailure())
        {
            InferenceLog.Parked(logger, session.ProviderId);
        }

        var error = lifetime.ApplicationStopping.IsCancellationRequested ? ApiError.ShuttingDown() : ApiError.ProviderFailed(reason);
        if (run.Job.Rerunnable && !lifetime.ApplicationStopping.IsCancellationRequested)
        {
            return ValueTask.FromResult(new AttemptResult(AttemptOutcome.Retry, error, null));
        }

        if (run.Output.Started)
        {
            InferenceLog.FailedAfterOutput(logger, run.Job.Id, session.ProviderId, reason);
        }

        return Final(run, relay, error);
    }

    /// <summary>The job ends with <paramref name="error"/>; a started stream gets it as its last event.</summary>
    private static async ValueTask<AttemptResult> Final(JobRun run, ResponseRelay relay, ApiError error)
    {
        if (run.Output.Started && !run.Http.RequestAborted.IsCancellationRequested)
        {
            relay.WriteError(error);
            try
            {
                await run.Http.Response.BodyWriter.FlushAsync(run.Http.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                // The consumer left meanwhile.
            }
        }

        return new AttemptResult(AttemptOutcome.Final, error, null);
    }

    private async Task ReplyAsync(HttpContext http, ApiError error, ErrorShape shape)
    {
        metrics.Error(error.Status, error.Code);
        await error.WriteResponseAsync(http.Response, shape, http.RequestAborted);
    }

    private enum AttemptOutcome
    {
        Completed,
        Retry,
        Final,
        Cancelled,
    }

    private readonly record struct AttemptResult(AttemptOutcome Outcome, ApiError? Error, string? CancelReason);

    private sealed record JobRun(
        HttpContext Http,
        InferenceRequest Request,
        InferenceJob Job,
        BillingReservation Reservation,
        ConsumerOutput Output,
        CancellationTokenSource Deadline,
        DateTimeOffset DeadlineAt,
        string Consumer,
        CancellationToken Cancellation)
    {
        /// <summary>Output tokens of the stream flushed to the consumer so far; null until a first flush went out.</summary>
        public long? DeliveredOutputTokens { get; set; }

        /// <summary>Who produced the output that reached the consumer, at what price; null while none did.</summary>
        public (string ProviderId, ModelPrice Price, long LinkEpoch)? DeliveredBy { get; set; }
    }
}
