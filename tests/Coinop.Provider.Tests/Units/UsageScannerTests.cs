using System.Text;
using Coinop.Core.Protocol;
using Coinop.Provider.Jobs;
using CsCheck;

namespace Coinop.Provider.Tests.Units;

public class UsageScannerTests
{
    private const string OpenAiStream =
        "data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n" +
        "data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n" +
        "data: {\"id\":\"x\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":34,\"total_tokens\":46,\"prompt_tokens_details\":{\"cached_tokens\":5}}}\n\n" +
        "data: [DONE]\n\n";

    private const string AnthropicStream =
        "event: message_start\r\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\r\n\r\n" +
        "event: content_block_delta\r\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"usage\"}}\r\n\r\n" +
        "event: message_delta\r\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":15}}\r\n\r\n" +
        "event: message_stop\r\ndata: {\"type\":\"message_stop\"}\r\n\r\n";

    private const string OpenAiJson =
        "{\"id\":\"x\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"a \\\"usage\\\" word\"}}]," +
        "\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":9,\"total_tokens\":16}}";

    [Theory]
    [InlineData(OpenAiStream, true, 12, 34)]
    [InlineData(AnthropicStream, true, 25, 15)]
    [InlineData(OpenAiJson, false, 7, 9)]
    [InlineData("data: {\"type\":\"usage\",\"usage\" : \t{\"prompt_tokens\":1,\"completion_tokens\":2}}\n\n", true, 1, 2)]
    [InlineData("{\"object\":\"list\",\"data\":[{\"embedding\":[0.1,0.2]}],\"usage\":{\"prompt_tokens\":3,\"total_tokens\":3}}", false, 3, 0)]
    [InlineData("{\"type\":\"message\",\"content\":[],\"usage\":{\"input_tokens\":4,\"output_tokens\":6}}", false, 4, 6)]
    public void Finds_the_usage_whole(string body, bool sse, long input, long output)
    {
        var scanner = new UsageScanner(sse);
        scanner.Feed(Encoding.UTF8.GetBytes(body));
        Assert.True(scanner.Found);
        Assert.Equal(new TokenUsage(input, output), scanner.Usage);
    }

    /// <summary>SSE lines may end with CR alone (the market's relay reads them so): the usage is the same.</summary>
    [Theory]
    [InlineData(OpenAiStream, 12, 34)]
    [InlineData(AnthropicStream, 25, 15)]
    public void Finds_the_usage_of_a_stream_whose_lines_end_with_CR_alone(string body, long input, long output)
    {
        var bytes = Encoding.UTF8.GetBytes(body.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\n', '\r'));
        Gen.Int[0, bytes.Length].Array[0, 6].Sample(cuts =>
        {
            var scanner = new UsageScanner(serverSentEvents: true);
            var at = 0;
            foreach (var cut in cuts.Order())
            {
                scanner.Feed(bytes.AsSpan(at, cut - at));
                at = cut;
            }

            scanner.Feed(bytes.AsSpan(at));
            Assert.Equal(new TokenUsage(input, output), scanner.Usage);
        });
    }

    [Theory]
    [InlineData(OpenAiStream, true)]
    [InlineData(AnthropicStream, true)]
    [InlineData(OpenAiJson, false)]
    public void Finds_the_same_usage_however_the_bytes_are_split(string body, bool sse)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        var whole = new UsageScanner(sse);
        whole.Feed(bytes);
        Gen.Int[0, bytes.Length].Array[0, 12].Sample(cuts =>
        {
            var scanner = new UsageScanner(sse);
            var at = 0;
            foreach (var cut in cuts.Order())
            {
                scanner.Feed(bytes.AsSpan(at, cut - at));
                at = cut;
            }

            scanner.Feed(bytes.AsSpan(at));
            Assert.Equal(whole.Usage, scanner.Usage);
        });
    }

    [Theory]
    [InlineData("data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\ndata: [DONE]\n\n", true)]
    [InlineData("not json at all", false)]
    [InlineData("{\"choices\":[{\"usage\":{\"prompt_tokens\":5}}]}", false)]
    public void Reports_nothing_when_there_is_no_top_level_usage(string body, bool sse)
    {
        var scanner = new UsageScanner(sse);
        scanner.Feed(Encoding.UTF8.GetBytes(body));
        Assert.False(scanner.Found);
        Assert.Equal(TokenUsage.Zero, scanner.Usage);
    }
}
