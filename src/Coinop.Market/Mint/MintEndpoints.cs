using System.Text.Json;
using Coinop.Ecash.MintApi;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Coinop.Market.Mint;

/// <summary>
/// The Cashu HTTP API under <c>/mint/v1</c>. Bodies are read here (not by model binding) so that malformed JSON,
/// missing fields and bad values all come back as NUT-00 errors: HTTP 400 <c>{"detail", "code"}</c>, never a 500.
/// </summary>
internal static class MintEndpoints
{
    /// <summary>Strict reading: nulls where the model has none and missing constructor fields are errors.</summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.General)
    {
        RespectNullableAnnotations = true,
        RespectRequiredConstructorParameters = true,
        AllowDuplicateProperties = false,
    };

    public static void Map(IEndpointRouteBuilder endpoints)
    {
        var v1 = endpoints.MapGroup("/mint/v1").AddEndpointFilter(CashuErrors);
        v1.MapGet("/info", (MintInfo mint) => Reply(mint.GetInfo()));
        v1.MapGet("/keys", async (MintInfo mint, CancellationToken ct) => Reply(await mint.GetActiveKeysAsync(ct)));
        v1.MapGet("/keys/{keysetId}", async (string keysetId, MintInfo mint, CancellationToken ct) => Reply(await mint.GetKeysAsync(keysetId, ct)));
        v1.MapGet("/keysets", async (MintInfo mint, CancellationToken ct) => Reply(await mint.GetKeysetsAsync(ct)));
        v1.MapPost("/swap", async (HttpRequest request, CachedResponses mint, CancellationToken ct) =>
            Reply(await mint.SwapAsync(await ReadAsync<SwapRequest>(request, ct), ct)));
        v1.MapPost("/mint/quote/bolt11", async (HttpRequest request, Minting mint, CancellationToken ct) =>
            Reply(await mint.CreateMintQuoteAsync(await ReadAsync<MintQuoteRequest>(request, ct), ct)));
        v1.MapGet("/mint/quote/bolt11/{quoteId}", async (string quoteId, Minting mint, CancellationToken ct) =>
            Reply(await mint.GetMintQuoteAsync(quoteId, ct)));
        v1.MapPost("/mint/bolt11", async (HttpRequest request, CachedResponses mint, CancellationToken ct) =>
            Reply(await mint.MintAsync(await ReadAsync<MintRequest>(request, ct), ct)));
        v1.MapPost("/melt/quote/bolt11", async (HttpRequest request, Melting mint, CancellationToken ct) =>
            Reply(await mint.CreateMeltQuoteAsync(await ReadAsync<MeltQuoteRequest>(request, ct), ct)));
        v1.MapGet("/melt/quote/bolt11/{quoteId}", async (string quoteId, Melting mint, CancellationToken ct) =>
            Reply(await mint.GetMeltQuoteAsync(quoteId, ct)));
        v1.MapPost("/melt/bolt11", async (HttpRequest request, CachedResponses mint, CancellationToken ct) =>
            Reply(await mint.MeltAsync(await ReadAsync<MeltRequest>(request, ct), ct)));
        v1.MapPost("/checkstate", async (HttpRequest request, ProofStates mint, CancellationToken ct) =>
            Reply(await mint.CheckStateAsync(await ReadAsync<CheckStateRequest>(request, ct), ct)));
        v1.MapPost("/restore", async (HttpRequest request, ProofStates mint, CancellationToken ct) =>
            Reply(await mint.RestoreAsync(await ReadAsync<RestoreRequest>(request, ct), ct)));
        endpoints.Map("/mint/v1/ws", (HttpContext context, MintSubscriptions subscriptions) => subscriptions.HandleAsync(context));
    }

    private static IResult Reply<T>(T body) => Results.Json(body, Json);

    private static async Task<T> ReadAsync<T>(HttpRequest request, CancellationToken cancellationToken)
        where T : class
    {
        try
        {
            return await JsonSerializer.DeserializeAsync<T>(request.Body, Json, cancellationToken)
                ?? throw new CashuException(CashuErrorCode.BadRequest, "the request body must be a JSON object");
        }
        catch (JsonException ex)
        {
            throw new CashuException(CashuErrorCode.BadRequest, "invalid request: " + ex.Message);
        }
    }

    private static async ValueTask<object?> CashuErrors(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        try
        {
            return await next(context);
        }
        catch (CashuException ex)
        {
            return Results.Json(new ErrorResponse(ex.Detail, ex.Code), Json, statusCode: StatusCodes.Status400BadRequest);
        }
        catch (Mint.Lightning.LightningUnavailableException ex)
        {
            // The node is down: a clear 503 the wallet can retry; nothing was taken (a melt's proofs were released).
            return Results.Json(new ErrorResponse(ex.Message, CashuErrorCode.BadRequest), Json, statusCode: StatusCodes.Status503ServiceUnavailable);
        }
        catch (BadHttpRequestException ex)
        {
            return Results.Json(new ErrorResponse(ex.Message, CashuErrorCode.BadRequest), Json, statusCode: ex.StatusCode);
        }
    }
}
