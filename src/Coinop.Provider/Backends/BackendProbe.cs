using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace Coinop.Provider.Backends;

/// <summary>A model one backend serves, with what the backend says about it.</summary>
/// <param name="Simulated">The coinop simulator serves it (deterministic text, not a real model): shown as backend <c>simulator</c>.</param>
/// <param name="Vision">The backend's metadata says the model takes images.</param>
public sealed record DiscoveredModel(string Model, int? ContextWindow, bool Embeddings, bool Simulated = false, bool Vision = false);

/// <summary>The result of probing one backend: healthy with its models, or the problem seen.</summary>
public sealed record BackendStatus(BackendEndpoint Backend, bool Healthy, string? Problem, IReadOnlyList<DiscoveredModel> Models)
{
    public static BackendStatus Down(BackendEndpoint backend, string problem) => new(backend, false, problem, []);
}

/// <summary>
/// Asks one backend whether it is up and which models it serves, in the backend's own dialect: Ollama
/// (<c>/api/version</c>, <c>/api/tags</c>, <c>/api/show</c>), vLLM (<c>/health</c>, <c>max_model_len</c>),
/// llama.cpp (<c>/health</c>, <c>/props</c> n_ctx), LM Studio (<c>/api/v0/models</c>) or any OpenAI-compatible
/// server (<c>/v1/models</c>).
/// </summary>
public sealed class BackendProbe(HttpClient http, TimeProvider time)
{
    public async Task<BackendStatus> ProbeAsync(BackendEndpoint backend, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = new CancellationTokenSource(timeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, cancellationToken);
        var ct = linked.Token;
        try
        {
            var models = backend.Kind switch
            {
                BackendKind.Ollama => await OllamaAsync(backend, ct),
                BackendKind.Vllm => await VllmAsync(backend, ct),
                BackendKind.LlamaCpp => await LlamaCppAsync(backend, ct),
                BackendKind.LmStudio => await LmStudioAsync(backend, ct),
                _ => await OpenAiModelsAsync(backend, ct),
            };
            return new BackendStatus(backend, true, null, models);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return BackendStatus.Down(backend, $"no answer within {timeout.TotalSeconds:0.#}s");
        }
        catch (HttpRequestException ex)
        {
            return BackendStatus.Down(backend, FirstLine(ex.Message));
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or NotSupportedException)
        {
            return BackendStatus.Down(backend, "unexpected answer: " + FirstLine(ex.Message));
        }
    }

    private async Task<IReadOnlyList<DiscoveredModel>> OllamaAsync(BackendEndpoint backend, CancellationToken ct)
    {
        bool simulated;
        using (var version = await GetJsonAsync(backend, "api/version", ct))
        {
            simulated = version.RootElement.TryGetProperty("version", out var v) && v.ValueKind == JsonValueKind.String
                && v.GetString()!.EndsWith(SimulatorOwner, StringComparison.Ordinal);
        }

        using var tags = await GetJsonAsync(backend, "api/tags", ct);
        var names = tags.RootElement.GetProperty("models").EnumerateArray()
            .Select(m => (m.TryGetProperty("name", out var n) ? n : m.GetProperty("model")).GetString())
            .OfType<string>()
            .ToList();
        var models = await Task.WhenAll(names.Select(name => OllamaShowAsync(backend, name, ct)));
        return simulated ? [.. models.Select(m => m with { Simulated = true })] : models;
    }

