using Coinop.Core.Inference;

namespace Coinop.Core.Tests.Inference;

public class UsageProbeTests
{
    [Theory]
    [InlineData("""{"usage":{"prompt_tokens":1}}""", true)]
    [InlineData("{\"id\":1,\"usage\" :\r\n {\"input_tokens\":2}}", true)]
    [InlineData("""{"choices":[],"usage":null}""", false)]
    [InlineData("""{"text":"say \"usage\": {"}""", false)]
    [InlineData("""{"usage":null,"x":{"usage":{}}}""", true)]
    [InlineData("", false)]
    public void Only_a_usage_key_holding_an_object_counts(string json, bool expected) =>
        Assert.Equal(expected, UsageProbe.MayHoldUsage(System.Text.Encoding.UTF8.GetBytes(json)));
}
