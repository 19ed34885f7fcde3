using System.Buffers;
using System.Buffers.Binary;
using System.Text.Json;
using Coinop.Market.Inference.Chat;
using Microsoft.ML.Tokenizers;

namespace Coinop.Market.Inference.Anthropic;

/// <summary>How a count was made: exactly with the model family's tokenizer, or estimated.</summary>
public enum TokenCountKind
{
    Exact,
    Estimate,
}

/// <summary>
/// Counts the input tokens of an Anthropic Messages request as the market would send it (translated to OpenAI chat:
/// system, messages, tool calls and results, tools, images). OpenAI model families are counted with their own
/// tiktoken encoding (o200k_base for gpt-4o, gpt-4.1, gpt-5, o-series and gpt-oss; cl100k_base for gpt-4 and
/// gpt-3.5), with OpenAI's chat framing (3 tokens a message, 3 to prime the reply). Every other family (Llama, Qwen,
/// Mistral, Claude, ...) is an estimate: the o200k_base count × <see cref="EstimateFactor"/>, rounded up, since those
/// tokenizers produce up to about a fifth more tokens than o200k_base on English and code. Images count as Anthropic
/// counts them, width × height / 750 at most <see cref="MaxImageTokens"/> (dimensions read from the PNG, GIF, JPEG
/// or WebP header; <see cref="MaxImageTokens"/> when unknown, as for an image URL). Pure but for the lazily loaded
/// encodings.
/// </summary>
public static class TokenCounter
{
    public const double EstimateFactor = 1.2;
    public const int MaxImageTokens = 1600;
    public const int TokensPerMessage = 3;
    public const int TokensPerTool = 8;
    public const int ReplyPriming = 3;

    private static readonly Lazy<Tokenizer> O200k = new(() => TiktokenTokenizer.CreateForEncoding("o200k_base"));
    private static readonly Lazy<Tokenizer> Cl100k = new(() => TiktokenTokenizer.CreateForEncoding("cl100k_base"));

    /// <summary>Counts a checked Anthropic request (count_tokens or messages).</summary>
    public static (long Tokens, TokenCountKind Kind) Count(JsonElement anthropic)
    {
        var model = anthropic.GetProperty("model").GetString()!;
        var (tokenizer, exact) = TokenizerFor(model);
        var buffer = new ArrayBufferWriter<byte>(4096);
        using (var json = new Utf8JsonWriter(buffer, TranslationJson.Options))
        {
            json.WriteStartObject();
            AnthropicToChat.WriteMessages(anthropic, json);
            AnthropicToChat.WriteTools(anthropic, json);
            json.WriteEndObject();
        }

        using var chat = JsonDocument.Parse(buffer.WrittenMemory);
        long tokens = ReplyPriming;
        foreach (var message in chat.RootElement.GetProperty("messages").EnumerateArray())
        {
            tokens += TokensPerMessage + Text(tokenizer, message.GetProperty("role").GetString());
            if (message.TryGetProperty("content", out var content))
            {
                tokens += Content(tokenizer, content);
            }

            if (message.TryGetProperty("tool_calls", out var calls))
            {
                foreach (var call in calls.EnumerateArray())
                {
                    var function = call.GetProperty("function");
                    tokens += TokensPerMessage + Text(tokenizer, function.GetProperty("name").GetString()) + Text(tokenizer, function.GetProperty("arguments").GetString());
                }
            }
        }

        if (chat.RootElement.TryGetProperty("tools", out var tools))
        {
            foreach (var tool in tools.EnumerateArray())
            {
                var function = tool.GetProperty("function");
                tokens += TokensPerTool + Text(tokenizer, function.GetProperty("name").GetString())
                    + (function.TryGetProperty("description", out var d) ? Text(tokenizer, d.GetString()) : 0)
                    + Text(tokenizer, function.GetProperty("parameters").GetRawText());
            }
        }

        return exact ? (tokens, TokenCountKind.Exact) : ((long)Math.Ceiling(tokens * EstimateFactor), TokenCountKind.Estimate);
    }

    /// <summary>The encoding of an OpenAI model family, exactly; o200k_base for an estimate otherwise.</summary>
    public static (Tokenizer Tokenizer, bool Exact) TokenizerFor(string model)
    {
        var name = model.ToLowerInvariant();
        var slash = name.LastIndexOf('/');
        if (slash >= 0)
        {
            name = name[(slash + 1)..]; // "openai/gpt-4o" as routers name it
        }

        if (name.StartsWith("gpt-4o", StringComparison.Ordinal) || name.StartsWith("chatgpt-4o", StringComparison.Ordinal)
            || name.StartsWith("gpt-4.1", StringComparison.Ordinal) || name.StartsWith("gpt-4.5", StringComparison.Ordinal)
            || name.StartsWith("gpt-5", StringComparison.Ordinal) || name.StartsWith("gpt-oss", StringComparison.Ordinal)
            || (name.Length > 1 && name[0] == 'o' && char.IsAsciiDigit(name[1])))
        {
            return (O200k.Value, true);
        }

        if (name.StartsWith("gpt-4", StringComparison.Ordinal) || name.StartsWith("gpt-3.5", StringComparison.Ordinal)
            || name.StartsWith("gpt-35", StringComparison.Ordinal) || name.StartsWith("text-embedding-", StringComparison.Ordinal))
        {
            return (Cl100k.Value, true);
        }

        return (O200k.Value, false);
    }

