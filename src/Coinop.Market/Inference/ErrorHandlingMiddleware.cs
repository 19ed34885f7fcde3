using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Logging;

namespace Coinop.Market.Inference;

/// <summary>
/// The last line of defence: bad input is answered where it is found, so anything reaching this middleware is
/// either a request Kestrel rejected (an oversized body: its status, as JSON) or a bug (a JSON 500, logged).
/// </summary>
public sealed class ErrorHandlingMiddleware(RequestDelegate next, ILogger<ErrorHandlingMiddleware> logger, InferenceMetrics metrics)
{
    public async Task InvokeAsync(HttpContext context)
    {
        try
        {
            await next(context);
            if (context.Response.StatusCode >= 400 && !context.Response.HasStarted && context.Response.ContentType is null)
            {
                // An error the framework answered without a body (no endpoint, not this method, a route value or query
                // that minimal-API binding refused): still a JSON error a client can read, whatever route it was.
                await BodilessError(context).WriteResponseAsync(context.Response, ShapeOf(context), context.RequestAborted);
            }
        }
        catch (BadHttpRequestException ex) when (!context.Response.HasStarted)
        {
            var error = ex.StatusCode == StatusCodes.Status413PayloadTooLarge
                ? new ApiError(413, "invalid_request_error", "request_too_large", "the request body is too large")
                : new ApiError(ex.StatusCode, "invalid_request_error", "bad_request", ex.Message);
            await error.WriteResponseAsync(context.Response, ShapeOf(context), CancellationToken.None);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; nobody is left to answer.
        }
        catch (Exception ex)
        {
            InferenceLog.Unhandled(logger, context.Request.Method, context.Request.Path, ex);
            metrics.Error(500, "internal_error");
            if (!context.Response.HasStarted)
            {
                context.Response.Clear();
                await ApiError.Internal().WriteResponseAsync(context.Response, ShapeOf(context), CancellationToken.None);
            }
            else
            {
                context.Abort();
            }
        }
    }

    private static ApiError BodilessError(HttpContext context) => context.Response.StatusCode switch
    {
        404 => new ApiError(404, "invalid_request_error", "unknown_endpoint", $"no endpoint {context.Request.Path}"),
        405 => new ApiError(405, "invalid_request_error", "method_not_allowed", $"{context.Request.Method} is not allowed on {context.Request.Path}"),
        var status => new ApiError(status, status >= 500 ? "server_error" : "invalid_request_error",
            ReasonPhrases.GetReasonPhrase(status) is { Length: > 0 } reason ? reason.ToLowerInvariant().Replace(' ', '_') : "error",
            $"{context.Request.Method} {context.Request.Path}: {ReasonPhrases.GetReasonPhrase(status).ToLowerInvariant()}"),
    };

    private static ErrorShape ShapeOf(HttpContext context) =>
        context.Request.Path.StartsWithSegments("/v1/messages", StringComparison.Ordinal) ? ErrorShape.Anthropic : ErrorShape.OpenAi;
}

/// <summary>Puts <see cref="ErrorHandlingMiddleware"/> first in the pipeline without the host having to know about it.</summary>
internal sealed class ErrorHandlingStartupFilter : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        app.UseMiddleware<ErrorHandlingMiddleware>();
        next(app);
    };
}
