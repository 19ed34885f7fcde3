using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Coinop.Cli.Shared;
using Spectre.Console;

namespace Coinop.Cli.Chat;

/// <summary><c>coinop chat</c> and <c>coinop providers</c>: a consumer's view of a market.</summary>
public static class ChatCommands
{
    /// <summary>What <c>coinop chat</c> sends for one prompt at most unless <c>--max-sat</c> says otherwise.</summary>
    public const ulong DefaultMaxSat = 100;

    public static Command CreateChat()
    {
        var market = CliOptions.Market();
        var model = new Option<string>("--model") { Description = "The model to ask", Required = true };
        var stream = new Option<bool>("--stream") { Description = "Print the answer as it arrives" };
        var maxTokens = new Option<int?>("--max-tokens") { Description = "Most tokens the answer may have" };
        var prompt = new Argument<string>("PROMPT") { Description = "What to ask" };
        var wallet = new Option<string>("--wallet")
        {
            Description = "The wallet that pays a paid market (its data directory)",
            DefaultValueFactory = _ => ".coinop/wallet",
        };
        var maxSat = CliOptions.MaxSat(DefaultMaxSat, "one prompt");
        var command = new Command("chat", "Send a prompt to a model through the market; a paid market is paid from the local wallet")
        {
            market, model, stream, maxTokens, prompt, wallet, maxSat,
        };
        command.SetAction(async (parse, ct) =>
        {
            if (parse.GetValue(maxTokens) is < 1)
            {
                throw new CliException("--max-tokens must be at least 1", 2);
            }

            using var http = new HttpClient { BaseAddress = new Uri(parse.GetValue(market)! + "/"), Timeout = Timeout.InfiniteTimeSpan };
            using var mints = new HttpClient { Timeout = TimeSpan.FromMinutes(2) };
            var streaming = parse.GetValue(stream);
            var body = RequestBody(parse.GetValue(model)!, parse.GetValue(prompt)!, streaming, parse.GetValue(maxTokens));
            var response = await SendAsync(http, body, null, ct);
            MarketPayment? payment = null;
            if (response.StatusCode == HttpStatusCode.PaymentRequired)
            {
                payment = await MarketPayment.PayAsync(response, http, parse.GetValue(wallet)!, mints, "coinop chat", parse.GetValue(maxSat), ct);
                if (payment is not null)
                {
                    response.Dispose();
                    response = await SendAsync(http, body, payment.Token, ct);
                }
            }

            using (response)
            {
                string? change = null;
                var completed = false;
                try
                {
                    change = payment is null ? null : MarketPayment.ChangeIn(response);
                    if (!response.IsSuccessStatusCode)
                    {
                        throw new CliException($"{(int)response.StatusCode} {ApiErrorText.MessageOf(await response.Content.ReadAsStringAsync(ct))}");
                    }

                    if (streaming)
                    {
                        change = await PrintStreamAsync(response, ct) ?? change;
                    }
                    else
                    {
                        using var answer = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
                        Console.WriteLine(answer.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString());
                    }

                    completed = true;
                }
                finally
                {
                    if (payment is not null)
                    {
                        // Runs to the end even after Ctrl-C: the change is the consumer's money.
                        var back = await payment.FinishAsync(change, completed, CancellationToken.None);
                        await Console.Error.WriteLineAsync($"coinop: paid {payment.Amount - back} sat ({payment.Amount} sent, {back} back)");
                    }
                }
            }

            return 0;
        });
        return command;
    }

