using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Coinop.Core.Protocol;

/// <summary>
/// Writes a <see cref="JsonElement"/> as the bytes it was parsed from instead of re-encoding it token by token: the
/// element always comes from a document this process parsed (and so checked), and copying it is a fraction of the
/// cost of walking it. Reads as the default converter does.
/// </summary>
public sealed class RawJsonValueConverter : JsonConverter<JsonElement>
{
    public override JsonElement Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        JsonElement.ParseValue(ref reader);

    public override void Write(Utf8JsonWriter writer, JsonElement value, JsonSerializerOptions options)
    {
        writer.WriteRawValue(JsonMarshal.GetRawUtf8Value(value), skipInputValidation: true);
    }
}
