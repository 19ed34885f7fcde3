using System.Collections.Frozen;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;

namespace Coinop.Market.Web;

/// <summary>One embedded file of the web pages, with its content type and a validator.</summary>
public sealed record WebAsset(string Path, byte[] Content, string ContentType, string ETag);

/// <summary>
/// The pages' files, embedded in the assembly (<c>Web/wwwroot</c>) and read once at start: the market serves its pages
/// without touching the disk or the network. Every answer carries a strict Content-Security-Policy (only this origin),
/// and an ETag so a browser revalidates with a 304 instead of downloading again.
/// </summary>
public sealed class WebAssets
{
    /// <summary>Only this origin: no CDN, no inline script; images from blobs (QR codes) and data URLs.</summary>
    public const string ContentSecurityPolicy =
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; " +
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

    private const string Prefix = "web/";
    private readonly FrozenDictionary<string, WebAsset> _assets;

    public WebAssets()
    {
        var assembly = typeof(WebAssets).Assembly;
        var assets = new Dictionary<string, WebAsset>(StringComparer.Ordinal);
        foreach (var name in assembly.GetManifestResourceNames())
        {
            if (!name.StartsWith(Prefix, StringComparison.Ordinal))
            {
                continue;
            }

            using var stream = assembly.GetManifestResourceStream(name)!;
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            var content = buffer.ToArray();
            var path = name[Prefix.Length..].Replace('\\', '/');
            var etag = "\"" + Convert.ToHexStringLower(SHA256.HashData(content).AsSpan(0, 12)) + "\"";
            assets[path] = new WebAsset(path, content, ContentTypeOf(path), etag);
        }

        _assets = assets.ToFrozenDictionary(StringComparer.Ordinal);
    }

    public WebAsset? Find(string path) => _assets.GetValueOrDefault(path);

    /// <summary>Answers with the file (or 304 when the browser's copy is current); 404 JSON when there is no such file.</summary>
    public Task ServeAsync(HttpContext http, string path, int status = StatusCodes.Status200OK)
    {
        if (Find(path) is not { } asset)
        {
            http.Response.StatusCode = StatusCodes.Status404NotFound;
            return http.Response.WriteAsJsonAsync(new { error = new { type = "invalid_request_error", code = "unknown_endpoint", message = $"no file {path}" } });
        }

        var headers = http.Response.Headers;
        AddSecurityHeaders(http.Response);
        headers.ETag = asset.ETag;
        headers.CacheControl = "no-cache";
        if (status == StatusCodes.Status200OK && http.Request.Headers.IfNoneMatch.Contains(asset.ETag))
        {
            http.Response.StatusCode = StatusCodes.Status304NotModified;
            return Task.CompletedTask;
        }

        http.Response.StatusCode = status;
        http.Response.ContentType = asset.ContentType;
        http.Response.ContentLength = asset.Content.Length;
        return HttpMethods.IsHead(http.Request.Method) ? Task.CompletedTask : http.Response.Body.WriteAsync(asset.Content, http.RequestAborted).AsTask();
    }

    public static void AddSecurityHeaders(HttpResponse response)
    {
        response.Headers[HeaderNames.ContentSecurityPolicy] = ContentSecurityPolicy;
        response.Headers[HeaderNames.XContentTypeOptions] = "nosniff";
        response.Headers[HeaderNames.XFrameOptions] = "DENY";
        response.Headers["Referrer-Policy"] = "no-referrer";
    }

    private static string ContentTypeOf(string path) => System.IO.Path.GetExtension(path) switch
    {
        ".html" => "text/html; charset=utf-8",
        ".css" => "text/css; charset=utf-8",
        ".js" => "text/javascript; charset=utf-8",
        ".svg" => "image/svg+xml",
        ".png" => "image/png",
        ".ico" => "image/x-icon",
        ".txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };
}
