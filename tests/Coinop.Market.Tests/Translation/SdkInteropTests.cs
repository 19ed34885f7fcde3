using System.Text.Json.Nodes;
using Coinop.TestKit;

namespace Coinop.Market.Tests.Translation;

/// <summary>
/// The official npm SDKs (<c>@anthropic-ai/sdk</c> and <c>openai</c>, run by node) against a real market whose
/// provider fronts the OpenAI-chat-only simulator: tools, streamed tool use, tool results with images, vision
/// routing, thinking, count_tokens, chat tool calls and the Responses API (see tests/interop/sdk-interop.mjs).
/// </summary>
public class SdkInteropTests
{
    [Fact]
    public async Task Npm_anthropic_and_openai_sdks_use_tools_images_thinking_count_tokens_and_responses_through_the_market()
    {
        var interop = Path.Combine(RepoPaths.Root, "tests", "interop");
        Assert.True(Directory.Exists(Path.Combine(interop, "node_modules", "@anthropic-ai", "sdk")) && Directory.Exists(Path.Combine(interop, "node_modules", "openai")),
            "the npm SDKs are not installed: run 'npm ci' in tests/interop (./test.sh does)");
        await using var stack = await ChatStack.StartAsync();

        await using var node = ChildProcess.Start("sdk-interop", "node", ["sdk-interop.mjs", stack.Url], workingDirectory: interop);
        var exit = await node.WaitForExitAsync(TimeSpan.FromMinutes(2));
        var line = node.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault(l => l.StartsWith('{')) ?? "";
        Assert.True(exit == 0, node.Output);
        var result = JsonNode.Parse(line)!;
        Assert.True(result["ok"]!.GetValue<bool>(), node.Output);
        var checks = result["checks"]!.AsArray().Select(c => c!.GetValue<string>()).ToList();
        Assert.Equal(12, checks.Count);
        Assert.Contains("anthropic: count_tokens", checks);
        Assert.Contains("openai: responses.stream function_call_arguments deltas", checks);
        Assert.Contains("openai: chat stream with include_usage ends with the usage billed", checks);
    }
}
