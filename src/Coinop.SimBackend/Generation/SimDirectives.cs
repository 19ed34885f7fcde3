using System.Globalization;

namespace Coinop.SimBackend.Generation;

/// <summary>
/// Fault-injection directives embedded in the prompt text, e.g. <c>[[sim:status=503]]</c>, so end-to-end tests
/// can stage a failure for one request without configuring the simulator.
/// </summary>
public readonly record struct SimDirectives(
    int? Status, bool Hang, int? DropAfter, int? Tokens, int? SlowMs,
    int? ToolCalls = null, int? Reasoning = null, string? Finish = null, int? ArgChunk = null)
{
    private const string Open = "[[sim:";
    private const string Close = "]]";

    /// <summary>Help text listing every directive (the CLI's --help and docs/operations.md say the same).</summary>
    public const string Help =
        "  [[sim:status=N]]      answer HTTP N (400-599) with an OpenAI error body, before any output byte\n" +
        "  [[sim:hang]]          never answer (the client or its deadline gives up)\n" +
        "  [[sim:drop-after=N]]  close the connection after N SSE events (after N body bytes when not streaming)\n" +
        "  [[sim:tokens=N]]      answer with exactly N tokens (max_tokens still caps it)\n" +
        "  [[sim:slow=MS]]       wait MS milliseconds per token (overrides --tokens-per-second)\n" +
        "  [[sim:tool-calls=N]]  call N of the request's tools (in order, cycling), each after a short text, with\n" +
        "                        arguments made from the tool's JSON schema; finish_reason tool_calls\n" +
        "  [[sim:arg-chunk=N]]   stream tool-call arguments N characters at a time (default 4)\n" +
        "  [[sim:reasoning=N]]   think first: N tokens of reasoning_content before the answer\n" +
        "  [[sim:finish=R]]      report finish_reason R (stop, length, tool_calls, content_filter), e.g. stop with tool calls as some servers do";

    private const string Known = "status=N, hang, drop-after=N, tokens=N, slow=MS, tool-calls=N, arg-chunk=N, reasoning=N, finish=R";

    public static bool TryParse(string text, out SimDirectives directives, out string? error)
    {
        directives = default;
        error = null;
        var at = text.IndexOf(Open, StringComparison.Ordinal);
        while (at >= 0)
        {
            var end = text.IndexOf(Close, at + Open.Length, StringComparison.Ordinal);
            if (end < 0)
            {
                error = "unterminated simulator directive: expected ']]'";
                return false;
            }

            var body = text.AsSpan(at + Open.Length, end - at - Open.Length);
            var eq = body.IndexOf('=');
            var name = (eq < 0 ? body : body[..eq]).Trim();
            var value = eq < 0 ? default : body[(eq + 1)..].Trim();
            if (!Apply(ref directives, name, value, out error))
            {
                return false;
            }

            at = text.IndexOf(Open, end + Close.Length, StringComparison.Ordinal);
        }

        return true;
    }

    private static bool Apply(ref SimDirectives d, ReadOnlySpan<char> name, ReadOnlySpan<char> value, out string? error)
    {
        error = null;
        switch (name)
        {
            case "hang":
                d = d with { Hang = true };
                return true;
            case "status" when Number(value, 400, 599, out var status):
                d = d with { Status = status };
                return true;
            case "drop-after" when Number(value, 0, int.MaxValue, out var drop):
                d = d with { DropAfter = drop };
                return true;
            case "tokens" when Number(value, 0, 10_000_000, out var tokens):
                d = d with { Tokens = tokens };
                return true;
            case "slow" when Number(value, 0, 3_600_000, out var slow):
                d = d with { SlowMs = slow };
                return true;
            case "tool-calls" when Number(value, 1, 64, out var calls):
                d = d with { ToolCalls = calls };
                return true;
            case "arg-chunk" when Number(value, 1, 1_000_000, out var chunk):
                d = d with { ArgChunk = chunk };
                return true;
            case "reasoning" when Number(value, 1, 100_000, out var reasoning):
                d = d with { Reasoning = reasoning };
                return true;
            case "finish" when value is "stop" or "length" or "tool_calls" or "content_filter":
                d = d with { Finish = value.ToString() };
                return true;
            default:
                error = $"unknown or invalid simulator directive '[[sim:{name}{(value.IsEmpty ? "" : "=" + value.ToString())}]]'; known: {Known}";
                return false;
        }
    }

    private static bool Number(ReadOnlySpan<char> text, int min, int max, out int value) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value) && value >= min && value <= max;
}