    private async Task<DiscoveredModel> OllamaShowAsync(BackendEndpoint backend, string name, CancellationToken ct)
    {
        // The context window Ollama runs with is num_ctx when set, else the model's trained length.
        try
        {
            using var response = await http.PostAsJsonAsync(backend.Resolve("api/show"), new Dictionary<string, string> { ["model"] = name }, ct);
            if (!response.IsSuccessStatusCode)
            {
                return new DiscoveredModel(name, null, false);
            }

            using var show = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(ct), default, ct);
            var root = show.RootElement;
            int? context = null;
            if (root.TryGetProperty("parameters", out var parameters) && parameters.ValueKind == JsonValueKind.String)
            {
                context = NumCtx(parameters.GetString()!);
            }

            if (context is null && root.TryGetProperty("model_info", out var info) && info.ValueKind == JsonValueKind.Object)
            {
                context = info.EnumerateObject()
                    .Where(p => p.Name.EndsWith(".context_length", StringComparison.Ordinal))
                    .Select(p => PositiveInt(p.Value))
                    .FirstOrDefault(v => v is not null);
            }

            // Ollama lists what a model can do: "completion", "embedding", "vision", "tools", "thinking", ...
            var embeddings = HasCapability(root, "embedding");
            return new DiscoveredModel(name, context, embeddings, Vision: HasCapability(root, "vision"));
        }
        catch (Exception ex) when (ex is JsonException or HttpRequestException or InvalidOperationException)
        {
            return new DiscoveredModel(name, null, false);
        }
    }

    private async Task<IReadOnlyList<DiscoveredModel>> VllmAsync(BackendEndpoint backend, CancellationToken ct)
    {
        await EnsureHealthyAsync(backend, "health", ct);
        return await OpenAiModelsAsync(backend, ct);
    }

    private async Task<IReadOnlyList<DiscoveredModel>> LlamaCppAsync(BackendEndpoint backend, CancellationToken ct)
    {
        // /health answers 503 while the model loads.
        await EnsureHealthyAsync(backend, "health", ct);
        var models = await OpenAiModelsAsync(backend, ct);
        int? context = null;
        var vision = false;
        try
        {
            using var props = await GetJsonAsync(backend, "props", ct);
            var root = props.RootElement;
            // A server started with a multimodal projector (--mmproj) says so in "modalities".
            vision = root.TryGetProperty("modalities", out var modalities) && modalities.ValueKind == JsonValueKind.Object
                && modalities.TryGetProperty("vision", out var v) && v.ValueKind == JsonValueKind.True;
            if (root.TryGetProperty("default_generation_settings", out var settings) && settings.ValueKind == JsonValueKind.Object
                && settings.TryGetProperty("n_ctx", out var nctx))
            {
                context = PositiveInt(nctx);
            }
            else if (root.TryGetProperty("n_ctx", out nctx))
            {
                context = PositiveInt(nctx);
            }
        }
        catch (HttpRequestException)
        {
            // Older servers have no /props; the window stays unknown.
        }

        return context is null && !vision ? models : [.. models.Select(m => m with { ContextWindow = m.ContextWindow ?? context, Vision = m.Vision || vision })];
    }

    private async Task<IReadOnlyList<DiscoveredModel>> LmStudioAsync(BackendEndpoint backend, CancellationToken ct)
    {
        // The native v0 API tells the context length and model type; older versions only have /v1/models.
        using var response = await http.GetAsync(backend.Resolve("api/v0/models"), ct);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return await OpenAiModelsAsync(backend, ct);
        }

        EnsureSuccess(response, "api/v0/models");
        using var document = await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(ct), default, ct);
        return [.. document.RootElement.GetProperty("data").EnumerateArray()
            .Where(m => m.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String)
            .Select(m => new DiscoveredModel(
                m.GetProperty("id").GetString()!,
                m.TryGetProperty("max_context_length", out var ctx) ? PositiveInt(ctx) : null,
                m.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String && type.GetString() == "embeddings",
                Vision: type.ValueKind == JsonValueKind.String && type.GetString() == "vlm"))];
    }

    /// <summary>The <c>owned_by</c> the coinop simulator reports, so its models are never passed off as a real backend.</summary>
    private const string SimulatorOwner = "coinop-simulator";

    private async Task<IReadOnlyList<DiscoveredModel>> OpenAiModelsAsync(BackendEndpoint backend, CancellationToken ct)
    {
        using var document = await GetJsonAsync(backend, "v1/models", ct);
        return [.. document.RootElement.GetProperty("data").EnumerateArray()
            .Where(m => m.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String)
            .Select(m => new DiscoveredModel(m.GetProperty("id").GetString()!, OpenAiContext(m), false,
                Simulated: m.TryGetProperty("owned_by", out var owner) && owner.ValueKind == JsonValueKind.String && owner.GetString() == SimulatorOwner,
                Vision: OpenAiVision(m)))];
    }

    /// <summary>
    /// OpenAI's list says nothing about images; servers that know add it in one of a few shapes: <c>modalities.vision</c>
    /// (llama.cpp style), <c>capabilities</c> holding <c>vision</c> (Ollama style), or <c>architecture.input_modalities</c>
    /// holding <c>image</c> (OpenRouter style).
    /// </summary>
    private static bool OpenAiVision(JsonElement model)
    {
        if (model.TryGetProperty("modalities", out var modalities) && modalities.ValueKind == JsonValueKind.Object
            && modalities.TryGetProperty("vision", out var vision) && vision.ValueKind == JsonValueKind.True)
        {
            return true;
        }

        if (HasCapability(model, "vision"))
        {
            return true;
        }

        return model.TryGetProperty("architecture", out var architecture) && architecture.ValueKind == JsonValueKind.Object
            && architecture.TryGetProperty("input_modalities", out var inputs) && inputs.ValueKind == JsonValueKind.Array
            && inputs.EnumerateArray().Any(i => i.ValueKind == JsonValueKind.String && i.GetString() == "image");
    }

    private static bool HasCapability(JsonElement model, string capability) =>
        model.TryGetProperty("capabilities", out var caps) && caps.ValueKind == JsonValueKind.Array
        && caps.EnumerateArray().Any(c => c.ValueKind == JsonValueKind.String && c.GetString() == capability);

    /// <summary>OpenAI's list has no context field; servers that know it add one (vLLM <c>max_model_len</c>, others <c>context_length</c>).</summary>
    private static int? OpenAiContext(JsonElement model)
    {
        foreach (var name in (ReadOnlySpan<string>)["max_model_len", "context_length", "context_window"])
        {
            if (model.TryGetProperty(name, out var value) && PositiveInt(value) is { } n)
            {
                return n;
            }
        }

        return null;
    }

    private async Task EnsureHealthyAsync(BackendEndpoint backend, string path, CancellationToken ct)
    {
        using var response = await http.GetAsync(backend.Resolve(path), ct);
        EnsureSuccess(response, path);
    }

    private async Task<JsonDocument> GetJsonAsync(BackendEndpoint backend, string path, CancellationToken ct)
    {
        using var response = await http.GetAsync(backend.Resolve(path), ct);
        EnsureSuccess(response, path);
        return await JsonDocument.ParseAsync(await response.Content.ReadAsStreamAsync(ct), default, ct);
    }

    private static void EnsureSuccess(HttpResponseMessage response, string path)
    {
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"HTTP {(int)response.StatusCode} from /{path}", null, response.StatusCode);
        }
    }

    private static int? NumCtx(string parameters)
    {
        foreach (var line in parameters.Split('\n'))
        {
            var parts = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 2 && parts[0] == "num_ctx" && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0)
            {
                return n;
            }
        }

        return null;
    }

    private static int? PositiveInt(JsonElement value) =>
        value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var n) && n > 0 ? n : null;

    private static string FirstLine(string text)
    {
        var i = text.IndexOf('\n', StringComparison.Ordinal);
        return i < 0 ? text : text[..i].TrimEnd();
    }
}
