using Microsoft.AspNetCore.Http;

namespace Coinop.Market.Inference;

/// <summary>
/// <c>GET /v1/models</c>: the union of the models providers linked to any node offer, in OpenAI's list shape. The body is
/// built once per <see cref="OfferIndex"/> (until a provider comes, goes or changes its offers), not per request.
/// </summary>
public static class ModelsApi
{
    public static async Task ListAsync(HttpContext http, OfferIndex index)
    {
        var body = index.Current.ModelsBody;
        http.Response.ContentType = "application/json";
        http.Response.ContentLength = body.Length;
        await http.Response.Body.WriteAsync(body, http.RequestAborted);
    }
}