    private static async Task<HttpResponseMessage> SendAsync(HttpClient http, byte[] body, string? token, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        if (token is not null)
        {
            request.Headers.Add(MarketPayment.Header, token);
        }

        return await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct);
    }

    public static Command CreateProviders()
    {
        var market = CliOptions.Market();
        var json = CliOptions.Json();
        var command = new Command("providers", "List the market's providers: models, prices, load") { market, json };
        command.SetAction(async (parse, ct) =>
        {
            using var http = new HttpClient { BaseAddress = new Uri(parse.GetValue(market)! + "/"), Timeout = TimeSpan.FromSeconds(30) };
            using var response = await http.GetAsync("api/providers", ct);
            var body = await response.Content.ReadAsStringAsync(ct);
            if (!response.IsSuccessStatusCode)
            {
                throw new CliException($"{(int)response.StatusCode} {ApiErrorText.MessageOf(body)}");
            }

            if (parse.GetValue(json))
            {
                Console.WriteLine(body);
                return 0;
            }

            using var providers = JsonDocument.Parse(body);
            if (Console.IsOutputRedirected)
            {
                AnsiConsole.Profile.Width = 240; // a pipe has no width: keep rows whole rather than wrap at 80
            }

            AnsiConsole.Write(Table(providers.RootElement));
            return 0;
        });
        return command;
    }

    private static byte[] RequestBody(string model, string prompt, bool stream, int? maxTokens)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("model", model);
            json.WriteStartArray("messages");
            json.WriteStartObject();
            json.WriteString("role", "user");
            json.WriteString("content", prompt);
            json.WriteEndObject();
            json.WriteEndArray();
            json.WriteBoolean("stream", stream);
            if (maxTokens is { } max)
            {
                json.WriteNumber("max_tokens", max);
            }

            json.WriteEndObject();
        }

        return buffer.ToArray();
    }

    /// <summary>Prints a stream's text as it arrives; returns the change token of a paid stream (its <c>: X-Cashu</c> comment).</summary>
    private static async Task<string?> PrintStreamAsync(HttpResponseMessage response, CancellationToken ct)
    {
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct), Encoding.UTF8);
        var stdout = Console.Out;
        string? change = null;
        while (await reader.ReadLineAsync(ct) is { } line)
        {
            if (line.StartsWith(": " + MarketPayment.Header + " ", StringComparison.Ordinal))
            {
                change = line[(MarketPayment.Header.Length + 3)..].Trim();
                continue;
            }

            if (!line.StartsWith("data: ", StringComparison.Ordinal) || line == "data: [DONE]")
            {
                continue;
            }

            using var chunk = JsonDocument.Parse(line.AsMemory(6));
            if (chunk.RootElement.TryGetProperty("error", out var error))
            {
                await stdout.WriteLineAsync();
                throw new CliException("the answer broke off: " + (error.TryGetProperty("message", out var m) ? m.GetString() : "unknown error"));
            }

            if (chunk.RootElement.TryGetProperty("choices", out var choices) && choices.GetArrayLength() > 0
                && choices[0].TryGetProperty("delta", out var delta) && delta.TryGetProperty("content", out var content)
                && content.ValueKind == JsonValueKind.String)
            {
                await stdout.WriteAsync(content.GetString());
                await stdout.FlushAsync(ct);
            }
        }

        await stdout.WriteLineAsync();
        return change;
    }

    /// <summary>A provider's workload offer: isolation level, egress, and capacity; "-" when it runs none.</summary>
    private static string Workloads(JsonElement provider)
    {
        if (!provider.TryGetProperty("workloads", out var w) || w.ValueKind != JsonValueKind.Object)
        {
            return "-";
        }

        var egress = w.TryGetProperty("egress", out var e) && e.GetBoolean() ? "egress" : "no egress";
        var approx = w.TryGetProperty("approximate_limits", out var a) && a.GetBoolean() ? ", approx. limits" : "";
        return string.Create(CultureInfo.InvariantCulture,
            $"{w.GetProperty("isolation").GetString()}, {egress}{approx}\n{w.GetProperty("cpu_cores").GetDouble():0.##} cores, {w.GetProperty("memory_mb").GetInt64()} MB");
    }

    private static Table Table(JsonElement providers)
    {
        var table = new Table().Border(TableBorder.Rounded);
        foreach (var column in (string[])["Name", "Id", "Online", "Models (sats/Mtok in:out)", "Workloads", "In flight", "p50/p95 ms", "tok/s", "Errors"])
        {
            table.AddColumn(column);
        }

        foreach (var p in providers.EnumerateArray())
        {
            var load = p.GetProperty("load");
            var models = new StringBuilder();
            foreach (var m in p.GetProperty("models").EnumerateArray())
            {
                models.Append(CultureInfo.InvariantCulture,
                    $"{m.GetProperty("model").GetString()} {m.GetProperty("input_price").GetDecimal():0.###}:{m.GetProperty("output_price").GetDecimal():0.###}{(m.TryGetProperty("backend", out var b) && b.GetString() == "simulator" ? " (simulator)" : "")}\n");
            }

            var status = p.GetProperty("online").GetBoolean()
                ? p.TryGetProperty("parked_until", out _) ? "parked" : "yes"
                : "no";
            table.AddRow(
                new Text(p.GetProperty("name").GetString() ?? ""),
                new Text(p.GetProperty("id").GetString() ?? ""),
                new Text(status),
                new Text(models.Length == 0 ? "-" : models.ToString().TrimEnd()),
                new Text(Workloads(p)),
                new Text(load.GetProperty("in_flight").GetInt32().ToString(CultureInfo.InvariantCulture)),
                new Text(string.Create(CultureInfo.InvariantCulture, $"{load.GetProperty("p50_latency_ms").GetDouble():0}/{load.GetProperty("p95_latency_ms").GetDouble():0}")),
                new Text(load.GetProperty("tokens_per_second").GetDouble().ToString("0.#", CultureInfo.InvariantCulture)),
                new Text(load.GetProperty("error_rate").GetDouble().ToString("0.#%", CultureInfo.InvariantCulture)));
        }

        return table;
    }
}
