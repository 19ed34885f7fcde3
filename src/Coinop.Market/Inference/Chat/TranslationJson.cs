using System.Text.Encodings.Web;
using System.Text.Json;

namespace Coinop.Market.Inference.Chat;

/// <summary>
/// How translated JSON is written: only what JSON itself requires is escaped (a quote as <c>\"</c>, not <c>\u0022</c>;
/// non-ASCII text as UTF-8, not <c>\uXXXX</c>), as the backends and APIs the market speaks for write it. The output is
/// JSON for API clients, never HTML, so the web encoder's extra escaping only made it larger.
/// </summary>
public static class TranslationJson
{
    public static JsonWriterOptions Options { get; } = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
}
