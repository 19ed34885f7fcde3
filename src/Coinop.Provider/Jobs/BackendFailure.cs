using System.Net;
using System.Text;
using System.Text.Json;
using Coinop.Core.Protocol;

namespace Coinop.Provider.Jobs;

/// <summary>Maps what went wrong with a backend call to a protocol error code and a short message.</summary>
public static class BackendFailure
{
    private const int MaxMessageLength = 500;

    /// <summary>The backend answered with an HTTP error before any output.</summary>
    public static (string Code, string Message) FromStatus(HttpStatusCode status, ReadOnlySpan<byte> body)
    {
        var code = (int)status switch
        {
            401 or 403 => JobErrorCodes.AuthRejectedByBackend,
            404 => JobErrorCodes.ModelNotLoaded,
            429 or 503 => JobErrorCodes.OutOfCapacity,
            400 or 422 => JobErrorCodes.InvalidRequest,
            408 or 504 => JobErrorCodes.BackendTimeout,
            _ => JobErrorCodes.Internal,
        };
        var detail = MessageOf(body);
        return (code, detail is null ? $"backend answered HTTP {(int)status}" : $"backend answered HTTP {(int)status}: {detail}");
    }

    /// <summary>The call failed at the transport: the backend could not be reached or broke the connection.</summary>
    public static string CodeFor(Exception ex) => ex switch
    {
        // Transport failures: refused, reset, closed without (or in the middle of) an answer.
        HttpRequestException { HttpRequestError: HttpRequestError.ConfigurationLimitExceeded } => JobErrorCodes.Internal,
        HttpRequestException or IOException => JobErrorCodes.BackendUnreachable,
        TimeoutException => JobErrorCodes.BackendTimeout,

        // SocketsHttpHandler reports a connect timeout as a cancellation caused by a TimeoutException.
        OperationCanceledException { InnerException: TimeoutException } => JobErrorCodes.BackendUnreachable,
        _ => JobErrorCodes.Internal,
    };

    /// <summary>The error message a backend put in its body: OpenAI <c>{"error":{"message"}}</c>, Ollama <c>{"error":"…"}</c>, FastAPI <c>{"detail"}</c>, or the text.</summary>
    public static string? MessageOf(ReadOnlySpan<byte> body)
    {
        if (body.IsEmpty)
        {
            return null;
        }

        try
        {
            var reader = new Utf8JsonReader(body);
            using var document = JsonDocument.ParseValue(ref reader);
            var root = document.RootElement;
            if (root.ValueKind == JsonValueKind.Object)
            {
                if (root.TryGetProperty("error", out var error))
                {
                    if (error.ValueKind == JsonValueKind.String)
                    {
                        return Clip(error.GetString());
                    }

                    if (error.ValueKind == JsonValueKind.Object && error.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String)
                    {
                        return Clip(m.GetString());
                    }
                }

                foreach (var name in (ReadOnlySpan<string>)["message", "detail"])
                {
                    if (root.TryGetProperty(name, out var value))
                    {
                        return Clip(value.ValueKind == JsonValueKind.String ? value.GetString() : value.GetRawText());
                    }
                }
            }
        }
        catch (JsonException)
        {
            // Not JSON: use the text.
        }

        return Clip(Encoding.UTF8.GetString(body));
    }

    private static string? Clip(string? text)
    {
        text = text?.Trim();
        return string.IsNullOrEmpty(text) ? null : Coinop.Core.Text.TextCut.Quote(text, MaxMessageLength);
    }
}
