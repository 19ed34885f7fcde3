using System.Net;
using System.Text.Json;
using Coinop.Core.Protocol;
using Coinop.Market.Cluster;

namespace Coinop.Market.Tests.Cluster;

/// <summary>
/// Someone who saw one node-to-node request (a forwarded job, on the wire between nodes or in a log) sends it again within
/// the window. The exact copy was refused, but the replay check compared the signature's text: the same 32 bytes spelled
/// otherwise in base64 (a space inside, which .NET's decoder skips, or the unused low bits of the last digit set) passed
/// as new, and the provider ran the job again for whoever replayed it.
/// </summary>
public class NodeReplayAttackTests
{
    [Fact]
    public async Task A_signature_spelled_another_way_is_the_same_signature_and_a_replay()
    {
        var ct = TestContext.Current.CancellationToken;
        await using var nodes = await TestNodes.StartAsync(2);
        var job = new JobMessage(Guid.NewGuid(), 1, "llama3", WireFormat.OpenAi, "chat/completions", false,
            JsonDocument.Parse("""{"model":"llama3","messages":[]}""").RootElement, 0, 65536);
        var body = ProtocolJson.Serialize(job);
        var signed = TestNodes.Get<NodeAuth>(nodes[0]).Sign("n-test", "POST", ForwardClient.Path, body).ToList();
        var signature = signed.Single(h => h.Key == NodeAuth.SignatureHeader).Value;
        async Task<HttpStatusCode> PostAsync(string spelled)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, ForwardClient.Path) { Content = new ByteArrayContent(body) };
            request.Headers.Add(ForwardClient.ProviderHeader, "p0000000000000000000");
            request.Headers.Add(ForwardClient.EpochHeader, "1");
            foreach (var (name, value) in signed)
            {
                request.Headers.TryAddWithoutValidation(name, name == NodeAuth.SignatureHeader ? spelled : value);
            }

            using var response = await nodes[1].Http.SendAsync(request, ct);
            return response.StatusCode;
        }

        Assert.Equal(HttpStatusCode.Conflict, await PostAsync(signature)); // genuine: authenticated (no such provider there)
        Assert.Equal(HttpStatusCode.Unauthorized, await PostAsync(signature));

        var lastDigit = signature.Length - 2; // 32 bytes: 43 digits and one '=', the last digit carrying 2 unused bits
        var otherBits = signature[..lastDigit] + Base64Digit(Base64Value(signature[lastDigit]) ^ 1) + signature[(lastDigit + 1)..];
        Assert.Equal(Convert.FromBase64String(signature), Convert.FromBase64String(otherBits));
        Assert.Equal(HttpStatusCode.Unauthorized, await PostAsync(otherBits));
        Assert.Equal(HttpStatusCode.Unauthorized, await PostAsync(signature.Insert(10, " ")));
        Assert.Equal(HttpStatusCode.Unauthorized, await PostAsync(signature.Insert(20, "\t")));
    }

    private const string Digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    private static int Base64Value(char digit) => Digits.IndexOf(digit, StringComparison.Ordinal);

    private static char Base64Digit(int value) => Digits[value];
}
