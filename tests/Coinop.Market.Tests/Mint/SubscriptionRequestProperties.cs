using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Coinop.Market.Mint;
using Coinop.TestKit;
using CsCheck;

namespace Coinop.Market.Tests.Mint;

/// <summary>
/// <see cref="SubscriptionRequest.Parse"/>, the reader of every NUT-17 message a wallet sends, driven with random and
/// mutated input: it never throws, it answers either a request or an error with a JSON-RPC code and an id that is a
/// string, a number or null, the error can always be written out, and a well-formed request reads back as sent.
/// </summary>
public class SubscriptionRequestProperties
{
    private static readonly int[] Codes =
        [SubscriptionRequest.ParseError, SubscriptionRequest.InvalidRequest, SubscriptionRequest.MethodNotFound, SubscriptionRequest.InvalidParams, SubscriptionRequest.LimitExceeded];

    private const string Valid = """{"jsonrpc":"2.0","id":7,"method":"subscribe","params":{"kind":"bolt11_mint_quote","subId":"s","filters":["q1","q2"]}}""";

    private static readonly Gen<byte[]> Messages = Gen.Frequency(
        (3, HostileInput.JsonBodies(Valid).Select(Encoding.UTF8.GetBytes)),
        (2, HostileInput.Mutations(Encoding.UTF8.GetBytes(Valid))),
        (1, HostileInput.Mutations(Encoding.UTF8.GetBytes("""{"jsonrpc":"2.0","id":"a\ud800","method":"unsubscribe","params":{"subId":"\udc00","subId":"x"}}"""))),
        (1, Gen.Byte.Array[0, 200]));

    [Fact]
    public void Any_message_reads_as_a_request_or_an_error_that_can_be_answered()
    {
        Messages.Sample(bytes =>
        {
            var (request, error) = SubscriptionRequest.Parse(bytes);
            Assert.True((request is null) != (error is null));
            var id = request is not null ? request.Id : error!.Id;
            Assert.True(id is null || id.GetValueKind() is JsonValueKind.String or JsonValueKind.Number, id?.ToJsonString());
            if (error is not null)
            {
                Assert.Contains(error.Code, Codes);
                Assert.False(string.IsNullOrWhiteSpace(error.Message));
                _ = new JsonObject { ["message"] = error.Message, ["id"] = error.Id?.DeepClone() }.ToJsonString(); // must not throw
            }
            else
            {
                Assert.Contains(request!.Method, new[] { SubscriptionRequest.Subscribe, SubscriptionRequest.Unsubscribe });
                Assert.InRange(request.SubId.Length, 1, SubscriptionRequest.MaxSubIdLength);
                Assert.InRange(request.Filters.Count, request.Method == SubscriptionRequest.Subscribe ? 1 : 0, MintSubscriptions.MaxWatched);
                Assert.All(request.Filters, f => Assert.InRange(f.Length, 1, SubscriptionRequest.MaxFilterLength));
            }
        }, iter: 20_000);
    }

    [Fact]
    public void A_well_formed_request_reads_back_as_sent()
    {
        var text = Gen.Char.Where(c => !char.IsSurrogate(c)).Array[1, 40].Select(c => new string(c));
        Gen.Select(Gen.OneOf<JsonNode?>(Gen.Long.Select(l => (JsonNode?)l), text.Select(t => (JsonNode?)t), Gen.Const((JsonNode?)null)),
            text, Gen.OneOf(MintSubscriptions.Kinds), text.List[1, MintSubscriptions.MaxWatched]).Sample((id, subId, kind, filters) =>
        {
            var message = new JsonObject
            {
                ["jsonrpc"] = "2.0",
                ["id"] = id?.DeepClone(),
                ["method"] = "subscribe",
                ["params"] = new JsonObject { ["kind"] = kind, ["subId"] = subId, ["filters"] = new JsonArray([.. filters.Select(f => (JsonNode)f)]) },
            };
            var (request, error) = SubscriptionRequest.Parse(Encoding.UTF8.GetBytes(message.ToJsonString()));
            Assert.Null(error);
            Assert.Equal((id?.ToJsonString(), subId, kind), (request!.Id?.ToJsonString(), request.SubId, request.Kind));
            Assert.Equal(filters, request.Filters);
        });
    }

    [Theory]
    [InlineData("""{"jsonrpc":"2.0","id":1,"id":2,"method":"unsubscribe","params":{"subId":"a"}}""", SubscriptionRequest.ParseError)]
    [InlineData("""{"jsonrpc":"2.0","id":1,"method":"unsubscribe","params":{"subId":"a","subId":"b"}}""", SubscriptionRequest.ParseError)]
    [InlineData("""{"jsonrpc":"2.0","id":1,"method":"unsubscribe","params":{"subId":"\ud800"}}""", SubscriptionRequest.InvalidParams)]
    [InlineData("""{"jsonrpc":"2.0","id":"\udc00","method":"unsubscribe","params":{"subId":"a"}}""", SubscriptionRequest.InvalidRequest)]
    [InlineData("""{"jsonrpc":"2.0","id":{},"method":"unsubscribe","params":{"subId":"a"}}""", SubscriptionRequest.InvalidRequest)]
    [InlineData("""{"id":1,"method":"unsubscribe","params":{"subId":"a"}}""", SubscriptionRequest.InvalidRequest)]
    [InlineData("""[{"jsonrpc":"2.0","id":1,"method":"unsubscribe","params":{"subId":"a"}}]""", SubscriptionRequest.InvalidRequest)]
    [InlineData("""{"jsonrpc":"2.0","id":1,"method":"mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm😀","params":{}}""", SubscriptionRequest.MethodNotFound)]
    public void Requests_the_old_reader_threw_on_or_answered_wrongly_are_errors(string message, int code)
    {
        var (request, error) = SubscriptionRequest.Parse(Encoding.UTF8.GetBytes(message));
        Assert.Null(request);
        Assert.Equal(code, error!.Code);
        Assert.Null(error.Id is { } id && id.GetValueKind() is not (JsonValueKind.String or JsonValueKind.Number) ? id : null);
        _ = new JsonObject { ["message"] = error.Message }.ToJsonString();
    }
}
