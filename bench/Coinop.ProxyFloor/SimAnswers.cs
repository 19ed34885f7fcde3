using System.Net.Http.Json;

namespace Coinop.ProxyFloor;

/// <summary>
/// The simulator's answers to the requests the benchmark sends (bench/Coinop.LoadTest's and wrk's bodies), fetched
/// once at start so the bare endpoint sends the same bytes without an upstream.
/// </summary>
internal sealed record SimAnswers(byte[] Models, byte[] Whole, byte[] Stream, byte[][] PacedEvents)
{
    private const string Prompt = "Say something short.";
    private const string PacedPrompt = "[[sim:slow=2]] Say something short.";

    public static async Task<SimAnswers> CaptureAsync(Uri simulator)
    {
        using var http = new HttpClient { BaseAddress = simulator };
        var models = await http.GetByteArrayAsync(new Uri("/v1/models", UriKind.Relative));
        var whole = await ChatAsync(http, Prompt, stream: false);
        var stream = await ChatAsync(http, Prompt, stream: true);
        var paced = await ChatAsync(http, PacedPrompt, stream: true);
        return new SimAnswers(models, whole, stream, SplitEvents(paced));
    }

    private static async Task<byte[]> ChatAsync(HttpClient http, string prompt, bool stream)
    {
        var body = new Dictionary<string, object>
        {
            ["model"] = "sim-small",
            ["messages"] = new[] { new { role = "user", content = prompt } },
            ["max_tokens"] = 16,
            ["stream"] = stream,
        };
        using var response = await http.PostAsJsonAsync(new Uri("/v1/chat/completions", UriKind.Relative), body);
        response.EnsureSuccessStatusCode();
        return await response.Content.ReadAsByteArrayAsync();
    }

    /// <summary>Server-sent events, each with its blank line.</summary>
    private static byte[][] SplitEvents(byte[] stream)
    {
        var events = new List<byte[]>();
        var rest = stream.AsSpan();
        while (rest.IndexOf("\n\n"u8) is var end and >= 0)
        {
            events.Add(rest[..(end + 2)].ToArray());
            rest = rest[(end + 2)..];
        }

        return [.. events];
    }
}
