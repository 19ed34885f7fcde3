using System.Buffers;
using Coinop.Core.Pricing;
using Coinop.Core.Protocol;
using Coinop.Market.Gateway;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Coinop.Market.Inference;

/// <summary>
/// Runs one attempt of a job at one provider: sends the job under the attempt's fence, relays the provider's output
/// to the consumer as it is flushed (granting window back), and on <c>job_done</c> settles the billable usage and ends
/// the response. A failure says whether the job may be retried elsewhere (nothing reached the consumer yet) or ends
/// here with an error in the stream. <see cref="InferencePipeline"/> decides what to do with that answer.
/// </summary>
/// <remarks>Logs under the pipeline's category, as before the two were split, so operators' log filters still apply.</remarks>
public sealed class AttemptRunner(
    IInferenceBilling billing,
    InferenceMetrics metrics,
    IOptions<InferenceOptions> inferenceOptions,
    TimeProvider time,
    IHostApplicationLifetime lifetime,
    ILogger<InferencePipeline> logger)
{
    private readonly InferenceOptions _options = inferenceOptions.Value;

    /// <summary>
    /// Sends the job to <paramref name="session"/> under <paramref name="fence"/> and relays its output until it is done,
    /// fails or the job's time runs out. The caller holds the provider's slot and gives it back after.
    /// </summary>
    internal async Task<AttemptResult> RunAsync(JobRun run, IRoutableProvider session, ModelOffer offer, long fence)
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
                var e = await attempt.ReadAsync(wait.Token);
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
                            // Charged if the stream breaks: the pieces relayed, never more than the market counts in the
                            // text itself (a provider's empty tool-call starts or text-free events are pieces, not tokens).
                            run.DeliveredOutputTokens = Math.Min(relay.OutputTokens, relay.CountedOutputTokens);
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
                        // The backend refused the request itself: the consumer's mistake, or a provider refusing everything
                        // it is given (its word; the market cannot check it). Not held against the provider, but before
                        // any output another provider is asked: the refusal is the consumer's 400 only when none serves it.
                        var refusal = ApiError.InvalidBody("the backend refused the request: " + e.Error.Message);
                        return run.Job.Rerunnable && !run.Output.Started && !lifetime.ApplicationStopping.IsCancellationRequested
                            ? new AttemptResult(AttemptOutcome.Retry, refusal, null)
                            : await Final(run, relay, refusal);

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
        try
        {
            await FlushAsync(run, run.Http.RequestAborted);
        }
        catch (OperationCanceledException)
        {
            // The consumer left after the work was done; the job still completed.
        }

        var now = time.GetUtcNow();
        if (run.Job.State == JobState.Dispatched)
        {
            // The flush that would have recorded the first byte did not finish (the consumer left).
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
        // Output written but not yet flushed (events of a frame before the one that broke it) binds the job as much as
        // output flushed: it cannot be taken back, so another attempt's output would follow it, and a retry that finds no
        // provider would end the started stream without its error event.
        if (run.Job.Rerunnable && !run.Output.Started && !lifetime.ApplicationStopping.IsCancellationRequested)
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
}
