using System.Text.Json;
using Coinop.Core.Protocol;
using Coinop.Provider.Backends;

namespace Coinop.Provider.Tests.Infrastructure;

/// <summary>Parses <c>KIND=URL</c> for tests (a bad one fails the test).</summary>
public static class Backend
{
    public static BackendEndpoint Parse(string text)
    {
        Assert.True(BackendEndpoint.TryParse(text, out var endpoint, out var error), error);
        return endpoint!;
    }
}

/// <summary>Builds job messages the way the market sends them.</summary>
public static class TestJobs
{
    public static JsonElement ChatRequest(string prompt, bool stream, string model = "sim-small") =>
        JsonSerializer.SerializeToElement(new Dictionary<string, object?>
        {
            ["model"] = model,
            ["messages"] = new[] { new { role = "user", content = prompt } },
            ["stream"] = stream,
            ["stream_options"] = stream ? new { include_usage = true } : null,
        });

    public static JobMessage Chat(
        string prompt,
        bool stream = true,
        string model = "sim-small",
        int window = 256 * 1024,
        TimeSpan? deadline = null,
        long fence = 1,
        string path = "chat/completions") =>
        new(
            Guid.NewGuid(),
            fence,
            model,
            WireFormat.OpenAi,
            path,
            stream,
            ChatRequest(prompt, stream, model),
            DateTimeOffset.UtcNow.Add(deadline ?? TimeSpan.FromSeconds(60)).ToUnixTimeMilliseconds(),
            window);

    public static JobMessage With(this JobMessage job, string path, object request) =>
        job with { Path = path, Request = JsonSerializer.SerializeToElement(request) };
}
