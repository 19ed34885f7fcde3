using System.Buffers;
using System.Text.Json;
using Coinop.Market.Gateway;
using Microsoft.AspNetCore.Http;

namespace Coinop.Market.Inference;

/// <summary><c>GET /v1/models</c>: the union of the models providers linked to any node offer, in OpenAI's list shape.</summary>
public static class ModelsApi
{
    public static async Task ListAsync(HttpContext http, IRoutableProviders providers)
    {
        var models = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (var session in providers.Snapshot)
        {
            if (!session.Accepting)
            {
                continue; // no capabilities yet, or draining: routing would not take it either
            }

            foreach (var offer in session.Offers)
            {
                models.TryAdd(offer.Model, 0);
            }
        }

        var body = new ArrayBufferWriter<byte>(256 + models.Count * 96);
        using (var json = new Utf8JsonWriter(body))
        {
            json.WriteStartObject();
            json.WriteString("object", "list");
            json.WriteStartArray("data");
            foreach (var model in models.Keys)
            {
                json.WriteStartObject();
                json.WriteString("id", model);
                json.WriteString("object", "model");
                json.WriteNumber("created", 0);
                json.WriteString("owned_by", "coinop");
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        http.Response.ContentType = "application/json";
        http.Response.ContentLength = body.WrittenCount;
        await http.Response.Body.WriteAsync(body.WrittenMemory, http.RequestAborted);
    }
}
