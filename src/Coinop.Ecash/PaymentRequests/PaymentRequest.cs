using System.Formats.Cbor;
using Coinop.Ecash.Tokens;

namespace Coinop.Ecash.PaymentRequests;

/// <summary>How a payer sends the token (NUT-18 <c>Transport</c>): e.g. <c>post</c> to a URL, or <c>nostr</c>.</summary>
public sealed record PaymentTransport(string Type, string Target, IReadOnlyList<IReadOnlyList<string>>? Tags = null);

/// <summary>A NUT-10 spending condition the payee requires.</summary>
public sealed record Nut10Option(string Kind, string Data, IReadOnlyList<IReadOnlyList<string>>? Tags = null);

/// <summary>
/// A NUT-18 payment request (<c>creqA…</c>): what to pay, in which unit, from which mints. An empty transport
/// list means in-band, as in a NUT-24 <c>X-Cashu</c> 402 response.
/// </summary>
public sealed record PaymentRequest
{
    public string? Id { get; init; }

    public ulong? Amount { get; init; }

    public string? Unit { get; init; }

    public bool? SingleUse { get; init; }

    public IReadOnlyList<string>? Mints { get; init; }

    public string? Description { get; init; }

    public IReadOnlyList<PaymentTransport>? Transports { get; init; }

    public Nut10Option? Nut10 { get; init; }

    public const string Prefix = "creqA";

    /// <summary><c>"creqA" + base64url(CBOR(request))</c>.</summary>
    public string Encode()
    {
        var w = new CborWriter(CborConformanceMode.Lax);
        var fields = new List<Action>();
        Add(fields, w, "i", Id, v => w.WriteTextString(v));
        Add(fields, w, "a", Amount, v => w.WriteUInt64(v!.Value));
        Add(fields, w, "u", Unit, v => w.WriteTextString(v));
        Add(fields, w, "s", SingleUse, v => w.WriteBoolean(v!.Value));
        Add(fields, w, "m", Mints, v => WriteStrings(w, v));
        Add(fields, w, "d", Description, v => w.WriteTextString(v));
        Add(fields, w, "t", Transports, v =>
        {
            w.WriteStartArray(v.Count);
            foreach (var t in v)
            {
                w.WriteStartMap(t.Tags is null ? 2 : 3);
                w.WriteTextString("t");
                w.WriteTextString(t.Type);
                w.WriteTextString("a");
                w.WriteTextString(t.Target);
                if (t.Tags is not null)
                {
                    w.WriteTextString("g");
                    WriteTags(w, t.Tags);
                }

                w.WriteEndMap();
            }

            w.WriteEndArray();
        });
        Add(fields, w, "nut10", Nut10, v =>
        {
            w.WriteStartMap(v.Tags is null ? 2 : 3);
            w.WriteTextString("k");
            w.WriteTextString(v.Kind);
            w.WriteTextString("d");
            w.WriteTextString(v.Data);
            if (v.Tags is not null)
            {
                w.WriteTextString("t");
                WriteTags(w, v.Tags);
            }

            w.WriteEndMap();
        });
        w.WriteStartMap(fields.Count);
        foreach (var f in fields)
        {
            f();
        }

        w.WriteEndMap();
        return Prefix + Base64Url.Encode(w.Encode(), pad: true);
    }

