using System.IO.Pipelines;
using Microsoft.AspNetCore.Http;

namespace Coinop.Market.Inference;

/// <summary>
/// The consumer's response. Status and headers are set when the first output is written (Kestrel starts the
/// response on the first write), so until then an error can still replace it; after it, the job is bound.
/// </summary>
public sealed class ConsumerOutput(HttpResponse response)
{
    public bool Started { get; private set; }

    /// <summary>Starts the response (once) and returns its writer.</summary>
    public PipeWriter Begin(string contentType, IReadOnlyList<KeyValuePair<string, string>>? headers = null, long? contentLength = null)
    {
        if (!Started)
        {
            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = contentType;
            if (contentType.StartsWith("text/event-stream", StringComparison.Ordinal))
            {
                response.Headers.CacheControl = "no-cache";
            }

            if (headers is not null)
            {
                foreach (var (name, value) in headers)
                {
                    response.Headers[name] = value;
                }
            }

            response.ContentLength = contentLength;
            Started = true;
        }

        return response.BodyWriter;
    }

    /// <summary>Bytes written but not yet flushed to the consumer.</summary>
    public long Unflushed => Started ? response.BodyWriter.UnflushedBytes : 0;
}

/// <summary>The provider's output cannot be relayed (not the format it should be, or too large): a provider failure.</summary>
public sealed class ProviderOutputException(string message) : Exception(message)
{
    /// <summary>
    /// The backend put an <c>error</c> object in its output: a provider failure like any other, so the consumer gets the
    /// market's own error (its type and code), quoting at most 200 characters of the provider's words.
    /// </summary>
    public static ProviderOutputException BackendError(string errorJson) =>
        new("the backend reported an error in its stream: " + Coinop.Core.Text.TextCut.Quote(errorJson, 200));
}
