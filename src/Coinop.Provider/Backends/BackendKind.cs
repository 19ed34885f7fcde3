namespace Coinop.Provider.Backends;

/// <summary>The inference servers a provider can sit next to, in priority order (first wins a duplicate model).</summary>
public enum BackendKind
{
    Vllm,
    LlamaCpp,
    LmStudio,
    Ollama,
    OpenAi,
}

public static class BackendKinds
{
    /// <summary>Kinds probed on their standard local ports when no backend is named.</summary>
    public static IReadOnlyList<(BackendKind Kind, int Port)> StandardPorts { get; } =
    [
        (BackendKind.Ollama, 11434),
        (BackendKind.Vllm, 8000),
        (BackendKind.LlamaCpp, 8080),
        (BackendKind.LmStudio, 1234),
    ];

    /// <summary>Lower is preferred when two backends serve the same model.</summary>
    public static int Priority(this BackendKind kind) => (int)kind;

    /// <summary>The name used on the command line and in capabilities.</summary>
    public static string Name(this BackendKind kind) => kind switch
    {
        BackendKind.Vllm => "vllm",
        BackendKind.LlamaCpp => "llamacpp",
        BackendKind.LmStudio => "lmstudio",
        BackendKind.Ollama => "ollama",
        _ => "openai",
    };

    public static bool TryParse(string? text, out BackendKind kind)
    {
        foreach (var k in Enum.GetValues<BackendKind>())
        {
            if (string.Equals(k.Name(), text?.Trim(), StringComparison.OrdinalIgnoreCase))
            {
                kind = k;
                return true;
            }
        }

        kind = default;
        return false;
    }
}

/// <summary>One inference server: its kind and base URL (without the <c>/v1</c> suffix).</summary>
public sealed record BackendEndpoint(BackendKind Kind, Uri BaseUrl)
{
    public const string KindList = "vllm, llamacpp, lmstudio, ollama or openai";

    /// <summary>Parses <c>KIND=URL</c>, e.g. <c>ollama=http://127.0.0.1:11434</c>.</summary>
    public static bool TryParse(string? text, out BackendEndpoint? endpoint, out string? error)
    {
        endpoint = null;
        error = null;
        var eq = text?.IndexOf('=', StringComparison.Ordinal) ?? -1;
        if (text is null || eq < 0)
        {
            error = $"'{text}' is not a backend: expected KIND=URL with KIND {KindList}, e.g. ollama=http://127.0.0.1:11434";
            return false;
        }

        if (!BackendKinds.TryParse(text[..eq], out var kind))
        {
            error = $"'{text[..eq]}' is not a backend kind: use {KindList}";
            return false;
        }

        if (!TryCreateBaseUrl(text[(eq + 1)..].Trim(), out var url))
        {
            error = $"'{text[(eq + 1)..]}' is not an http(s) URL";
            return false;
        }

        endpoint = new BackendEndpoint(kind, url);
        return true;
    }

    /// <summary>Accepts a server root or its OpenAI base (<c>…/v1</c>) and returns the root with a trailing slash.</summary>
    public static bool TryCreateBaseUrl(string text, out Uri url)
    {
        url = null!;
        if (!Uri.TryCreate(text, UriKind.Absolute, out var parsed) || parsed.Scheme is not ("http" or "https")
            || !string.IsNullOrEmpty(parsed.Query) || !string.IsNullOrEmpty(parsed.Fragment))
        {
            return false;
        }

        var path = parsed.AbsolutePath.TrimEnd('/');
        if (path.EndsWith("/v1", StringComparison.Ordinal))
        {
            path = path[..^3];
        }

        url = new UriBuilder(parsed) { Path = path + "/" }.Uri;
        return true;
    }

    /// <summary>The absolute URL of a path under the server root, e.g. <c>v1/models</c>.</summary>
    public Uri Resolve(string relativePath) => new(BaseUrl, relativePath);

    public override string ToString() => $"{Kind.Name()}={BaseUrl.ToString().TrimEnd('/')}";
}
