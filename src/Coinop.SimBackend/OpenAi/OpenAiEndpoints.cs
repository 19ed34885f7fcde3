using System.Text.Json;
using Coinop.Core.Text;
using Coinop.SimBackend.Generation;
using Coinop.SimBackend.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Coinop.SimBackend.OpenAi;

/// <summary>
/// The OpenAI API of the simulator (<c>/v1/models</c>, chat and text completions, embeddings), byte-compatible
/// with OpenAI's JSON and SSE shapes. Handlers are raw <see cref="RequestDelegate"/>s that write pre-encoded
/// fragments so the simulator adds as little as possible to latency benchmarks.
/// </summary>
public static class OpenAiEndpoints
{
    public static void MapOpenAi(this WebApplication app)
    {
        var sim = app.Services.GetRequiredService<Simulator>();
        var models = ModelList(sim);
        app.MapGet("/v1/models", ctx => WriteJsonAsync(ctx, 200, models));
        app.MapPost("/v1/chat/completions", ctx => CompleteAsync(ctx, sim, SimEndpoint.Chat));
        app.MapPost("/v1/completions", ctx => CompleteAsync(ctx, sim, SimEndpoint.Completion));
        app.MapPost("/v1/embeddings", ctx => CompleteAsync(ctx, sim, SimEndpoint.Embedding));
    }

    internal static async Task WriteJsonAsync(HttpContext ctx, int status, ReadOnlyMemory<byte> body)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        ctx.Response.ContentLength = body.Length;
        await ctx.Response.Body.WriteAsync(body, ctx.RequestAborted);
    }

    internal static async Task WriteErrorAsync(HttpContext ctx, int status, string message, string? code = null)
    {
        using var buffer = new PooledBuffer(512);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteStartObject("error");
            json.WriteString("message", message);
            json.WriteString("type", status switch
            {
                401 => "authentication_error",
                403 => "permission_error",
                429 => "rate_limit_error",
                >= 500 => "server_error",
                _ => "invalid_request_error",
            });
            json.WriteNull("param");
            if (code is null)
            {
                json.WriteNull("code");
            }
            else
            {
                json.WriteString("code", code);
            }

            json.WriteEndObject();
            json.WriteEndObject();
        }

        await WriteJsonAsync(ctx, status, buffer.WrittenMemory);
    }

    private static byte[] ModelList(Simulator sim)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("object", "list");
            json.WriteStartArray("data");
            foreach (var name in sim.ModelNames)
            {
                json.WriteStartObject();
                json.WriteString("id", name);
                json.WriteString("object", "model");
                json.WriteNumber("created", 1_700_000_000);
                json.WriteString("owned_by", Simulator.OwnedBy);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    private static async Task CompleteAsync(HttpContext ctx, Simulator sim, SimEndpoint endpoint)
    {
        using var tracking = sim.Track();
        var aborted = ctx.RequestAborted;
        try
        {
            SimRequest? request;
            string? error;
            try
            {
                using var body = new MemoryStream();
                await ctx.Request.Body.CopyToAsync(body, aborted);
                var bytes = body.GetBuffer().AsMemory(0, (int)body.Length);
                using var document = JsonDocument.Parse(bytes);
                // Every string checked once here: GetString refuses an escaped lone surrogate ("\ud800"), and a tool's
                // schema is read only while the answer is made, maybe mid-stream.
                if (JsonStrings.AllReadable(bytes.Span))
                {
                    sim.Record(document.RootElement);
                    request = SimRequest.TryParse(document.RootElement, endpoint, out error);
                }
                else
                {
                    (request, error) = (null, JsonStrings.Unreadable);
                }
            }
            catch (JsonException)
            {
                (request, error) = (null, "the request body is not valid JSON");
            }

            if (request is null)
            {
                await WriteErrorAsync(ctx, 400, error!);
                return;
            }

            if (!sim.TryGetModel(request.Model, out var model))
            {
                await WriteErrorAsync(ctx, 404, $"The model '{TextCut.Quote(request.Model, 100)}' does not exist (this simulator serves {string.Join(", ", sim.ModelNames)})", "model_not_found");
                return;
            }

            if (!SimDirectives.TryParse(request.Prompt, out var directives, out error))
            {
                await WriteErrorAsync(ctx, 400, error!);
                return;
            }

            if (directives.Status is { } status)
            {
                await WriteErrorAsync(ctx, status, $"simulated failure: HTTP {status} requested by [[sim:status={status}]]");
                return;
            }

            if (directives.Hang)
            {
                await Task.Delay(Timeout.InfiniteTimeSpan, sim.Time, aborted);
                return;
            }

            if (request.ImageCount > 0 && !sim.IsVision(request.Model))
            {
                await WriteErrorAsync(ctx, 400, $"model '{TextCut.Quote(request.Model, 100)}' does not support images");
                return;
            }

            if (directives.ToolCalls is not null || directives.Reasoning is not null || directives.Finish is not null)
            {
                if (endpoint != SimEndpoint.Chat || !ScriptedAnswer.TryCheck(request, directives, out error))
                {
                    await WriteErrorAsync(ctx, 400, error ?? "tool calls, reasoning and finish directives are for chat completions");
                    return;
                }

                var scripted = new ScriptedAnswer(sim, request, directives);
                await (request.Stream ? scripted.StreamAsync(ctx) : scripted.WriteJsonAsync(ctx));
                return;
            }

            var answer = new GeneratedAnswer(sim, request, model, directives, endpoint, tracking.Arrived);
            if (endpoint == SimEndpoint.Embedding)
            {
                await answer.Pace(0, aborted);
                using var body = answer.Embeddings();
                await answer.SendBodyAsync(ctx, body.WrittenMemory);
            }
            else if (request.Stream)
            {
                await answer.StreamAsync(ctx);
            }
            else
            {
                await answer.Pace(Math.Max(answer.Count - 1, 0), aborted);
                using var body = answer.Json();
                await answer.SendBodyAsync(ctx, body.WrittenMemory);
            }
        }
        catch (OperationCanceledException) when (aborted.IsCancellationRequested)
        {
            // The client went away; nothing to answer.
        }
    }
}
