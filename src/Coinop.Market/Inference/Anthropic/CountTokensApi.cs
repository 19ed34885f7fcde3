using System.Buffers;
using System.Text.Json;
using Coinop.Market.Hosting;
using Microsoft.AspNetCore.Http;
using Coinop.Core.Text;

namespace Coinop.Market.Inference.Anthropic;

/// <summary>
/// <c>POST /v1/messages/count_tokens</c>: <c>{"input_tokens": N}</c> for a Messages request as the market would send
/// it (see <see cref="TokenCounter"/>). Free: no payment, no provider; the body is checked like a Messages request
/// (without <c>max_tokens</c>) and a malformed one gets a 400 in Anthropic's error shape. The header
/// <c>X-Coinop-Token-Count</c> says whether the count is <c>exact</c> or an <c>estimate</c>.
/// </summary>
public static class CountTokensApi
{
    public const string CountKindHeader = "X-Coinop-Token-Count";

    public static async Task CountAsync(HttpContext http, MarketOptions market)
    {
        var limit = market.MaxRequestBodyBytes;
        if (http.Request.ContentLength > limit)
        {
            await ApiError.TooLarge(limit).WriteResponseAsync(http.Response, ErrorShape.Anthropic, http.RequestAborted);
            return;
        }

        JsonDocument document;
        try
        {
            using var body = new MemoryStream();
            await http.Request.Body.CopyToAsync(new LimitedStream(body, limit), http.RequestAborted);
            document = JsonDocument.Parse(body.GetBuffer().AsMemory(0, (int)body.Length), new JsonDocumentOptions { MaxDepth = 64 });
            if (!JsonStrings.AllReadable(body.GetBuffer().AsSpan(0, (int)body.Length)))
            {
                document.Dispose();
                await ApiError.InvalidBody(JsonStrings.Unreadable).WriteResponseAsync(http.Response, ErrorShape.Anthropic, http.RequestAborted);
                return;
            }
        }
        catch (LimitExceededException)
        {
            await ApiError.TooLarge(limit).WriteResponseAsync(http.Response, ErrorShape.Anthropic, http.RequestAborted);
            return;
        }
        catch (JsonException ex)
        {
            await ApiError.InvalidBody("the body is not valid JSON: " + ex.Message).WriteResponseAsync(http.Response, ErrorShape.Anthropic, http.RequestAborted);
            return;
        }

        using (document)
        {
            var root = document.RootElement;
            var error = root.ValueKind != JsonValueKind.Object ? ApiError.InvalidBody("the body must be a JSON object")
                : !root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.String || model.GetString()!.Length is 0 or > 256
                    ? ApiError.InvalidBody("model: a string of 1 to 256 characters is required")
                    : AnthropicCheck.Check(root, out _);
            if (error is not null)
            {
                await error.WriteResponseAsync(http.Response, ErrorShape.Anthropic, http.RequestAborted);
                return;
            }

            var (tokens, kind) = TokenCounter.Count(root);
            var output = new ArrayBufferWriter<byte>(32);
            using (var json = new Utf8JsonWriter(output))
            {
                json.WriteStartObject();
                json.WriteNumber("input_tokens", tokens);
                json.WriteEndObject();
            }

            http.Response.ContentType = "application/json";
            http.Response.Headers[CountKindHeader] = kind == TokenCountKind.Exact ? "exact" : "estimate";
            http.Response.ContentLength = output.WrittenCount;
            await http.Response.Body.WriteAsync(output.WrittenMemory, http.RequestAborted);
        }
    }

    private sealed class LimitExceededException : Exception;

    /// <summary>A write-only stream that refuses to grow past a limit.</summary>
    private sealed class LimitedStream(Stream inner, long limit) : Stream
    {
        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => inner.Length;

        public override long Position
        {
            get => inner.Position;
            set => throw new NotSupportedException();
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (inner.Length + buffer.Length > limit)
            {
                throw new LimitExceededException();
            }

            inner.Write(buffer);
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Write(buffer.Span);
            return ValueTask.CompletedTask;
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            Write(buffer.AsSpan(offset, count));
            return Task.CompletedTask;
        }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
