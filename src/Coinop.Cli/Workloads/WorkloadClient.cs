using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Coinop.Cli.Shared;

namespace Coinop.Cli.Workloads;

/// <summary>
/// The market's workload API over HTTP, every request with the consumer's owner key (workloads answer only to the key
/// they were submitted with); an error answer becomes a <see cref="CliException"/> with the market's message.
/// </summary>
public sealed class WorkloadClient : IDisposable
{
    private readonly HttpClient _http;

    public WorkloadClient(string market, string ownerKey)
    {
        _http = new HttpClient { BaseAddress = new Uri(market.TrimEnd('/') + "/"), Timeout = TimeSpan.FromSeconds(60) };
        _http.DefaultRequestHeaders.Add(Core.Workloads.WorkloadOwnerKey.Header, ownerKey);
    }

    /// <summary>The HTTP client, addressed at the market.</summary>
    public HttpClient Http => _http;

    /// <summary>Sends a request with optional payment (<c>X-Cashu</c>) and credential (<c>Authorization: Bearer</c>) headers; the caller reads the answer.</summary>
    public Task<HttpResponseMessage> SendRawAsync(HttpMethod method, string path, HttpContent? body, string? cashu, string? bearer, CancellationToken cancellationToken)
    {
        var request = new HttpRequestMessage(method, path) { Content = body };
        if (cashu is not null)
        {
            request.Headers.Add(MarketPayment.Header, cashu);
        }

        if (bearer is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        }

        return SendDisposingAsync(request, cancellationToken);
    }

    public async Task<T> GetAsync<T>(string path, JsonTypeInfo<T> type, CancellationToken cancellationToken)
    {
        using var response = await _http.GetAsync(path, cancellationToken);
        return await ReadAsync(response, type, cancellationToken);
    }

    /// <summary>Opens a server-sent event stream and yields (event, data) pairs until it ends.</summary>
    public async IAsyncEnumerable<(string Event, string Data)> EventsAsync(string path, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/event-stream"));
        _http.Timeout = Timeout.InfiniteTimeSpan;
        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        if (!response.IsSuccessStatusCode)
        {
            throw await ErrorAsync(response, cancellationToken);
        }

        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken));
        string name = "message", data = "";
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (line.Length == 0)
            {
                yield return (name, data);
                (name, data) = ("message", "");
            }
            else if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                name = line[7..];
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                data = line[6..];
            }
        }
    }

    public void Dispose() => _http.Dispose();

    /// <summary>The answer's body as <typeparamref name="T"/>; an error answer throws with the market's message.</summary>
    public static async Task<T> ReadAsync<T>(HttpResponseMessage response, JsonTypeInfo<T> type, CancellationToken cancellationToken)
    {
        if (!response.IsSuccessStatusCode)
        {
            throw await ErrorAsync(response, cancellationToken);
        }

        try
        {
            return await response.Content.ReadFromJsonAsync(type, cancellationToken)
                ?? throw new CliException("the market answered with an empty body");
        }
        catch (JsonException)
        {
            throw new CliException($"the market's answer to {response.RequestMessage?.RequestUri} is not what this coinop expects");
        }
    }

    private async Task<HttpResponseMessage> SendDisposingAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        using (request)
        {
            return await _http.SendAsync(request, cancellationToken);
        }
    }

    private static async Task<CliException> ErrorAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        try
        {
            using var json = JsonDocument.Parse(body);
            if (json.RootElement.TryGetProperty("error", out var error) && error.TryGetProperty("message", out var message))
            {
                return new CliException($"{message.GetString()} (HTTP {(int)response.StatusCode})");
            }
        }
        catch (JsonException)
        {
        }

        return new CliException($"the market answered HTTP {(int)response.StatusCode}");
    }
}