    /// <summary>Decodes a <c>creqA</c> request; unknown fields and null/undefined values are ignored.</summary>
    public static PaymentRequest Decode(string text)
    {
        var s = (text ?? throw new FormatException("no payment request")).Trim();
        if (!s.StartsWith(Prefix, StringComparison.Ordinal))
        {
            throw new FormatException("not a Cashu payment request: it must start with creqA");
        }

        if (!Base64Url.TryDecode(s[Prefix.Length..], out var bytes) || bytes.Length == 0)
        {
            throw new FormatException("the payment request is not valid base64");
        }

        try
        {
            var r = new CborReader(bytes, CborConformanceMode.Lax);
            var request = new PaymentRequest();
            TokenCodec.ReadMap(r, key =>
            {
                if (r.PeekState() is CborReaderState.Null or CborReaderState.SimpleValue && key != "s")
                {
                    r.SkipValue();
                    return;
                }

                request = key switch
                {
                    "i" => request with { Id = r.ReadTextString() },
                    "a" => request with { Amount = r.ReadUInt64() },
                    "u" => request with { Unit = r.ReadTextString() },
                    "s" => request with { SingleUse = r.PeekState() == CborReaderState.Boolean ? r.ReadBoolean() : SkipNull(r) },
                    "m" => request with { Mints = ReadStrings(r) },
                    "d" => request with { Description = r.ReadTextString() },
                    "t" => request with { Transports = ReadTransports(r) },
                    "nut10" => request with { Nut10 = ReadNut10(r) },
                    _ => Skip(r, request),
                };
            });
            return request;
        }
        catch (Exception ex) when (ex is CborContentException or InvalidOperationException or OverflowException)
        {
            throw new FormatException("the payment request is not valid CBOR: " + ex.Message, ex);
        }
    }

    private static void Add<T>(List<Action> fields, CborWriter w, string key, T? value, Action<T> write)
    {
        if (value is null)
        {
            return;
        }

        fields.Add(() =>
        {
            w.WriteTextString(key);
            write(value);
        });
    }

    private static PaymentRequest Skip(CborReader r, PaymentRequest request)
    {
        r.SkipValue();
        return request;
    }

    private static bool? SkipNull(CborReader r)
    {
        r.SkipValue();
        return null;
    }

    private static void WriteStrings(CborWriter w, IReadOnlyList<string> values)
    {
        w.WriteStartArray(values.Count);
        foreach (var v in values)
        {
            w.WriteTextString(v);
        }

        w.WriteEndArray();
    }

    private static void WriteTags(CborWriter w, IReadOnlyList<IReadOnlyList<string>> tags)
    {
        w.WriteStartArray(tags.Count);
        foreach (var tag in tags)
        {
            WriteStrings(w, tag);
        }

        w.WriteEndArray();
    }

    private static List<string> ReadStrings(CborReader r)
    {
        var list = new List<string>();
        TokenCodec.ReadArray(r, () => list.Add(r.ReadTextString()));
        return list;
    }

    private static List<IReadOnlyList<string>>? ReadTags(CborReader r)
    {
        if (r.PeekState() is CborReaderState.Null or CborReaderState.SimpleValue)
        {
            r.SkipValue();
            return null;
        }

        var tags = new List<IReadOnlyList<string>>();
        TokenCodec.ReadArray(r, () => tags.Add(ReadStrings(r)));
        return tags;
    }

    private static List<PaymentTransport> ReadTransports(CborReader r)
    {
        var list = new List<PaymentTransport>();
        TokenCodec.ReadArray(r, () =>
        {
            string? type = null, target = null;
            List<IReadOnlyList<string>>? tags = null;
            TokenCodec.ReadMap(r, key =>
            {
                switch (key)
                {
                    case "t":
                        type = r.ReadTextString();
                        break;
                    case "a":
                        target = r.ReadTextString();
                        break;
                    case "g":
                        tags = ReadTags(r);
                        break;
                    default:
                        r.SkipValue();
                        break;
                }
            });
            list.Add(new PaymentTransport(type ?? throw new FormatException("a transport has no type"), target ?? "", tags));
        });
        return list;
    }

    private static Nut10Option ReadNut10(CborReader r)
    {
        string? kind = null, data = null;
        List<IReadOnlyList<string>>? tags = null;
        TokenCodec.ReadMap(r, key =>
        {
            switch (key)
            {
                case "k":
                    kind = r.ReadTextString();
                    break;
                case "d":
                    data = r.ReadTextString();
                    break;
                case "t":
                    tags = ReadTags(r);
                    break;
                default:
                    r.SkipValue();
                    break;
            }
        });
        return new Nut10Option(kind ?? throw new FormatException("nut10 has no kind"), data ?? "", tags);
    }
}
