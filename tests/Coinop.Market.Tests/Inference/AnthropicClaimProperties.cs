using System.Buffers;
using System.Text;
using System.Text.Json;
using Coinop.Core.Protocol;
using Coinop.Market.Inference;
using CsCheck;

namespace Coinop.Market.Tests.Inference;

/// <summary>
/// <see cref="AnthropicClaim"/> driven with generated answers and events: usage objects anywhere a client reads one (duplicated,
/// keys spelled with escapes, figures of every JSON kind), beside members of every kind. It reads the claim a client reads
/// (the last of duplicate keys) and rewrites so that every usage a client can read is the market's, all else byte for byte.
/// </summary>
public class AnthropicClaimProperties
{
    private static readonly Gen<string> Figure = Gen.OneOf(
        Gen.Long[-5, 2_000_000].Select(n => n.ToString(System.Globalization.CultureInfo.InvariantCulture)),
        Gen.OneOf(Gen.Const("1e300"), Gen.Const("2.5"), Gen.Const("\"NaN\""), Gen.Const("null"), Gen.Const("[1]"), Gen.Const("{\"a\":1}"),
            Gen.Const("123456789012345678901234567890"), Gen.Const("9223372036854775807")));

    /// <summary>A key as it is or spelled with a <c>\u</c> escape for its first letter.</summary>
    private static Gen<string> Key(string name) =>
        Gen.Bool.Select(escaped => escaped ? $"\"\\u{(int)name[0]:x4}{name[1..]}\"" : $"\"{name}\"");

    private static readonly Gen<string> Usage = Gen.OneOf(
        Gen.Select(Key("input_tokens"), Figure, Key("output_tokens"), Figure, Gen.Bool,
            (ik, i, ok, o, hidden) => "{" + ik + ":" + i + "," + ok + ":" + o + (hidden ? ",\"text\":\"hidden\"" : "") + "}"),
        Gen.Select(Key("output_tokens"), Figure, (ok, o) => "{" + ok + ":" + o + "}"),
        Gen.OneOf(Gen.Const("\"lots\""), Gen.Const("null"), Gen.Const("[]"), Gen.Const("{}")));

    private static readonly Gen<string> Other = Gen.OneOf(
        Gen.Const("\"id\":\"msg_1\""), Gen.Const("\"content\":[{\"type\":\"text\",\"text\":\"hi \\\"usage\\\"\"}]"), Gen.Const("\"stop_reason\":null"),
        Gen.Const("\"type\":\"message\""), Gen.Const("\"nested\":{\"usage\":{\"input_tokens\":7}}"), Gen.Const("\"role\" : \"assistant\""));

    private static Gen<string> Members(Gen<string> member) =>
        member.Array[0, 5].Select(members => "{" + string.Join(",", members) + "}");

    private static readonly Gen<string> UsageMember = Gen.Select(Key("usage"), Usage, (k, u) => k + ":" + u);

    private static readonly Gen<string> Message = Gen.Select(Key("message"), Members(Gen.Frequency((2, Other), (1, UsageMember))), (k, m) => k + ":" + m);

    private static readonly Gen<string> Document = Members(Gen.Frequency((3, Other), (2, UsageMember), (2, Message)));

    private static readonly byte[] Shown = Encoding.UTF8.GetBytes("{\"input_tokens\":3,\"output_tokens\":4}");

    [Fact]
    public void Reads_the_claim_a_client_reads()
    {
        Document.Sample(json =>
        {
            var facts = AnthropicClaim.Read(Encoding.UTF8.GetBytes(json));
            using var document = JsonDocument.Parse(json);
            var root = document.RootElement;
            Assert.Equal(ClientFigures(Last(root, "usage")), (facts.Usage.Input, facts.Usage.Output));
            var message = Last(root, "message");
            Assert.Equal(message?.ValueKind == JsonValueKind.Object, facts.HasMessage);
            var inMessage = message?.ValueKind == JsonValueKind.Object ? Last(message.Value, "usage") : null;
            Assert.Equal(ClientFigures(inMessage), (facts.MessageUsage.Input, facts.MessageUsage.Output));
        });
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Rewrites_every_usage_a_client_reads_and_nothing_else(bool inMessage)
    {
        Document.Sample(json =>
        {
            var output = new ArrayBufferWriter<byte>();
            AnthropicClaim.Rewrite(output, Encoding.UTF8.GetBytes(json), Shown, inMessage);
            var rewritten = Encoding.UTF8.GetString(output.WrittenSpan);
            using var before = JsonDocument.Parse(json);
            using var after = JsonDocument.Parse(rewritten);
            AssertRewritten(before.RootElement, after.RootElement, usageRequired: !inMessage, inMessage);
        });
    }

    [Fact]
    public void Shows_a_usage_an_Anthropic_client_reads()
    {
        var output = new ArrayBufferWriter<byte>();
        AnthropicClaim.WriteUsage(output, new TokenUsage(5, 9));
        Assert.Equal("{\"input_tokens\":5,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"output_tokens\":9}", Encoding.UTF8.GetString(output.WrittenSpan));
    }

    /// <summary>Every usage member is the market's; one is there where the client reads it; every other member is unchanged, in order.</summary>
    private static void AssertRewritten(JsonElement before, JsonElement after, bool usageRequired, bool inMessage)
    {
        var kept = before.EnumerateObject().Where(p => p.Name != "usage").ToList();
        var written = after.EnumerateObject().Where(p => p.Name != "usage").ToList();
        Assert.Equal(kept.Count, written.Count);
        for (var i = 0; i < kept.Count; i++)
        {
            Assert.Equal(kept[i].Name, written[i].Name);
            if (inMessage && kept[i].Name == "message" && kept[i].Value.ValueKind == JsonValueKind.Object)
            {
                AssertRewritten(kept[i].Value, written[i].Value, usageRequired: true, inMessage: false);
            }
            else
            {
                Assert.Equal(kept[i].Value.GetRawText(), written[i].Value.GetRawText());
            }
        }

        var usages = after.EnumerateObject().Where(p => p.Name == "usage").ToList();
        Assert.All(usages, u => Assert.Equal("{\"input_tokens\":3,\"output_tokens\":4}", u.Value.GetRawText()));
        Assert.Equal(Math.Max(usageRequired ? 1 : 0, before.EnumerateObject().Count(p => p.Name == "usage")), usages.Count);
    }

    private static JsonElement? Last(JsonElement element, string name) =>
        element.EnumerateObject().LastOrDefault(p => p.Name == name) is { Value.ValueKind: not JsonValueKind.Undefined } p ? p.Value : null;

    private static (long?, long?) ClientFigures(JsonElement? usage)
    {
        if (usage is not { ValueKind: JsonValueKind.Object } u)
        {
            return (null, null);
        }

        return (Integer(Last(u, "input_tokens")), Integer(Last(u, "output_tokens")));

        static long? Integer(JsonElement? figure) => figure is { ValueKind: JsonValueKind.Number } f && f.TryGetInt64(out var n) ? n : null;
    }
}