    /// <summary>Anthropic's image cost from a data URL's image header: width × height / 750, at most <see cref="MaxImageTokens"/>.</summary>
    public static int ImageTokens(string url)
    {
        var comma = url.IndexOf(',', StringComparison.Ordinal);
        if (!url.StartsWith("data:", StringComparison.Ordinal) || comma < 0)
        {
            return MaxImageTokens;
        }

        // 64 base64 characters hold the first 48 bytes; JPEG needs more, so up to 64 KiB of it.
        var encoded = url.AsSpan(comma + 1);
        var take = Math.Min(encoded.Length, 64 * 1024) / 4 * 4;
        var bytes = new byte[take / 4 * 3];
        if (!Convert.TryFromBase64Chars(encoded[..take], bytes, out var written))
        {
            return MaxImageTokens;
        }

        return Dimensions(bytes.AsSpan(0, written)) is var (w, h) && w > 0 && h > 0
            ? (int)Math.Min(MaxImageTokens, Math.Ceiling((double)w * h / 750))
            : MaxImageTokens;
    }

    /// <summary>Width and height from a PNG, GIF, JPEG or WebP header; null when it is none of those or is cut short.</summary>
    public static (int Width, int Height)? Dimensions(ReadOnlySpan<byte> image)
    {
        if (image.Length >= 24 && image[..8].SequenceEqual((ReadOnlySpan<byte>)[0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]))
        {
            return (BinaryPrimitives.ReadInt32BigEndian(image[16..]), BinaryPrimitives.ReadInt32BigEndian(image[20..]));
        }

        if (image.Length >= 10 && image[..3].SequenceEqual("GIF"u8))
        {
            return (BinaryPrimitives.ReadUInt16LittleEndian(image[6..]), BinaryPrimitives.ReadUInt16LittleEndian(image[8..]));
        }

        if (image.Length >= 30 && image[..4].SequenceEqual("RIFF"u8) && image[8..12].SequenceEqual("WEBP"u8))
        {
            var chunk = image[12..16];
            if (chunk.SequenceEqual("VP8X"u8))
            {
                return (1 + (image[24] | image[25] << 8 | image[26] << 16), 1 + (image[27] | image[28] << 8 | image[29] << 16));
            }

            if (chunk.SequenceEqual("VP8 "u8))
            {
                return (BinaryPrimitives.ReadUInt16LittleEndian(image[26..]) & 0x3FFF, BinaryPrimitives.ReadUInt16LittleEndian(image[28..]) & 0x3FFF);
            }

            if (chunk.SequenceEqual("VP8L"u8) && image.Length >= 25)
            {
                var bits = BinaryPrimitives.ReadUInt32LittleEndian(image[21..]);
                return ((int)(bits & 0x3FFF) + 1, (int)((bits >> 14) & 0x3FFF) + 1);
            }

            return null;
        }

        if (image.Length >= 4 && image[0] == 0xFF && image[1] == 0xD8)
        {
            // JPEG: walk the segments to the first start-of-frame.
            var at = 2;
            while (at + 9 < image.Length)
            {
                if (image[at] != 0xFF)
                {
                    return null;
                }

                var marker = image[at + 1];
                var length = BinaryPrimitives.ReadUInt16BigEndian(image[(at + 2)..]);
                if (marker is >= 0xC0 and <= 0xCF and not 0xC4 and not 0xC8 and not 0xCC)
                {
                    return (BinaryPrimitives.ReadUInt16BigEndian(image[(at + 7)..]), BinaryPrimitives.ReadUInt16BigEndian(image[(at + 5)..]));
                }

                at += 2 + length;
            }
        }

        return null;
    }

    private static long Content(Tokenizer tokenizer, JsonElement content)
    {
        if (content.ValueKind == JsonValueKind.String)
        {
            return Text(tokenizer, content.GetString());
        }

        if (content.ValueKind != JsonValueKind.Array)
        {
            return 0;
        }

        long tokens = 0;
        foreach (var part in content.EnumerateArray())
        {
            if (part.TryGetProperty("text", out var text))
            {
                tokens += Text(tokenizer, text.GetString());
            }
            else if (part.TryGetProperty("image_url", out var image))
            {
                tokens += ImageTokens(image.GetProperty("url").GetString()!);
            }
        }

        return tokens;
    }

    private static int Text(Tokenizer tokenizer, string? text) => string.IsNullOrEmpty(text) ? 0 : tokenizer.CountTokens(text);
}
