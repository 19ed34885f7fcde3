using System.Buffers;
using System.Text;
using System.Text.Json;
using Coinop.Market.Inference.Chat;
using Coinop.Storage.Responses;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Coinop.Market.Inference.Responses;

/// <summary>
/// One Responses request's place in its conversation: the id it answers with, when, for whom, the earlier
/// conversation it continues (chat messages, a JSON array; empty without <c>previous_response_id</c>) and its own input
/// as chat messages.
/// </summary>
public sealed class ResponsesTurn(string id, DateTimeOffset createdAt, string? payer, byte[] history, byte[] inputMessages, bool store, ResponsesService service)
{
    public string Id { get; } = id;

    public DateTimeOffset CreatedAt { get; } = createdAt;

    public string? Payer { get; } = payer;

    public ReadOnlyMemory<byte> History { get; } = history;

    public ReadOnlyMemory<byte> InputMessages { get; } = inputMessages;

    public bool Store { get; } = store;

    public ResponseDraft NewDraft(JsonElement request, string model) => new(Id, CreatedAt.ToUnixTimeSeconds(), request, model);

    /// <summary>Keeps the finished response for its retention (unless the request said <c>store: false</c>).</summary>
    public Task SaveAsync(ResponseDraft draft, CancellationToken cancellationToken) => Store ? service.SaveAsync(this, draft, cancellationToken) : Task.CompletedTask;
}

/// <summary>
/// The market's side of the Responses API that is not translation: resolving <c>previous_response_id</c> (the stored
/// conversation, readable only by its payer, within retention), checking that function call outputs answer calls the
/// conversation made, storing finished responses, and <c>GET /v1/responses/{id}</c>.
/// </summary>
public sealed class ResponsesService(IResponseStore store, IOptions<ResponsesOptions> options, TimeProvider time, ILogger<ResponsesService> logger)
{
    private readonly ResponsesOptions _options = options.Value;

    /// <summary>Prepares a checked Responses request for translation; returns the error to answer with, if any.</summary>
    public async Task<ApiError?> ResolveAsync(InferenceRequest request, HttpRequest http, CancellationToken cancellationToken)
    {
        var shape = request.Responses!;
        var now = time.GetUtcNow();
        var payer = ResponsePayer.Of(http);
        byte[] history = [];
        var known = new HashSet<string>(shape.CallIds, StringComparer.Ordinal);
        if (shape.PreviousResponseId is { } previous)
        {
            var stored = await store.FindAsync(previous, now, cancellationToken);
            if (stored is null || !ResponsePayer.MayRead(stored.Payer, payer))
            {
                return new ApiError(400, "invalid_request_error", "previous_response_not_found",
                    $"Previous response with id '{previous}' not found (responses are kept {_options.Retention.TotalMinutes:0} minutes, for the payer who made them).");
            }

            history = Encoding.UTF8.GetBytes(stored.Conversation);
            AddToolCallIds(history, known);
        }

        foreach (var answered in shape.AnsweredCallIds)
        {
            if (!known.Contains(answered))
            {
                return ApiError.InvalidBody($"No tool call found for function call output with call_id {answered}.");
            }
        }

        var input = new ArrayBufferWriter<byte>(request.BodyLength + 64);
        using (var json = new Utf8JsonWriter(input, TranslationJson.Options))
        {
            ResponsesInput.WriteMessages(request.Root, json);
        }

        request.Turn = new ResponsesTurn("resp_" + Guid.CreateVersion7(now).ToString("N"), now, payer, history, input.WrittenSpan.ToArray(), shape.Store, this);
        return null;
    }

    public async Task SaveAsync(ResponsesTurn turn, ResponseDraft draft, CancellationToken cancellationToken)
    {
        try
        {
            var response = new ArrayBufferWriter<byte>(1024);
            using (var json = new Utf8JsonWriter(response, TranslationJson.Options))
            {
                draft.WriteResponse(json);
            }

            var conversation = new ArrayBufferWriter<byte>(turn.History.Length + turn.InputMessages.Length + 1024);
            using (var json = new Utf8JsonWriter(conversation, TranslationJson.Options))
            {
                ResponseConversation.Write(draft, turn.History.Span, turn.InputMessages.Span, json);
            }

            var now = time.GetUtcNow();
            await store.AddAsync(new StoredResponse(turn.Id, turn.Payer, now, now + _options.Retention,
                Encoding.UTF8.GetString(response.WrittenSpan), Encoding.UTF8.GetString(conversation.WrittenSpan)), cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The consumer still gets its answer; only reading or continuing it later fails.
            ResponsesLog.StoreFailed(logger, turn.Id, ex);
        }
    }

    /// <summary><c>GET /v1/responses/{id}</c>: the stored response for its payer, else 404 (whether it exists is not told).</summary>
    public async Task GetAsync(HttpContext http, string id)
    {
        var stored = id.Length is > 0 and <= 128 ? await store.FindAsync(id, time.GetUtcNow(), http.RequestAborted) : null;
        if (stored is null || !ResponsePayer.MayRead(stored.Payer, ResponsePayer.Of(http.Request)))
        {
            await new ApiError(404, "invalid_request_error", "not_found", $"Response with id '{id}' not found.")
                .WriteResponseAsync(http.Response, ErrorShape.OpenAi, http.RequestAborted);
            return;
        }

        var body = Encoding.UTF8.GetBytes(stored.Response);
        http.Response.ContentType = "application/json";
        http.Response.ContentLength = body.Length;
        await http.Response.Body.WriteAsync(body, http.RequestAborted);
    }

    public async Task PruneAsync(CancellationToken cancellationToken)
    {
        try
        {
            var count = await store.PruneAsync(time.GetUtcNow(), cancellationToken);
            if (count > 0)
            {
                ResponsesLog.Pruned(logger, count);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            ResponsesLog.PruneFailed(logger, ex);
        }
    }

    /// <summary>The ids of the tool calls in a stored conversation (outputs in the new input may answer them).</summary>
    private static void AddToolCallIds(byte[] conversation, HashSet<string> ids)
    {
        using var document = JsonDocument.Parse(conversation);
        foreach (var message in document.RootElement.EnumerateArray())
        {
            if (message.TryGetProperty("tool_calls", out var calls) && calls.ValueKind == JsonValueKind.Array)
            {
                foreach (var call in calls.EnumerateArray())
                {
                    if (call.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String)
                    {
                        ids.Add(id.GetString()!);
                    }
                }
            }
        }
    }
}

/// <summary>Deletes expired responses every <see cref="ResponsesOptions.PruneInterval"/>, on one node of the market at a time (the duty <see cref="Duty"/>).</summary>
public sealed class ResponsePruner(ResponsesService responses, Cluster.NodeDuties duties, IOptions<ResponsesOptions> options, TimeProvider time) : BackgroundService
{
    /// <summary>The duty of pruning stored responses, held by one node at a time.</summary>
    public const string Duty = "response_pruning";

    protected override Task ExecuteAsync(CancellationToken stoppingToken) => duties.RunAsync(Duty, (_, held) => PruneAsync(held), stoppingToken);

    private async Task PruneAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.PruneInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                await responses.PruneAsync(stoppingToken);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }
}
