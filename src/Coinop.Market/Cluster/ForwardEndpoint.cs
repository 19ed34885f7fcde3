using System.Buffers;
using System.Globalization;
using System.Text;
using Coinop.Core.Protocol;
using Coinop.Market.Gateway;
using Coinop.Market.Hosting;
using Coinop.Market.Inference;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Coinop.Market.Cluster;

/// <summary>
/// <c>POST /internal/jobs</c>, the receiving end of the node-to-node channel: another node of the market sends a job for a
/// provider this node holds. Only a request signed with the market's node secret is taken (<see cref="NodeAuth"/>); the
/// provider and link epoch must still be this node's, else 409 (the sender tries elsewhere). The job runs on the local
/// session exactly like a local attempt, and its output is streamed back frame by frame (<see cref="ForwardFrames"/>):
/// window is granted to the provider only as the sender reads, and a sender that goes away cancels the job.
/// </summary>
public sealed class ForwardEndpoint(ProviderDirectory directory, NodeAuth auth, MarketOptions market, TimeProvider time, ClusterMetrics metrics,
    ILogger<ForwardEndpoint> logger)
{
    private const int MinWindow = 4096;
    private const int MaxWindow = 16 * 1024 * 1024;

    public async Task HandleAsync(HttpContext http)
    {
        var aborted = http.RequestAborted;
        var body = await ReadBodyAsync(http.Request, market.MaxRequestBodyBytes + 1024 * 1024, aborted);
        if (body is null)
        {
            await ReplyAsync(http, StatusCodes.Status413PayloadTooLarge, "job too large");
            return;
        }

        var from = auth.Verify(http.Request, body);
        if (from is null)
        {
            ClusterLog.ForwardUnauthenticated(logger, http.Connection.RemoteIpAddress?.ToString() ?? "?");
            await ReplyAsync(http, StatusCodes.Status401Unauthorized, "this endpoint is for the market's own nodes");
            return;
        }

        if (ProtocolJson.TryDeserialize(body) is not JobMessage { Model: not null, Path: not null } job
            || job.WindowBytes is < MinWindow or > MaxWindow
            || http.Request.Headers[ForwardClient.ProviderHeader].ToString() is not { Length: > 0 } providerId
            || !long.TryParse(http.Request.Headers[ForwardClient.EpochHeader], NumberStyles.None, CultureInfo.InvariantCulture, out var epoch))
        {
            await ReplyAsync(http, StatusCodes.Status400BadRequest, "not a forwarded job");
            return;
        }

        var session = directory.Find(providerId);
        if (session is null || session.LinkEpoch != epoch || !session.Accepting)
        {
            await ReplyAsync(http, StatusCodes.Status409Conflict, "link_moved");
            return;
        }

        if (!session.TryAcquireSlot())
        {
            await ReplyAsync(http, StatusCodes.Status503ServiceUnavailable, "out_of_capacity");
            return;
        }

        metrics.ForwardServed();
        try
        {
            await RunAsync(http, session, job, from);
        }
        finally
        {
            session.ReleaseSlot();
        }
    }

    private async Task RunAsync(HttpContext http, ProviderSession session, JobMessage job, string from)
    {
        var aborted = http.RequestAborted;
        using var attempt = new JobAttempt(job.JobId, job.Fence, session, job.WindowBytes);
        var startedAt = time.GetTimestamp();
        try
        {
            if (!await session.StartJobAsync(attempt, job, aborted))
            {
                await ReplyAsync(http, StatusCodes.Status409Conflict, "link_moved");
                return;
            }

            http.Response.StatusCode = StatusCodes.Status200OK;
            http.Response.ContentType = ForwardFrames.ContentType;
            await http.Response.StartAsync(aborted);
            var output = http.Response.BodyWriter;
            var gotOutput = false;
            while (true)
            {
                var e = await attempt.ReadAsync(aborted);
                switch (e.Kind)
                {
                    case AttemptEventKind.Chunk:
                        try
                        {
                            ForwardFrames.Write(output, ForwardFrames.Chunk, e.Buffer.AsSpan(0, e.Length));
                        }
                        finally
                        {
                            ArrayPool<byte>.Shared.Return(e.Buffer!);
                        }

                        if (!gotOutput)
                        {
                            gotOutput = true;
                            session.RecordSuccess(time.GetElapsedTime(startedAt).TotalMilliseconds);
                        }

                        // Window goes back to the provider only once the sender's connection took the bytes.
                        var flushed = await output.FlushAsync(aborted);
                        if (flushed.IsCanceled || flushed.IsCompleted)
                        {
                            throw new OperationCanceledException("the sending node stopped reading");
                        }

                        attempt.Consumed(e.Length);
                        break;
                    case AttemptEventKind.Done:
                        ForwardFrames.Write(output, ForwardFrames.Done, ProtocolJson.Serialize(e.Done!));
                        await output.FlushAsync(aborted);
                        return;
                    case AttemptEventKind.Error:
                        if (e.Error!.Code != JobErrorCodes.InvalidRequest)
                        {
                            session.RecordFailure();
                        }

                        ForwardFrames.Write(output, ForwardFrames.Error, ProtocolJson.Serialize(e.Error));
                        await output.FlushAsync(aborted);
                        return;
                    default:
                        session.RecordFailure();
                        ForwardFrames.Write(output, ForwardFrames.Lost, Encoding.UTF8.GetBytes(e.Reason ?? "provider_lost"));
                        await output.FlushAsync(aborted);
                        return;
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException)
        {
            // The sending node's request ended (its consumer left, a deadline passed, it died): the job stops here too.
            ClusterLog.ForwardCancelled(logger, job.JobId, from);
            session.CancelJob(attempt, "consumer_gone");
        }
        finally
        {
            session.EndJob(attempt);
        }
    }

    private static async Task<byte[]?> ReadBodyAsync(HttpRequest request, long limit, CancellationToken cancellationToken)
    {
        if (request.ContentLength > limit)
        {
            return null;
        }

        using var buffer = new MemoryStream();
        var chunk = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            while (true)
            {
                var n = await request.Body.ReadAsync(chunk, cancellationToken);
                if (n == 0)
                {
                    return buffer.ToArray();
                }

                if (buffer.Length + n > limit)
                {
                    return null;
                }

                buffer.Write(chunk, 0, n);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
    }

    private static Task ReplyAsync(HttpContext http, int status, string error)
    {
        http.Response.StatusCode = status;
        return http.Response.WriteAsJsonAsync(new GatewayError(error), GatewayJsonContext.Default.GatewayError, cancellationToken: http.RequestAborted);
    }
}
