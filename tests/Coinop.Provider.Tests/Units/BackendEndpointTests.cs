using Coinop.Provider.Backends;

namespace Coinop.Provider.Tests.Units;

public class BackendEndpointTests
{
    [Theory]
    [InlineData("ollama=http://127.0.0.1:11434", BackendKind.Ollama, "http://127.0.0.1:11434/")]
    [InlineData("VLLM=http://gpu:8000/v1", BackendKind.Vllm, "http://gpu:8000/")]
    [InlineData("openai=https://api.example.com/proxy/v1/", BackendKind.OpenAi, "https://api.example.com/proxy/")]
    [InlineData("llamacpp=http://h:8080", BackendKind.LlamaCpp, "http://h:8080/")]
    [InlineData("lmstudio=http://h:1234", BackendKind.LmStudio, "http://h:1234/")]
    public void Parses_kind_and_url(string text, BackendKind kind, string url)
    {
        Assert.True(BackendEndpoint.TryParse(text, out var endpoint, out _));
        Assert.Equal(kind, endpoint!.Kind);
        Assert.Equal(url, endpoint.BaseUrl.ToString());
        Assert.Equal(url + "v1/chat/completions", endpoint.Resolve("v1/chat/completions").ToString());
    }

    [Theory]
    [InlineData("ollama", "KIND=URL")]
    [InlineData("tgi=http://h", "not a backend kind")]
    [InlineData("ollama=ftp://h", "not an http(s) URL")]
    [InlineData("ollama=", "not an http(s) URL")]
    public void Rejects_bad_input_with_a_clear_message(string text, string fragment)
    {
        Assert.False(BackendEndpoint.TryParse(text, out _, out var error));
        Assert.Contains(fragment, error, StringComparison.Ordinal);
    }
}
