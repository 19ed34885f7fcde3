using System.Buffers;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Coinop.Market.Inference;

/// <summary>Which API a request came through, so its errors take that API's shape.</summary>
public enum ErrorShape
{
    OpenAi,
    Anthropic,
}

/// <summary>An error a consumer sees: HTTP status, OpenAI-style type and code, and a readable message.</summary>
public sealed record ApiError(int Status, string Type, string Code, string Message)
{
    public static ApiError InvalidBody(string message) => new(400, "invalid_request_error", "invalid_body", message);

    public static ApiError InvalidHeader(string message) => new(400, "invalid_request_error", "invalid_header", message);

    public static ApiError TooLarge(long limit) =>
        new(413, "invalid_request_error", "request_too_large", $"the request body exceeds the market's limit of {limit} bytes");

    public static ApiError ModelNotFound(string model) =>
        new(404, "invalid_request_error", "model_not_found", $"no provider online offers model '{model}'");

    public static ApiError NoProvider(string model) =>
        new(503, "service_unavailable", "no_provider_available", $"no provider available for model '{model}'");

    public static ApiError QueueFull(string model, int retryAfterSeconds) =>
        new(429, "rate_limit_error", "queue_full",
            $"every provider of model '{model}' is busy and its queue is full; retry after {retryAfterSeconds} s");

    public static ApiError Unsuitable(string model, string need) =>
        new(400, "invalid_request_error", "no_suitable_provider", $"no provider of model '{model}' can serve {need}");

    public static ApiError Deadline() => new(504, "timeout", "deadline_exceeded", "the request deadline passed before the job finished");

    public static ApiError ProviderFailed(string detail) => new(502, "provider_error", "provider_failed", "the provider failed: " + detail);

    public static ApiError ShuttingDown() => new(503, "service_unavailable", "market_draining", "the market node is shutting down; retry");

    public static ApiError Internal() => new(500, "server_error", "internal_error", "internal error");

    /// <summary>The Anthropic error type for this status.</summary>
    public string AnthropicType => Status switch
    {
        400 or 413 or 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        503 => "overloaded_error",
        504 => "timeout_error",
        _ => "api_error",
    };

    /// <summary>The JSON body in the shape of <paramref name="shape"/>.</summary>
    public void WriteJson(IBufferWriter<byte> output, ErrorShape shape)
    {
        using var json = new Utf8JsonWriter(output);
        json.WriteStartObject();
        if (shape == ErrorShape.Anthropic)
        {
            json.WriteString("type", "error");
            json.WriteStartObject("error");
            json.WriteString("type", AnthropicType);
            json.WriteString("message", Message);
        }
        else
        {
            json.WriteStartObject("error");
            json.WriteString("message", Message);
            json.WriteString("type", Type);
            json.WriteString("code", Code);
        }

        json.WriteEndObject();
        json.WriteEndObject();
    }

    /// <summary>Writes the error as the whole response (the response must not have started).</summary>
    public async Task WriteResponseAsync(HttpResponse response, ErrorShape shape, CancellationToken cancellationToken)
    {
        var body = new ArrayBufferWriter<byte>(256);
        WriteJson(body, shape);
        response.StatusCode = Status;
        response.ContentType = "application/json";
        response.ContentLength = body.WrittenCount;
        await response.Body.WriteAsync(body.WrittenMemory, cancellationToken);
    }
}
