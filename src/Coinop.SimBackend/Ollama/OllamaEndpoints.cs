using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Coinop.SimBackend.Hosting;
using Coinop.SimBackend.OpenAi;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Coinop.SimBackend.Ollama;

/// <summary>
/// The parts of Ollama's native API that clients use for discovery: version, installed models and model details
/// with a context length. Inference goes through Ollama's OpenAI-compatible <c>/v1</c> routes, which are the
/// simulator's OpenAI endpoints.
/// </summary>
public static class OllamaEndpoints
{
    public const string Version = "0.0.0-coinop-simulator";

    public static void MapOllama(this WebApplication app)
    {
        var sim = app.Services.GetRequiredService<Simulator>();
        var version = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string> { ["version"] = Version });
        var tags = Tags(sim);
        var health = "{\"status\":\"ok\"}"u8.ToArray();
        app.MapGet("/api/version", ctx => OpenAiEndpoints.WriteJsonAsync(ctx, 200, version));
        app.MapGet("/api/tags", ctx => OpenAiEndpoints.WriteJsonAsync(ctx, 200, tags));
        app.MapPost("/api/show", ctx => ShowAsync(ctx, sim));

        // llama.cpp and vLLM style liveness, so the simulator can stand in for those kinds too.
        app.MapGet("/health", ctx => OpenAiEndpoints.WriteJsonAsync(ctx, 200, health));
    }

    private static byte[] Tags(Simulator sim)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteStartArray("models");
            foreach (var name in sim.ModelNames)
            {
                json.WriteStartObject();
                json.WriteString("name", name);
                json.WriteString("model", name);
                json.WriteString("modified_at", "2025-01-01T00:00:00Z");
                json.WriteNumber("size", 0);
                json.WriteString("digest", Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(name))));
                WriteDetails(json);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return buffer.ToArray();
    }

    private static async Task ShowAsync(HttpContext ctx, Simulator sim)
    {
        string? name = null;
        try
        {
            using var document = await JsonDocument.ParseAsync(ctx.Request.Body, default, ctx.RequestAborted);
            var root = document.RootElement;
            // Older clients send "name", newer ones "model".
            if (root.ValueKind == JsonValueKind.Object
                && (root.TryGetProperty("model", out var m) || root.TryGetProperty("name", out m))
                && m.ValueKind == JsonValueKind.String)
            {
                name = m.GetString();
            }
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            // Not JSON, or a name holding an escaped lone surrogate (GetString refuses it): no model named.
            name = null;
        }

        if (name is null)
        {
            await WriteErrorAsync(ctx, 400, "model is required");
            return;
        }

        if (!sim.TryGetModel(name, out _))
        {
            await WriteErrorAsync(ctx, 404, $"model '{Coinop.Core.Text.TextCut.Quote(name, 100)}' not found");
            return;
        }

        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("license", "coinop simulator: not a real model");
            json.WriteString("modelfile", "# coinop simulator: deterministic text, not a real model\nFROM " + name);
            json.WriteString("parameters", $"num_ctx {sim.Options.ContextWindow}");
            json.WriteString("template", "{{ .Prompt }}");
            WriteDetails(json);
            json.WriteStartObject("model_info");
            json.WriteString("general.architecture", Simulator.OwnedBy);
            json.WriteNumber("general.parameter_count", 0);
            json.WriteNumber(Simulator.OwnedBy + ".context_length", sim.Options.ContextWindow);
            json.WriteNumber(Simulator.OwnedBy + ".embedding_length", sim.Options.EmbeddingDimensions);
            json.WriteEndObject();
            json.WriteStartArray("capabilities");
            json.WriteStringValue("completion");
            json.WriteStringValue("embedding");
            json.WriteStringValue("tools");
            json.WriteStringValue("thinking");
            if (sim.IsVision(name))
            {
                json.WriteStringValue("vision");
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        await OpenAiEndpoints.WriteJsonAsync(ctx, 200, buffer.ToArray());
    }

    private static void WriteDetails(Utf8JsonWriter json)
    {
        json.WriteStartObject("details");
        json.WriteString("parent_model", "");
        json.WriteString("format", "gguf");
        json.WriteString("family", Simulator.OwnedBy);
        json.WriteStartArray("families");
        json.WriteStringValue(Simulator.OwnedBy);
        json.WriteEndArray();
        json.WriteString("parameter_size", "0B");
        json.WriteString("quantization_level", "none");
        json.WriteEndObject();
    }

    /// <summary>Ollama's native routes answer errors as <c>{"error": "..."}</c>.</summary>
    private static Task WriteErrorAsync(HttpContext ctx, int status, string message) =>
        OpenAiEndpoints.WriteJsonAsync(ctx, status, JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string> { ["error"] = message }));
}
