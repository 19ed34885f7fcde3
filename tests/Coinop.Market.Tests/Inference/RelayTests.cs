using System.Text;
using Coinop.Core.Protocol;
using Coinop.Core.Work;
using Coinop.Market.Inference;
using Coinop.Market.Inference.Anthropic;
using CsCheck;
using Microsoft.AspNetCore.Http;

namespace Coinop.Market.Tests.Inference;

public class RelayTests
{
    private static readonly string[] OpenAiStream =
    [
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}],\"usage\":null}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}],\"usage\":null}\r\n\r\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo \\\"usage\\\": {\"}}]}\n\n",
        ": keep-alive\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":3,\"total_tokens\":14}}\n\n",
        "data: [DONE]\n\n",
    ];

    private static (string Output, TokenUsage? Usage) Relay(Func<ConsumerOutput, ResponseRelay> create, IEnumerable<byte[]> pieces, BillingSettlement settlement)
    {
        var context = new DefaultHttpContext();
        var body = new MemoryStream();
        context.Response.Body = body;
        using var relay = create(new ConsumerOutput(context.Response));
        foreach (var piece in pieces)
        {
            relay.Accept(piece);
        }

        Assert.True(relay.Complete());
        // As the pipeline does: the usage billed is final before the end is written (here: the output's own, or zero).
        relay.FinishingAsync(relay.Usage ?? TokenUsage.Zero, CancellationToken.None).AsTask().GetAwaiter().GetResult();
        relay.Finish(settlement);
        context.Response.BodyWriter.FlushAsync().AsTask().GetAwaiter().GetResult();
        return (Encoding.UTF8.GetString(body.ToArray()), relay.Usage);
    }

    private static IEnumerable<byte[]> Split(byte[] all, IEnumerable<int> cuts)
    {
        var at = 0;
        foreach (var cut in cuts.Where(c => c > 0 && c < all.Length).Distinct().Order())
        {
            yield return all[at..cut];
            at = cut;
        }

        yield return all[at..];
    }

    [Fact]
    public void An_OpenAI_stream_comes_out_the_same_however_its_bytes_are_cut()
    {
        var all = Encoding.UTF8.GetBytes(string.Concat(OpenAiStream));
        var whole = Relay(o => new OpenAiSseRelay(o, consumerWantsUsage: false), [all], BillingSettlement.Free);

        Gen.Int[0, all.Length].List[0, 40].Sample(cuts =>
        {
            var cutUp = Relay(o => new OpenAiSseRelay(o, consumerWantsUsage: false), Split(all, cuts), BillingSettlement.Free);
            Assert.Equal(whole, cutUp);
        });

        Assert.Equal(new TokenUsage(11, 3), whole.Usage);
        Assert.DoesNotContain("\"completion_tokens\"", whole.Output, StringComparison.Ordinal);
        Assert.Contains("lo \\\"usage\\\": {", whole.Output, StringComparison.Ordinal);
        Assert.EndsWith("data: [DONE]\n\n", whole.Output, StringComparison.Ordinal);
    }

    /// <summary>The SSE spec ends lines with CRLF, LF or CR: a backend may use any, even mixed, and cut anywhere.</summary>
    [Fact]
    public void An_OpenAI_stream_with_CR_LF_or_CRLF_line_ends_comes_out_the_same_however_its_bytes_are_cut()
    {
        var all = Encoding.UTF8.GetBytes(string.Concat(OpenAiStream));
        var whole = Relay(o => new OpenAiSseRelay(o, consumerWantsUsage: true), [all], BillingSettlement.Free);
        var lines = string.Concat(OpenAiStream).Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n')[..^1];

        Gen.Select(Gen.OneOf("\r", "\n", "\r\n").Array[lines.Length], Gen.Int[0, 2000].List[0, 40], (ends, cuts) => (ends, cuts)).Sample(sample =>
        {
            // A CR then an empty line's LF would be one CRLF, not a blank line: that empty line ends with CR too.
            var text = string.Concat(lines.Select((line, i) =>
                line + (line.Length == 0 && i > 0 && sample.ends[i - 1] == "\r" && sample.ends[i] == "\n" ? "\r" : sample.ends[i])));
            var bytes = Encoding.UTF8.GetBytes(text);
            var cutUp = Relay(o => new OpenAiSseRelay(o, consumerWantsUsage: true), Split(bytes, sample.cuts), BillingSettlement.Free);
            Assert.Equal(whole, cutUp);
        });

        Assert.DoesNotContain('\r', whole.Output);
        Assert.Contains("lo \\\"usage\\\": {", whole.Output, StringComparison.Ordinal);
    }

    [Fact]
    public void The_usage_billed_goes_out_when_asked_for_and_the_trailer_goes_just_before_DONE()
    {
        var all = Encoding.UTF8.GetBytes(string.Concat(OpenAiStream));

        var (output, _) = Relay(o => new OpenAiSseRelay(o, consumerWantsUsage: true), [all], new BillingSettlement([], "x-cashu cashuBxyz", 5));

        Assert.Contains("\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":3,\"total_tokens\":14}", output, StringComparison.Ordinal);
        Assert.EndsWith("\n\n: x-cashu cashuBxyz\n\ndata: [DONE]\n\n", output, StringComparison.Ordinal);
        Assert.Equal(1, output.Split("[DONE]").Length - 1);
    }

    [Fact]
    public void A_translated_stream_comes_out_the_same_however_its_bytes_are_cut()
    {
        var all = Encoding.UTF8.GetBytes(string.Concat(OpenAiStream));
        ResponseRelay Create(ConsumerOutput o) => new AnthropicFromOpenAiSseRelay(o, new AnthropicReply("msg_1", "llama3", []));
        var whole = Relay(Create, [all], BillingSettlement.Free);

        Gen.Int[0, all.Length].List[0, 40].Sample(cuts => Assert.Equal(whole, Relay(Create, Split(all, cuts), BillingSettlement.Free)));

        var events = whole.Output.Split('\n').Where(l => l.StartsWith("event: ", StringComparison.Ordinal)).Select(l => l[7..]);
        Assert.Equal(["message_start", "ping", "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop", "message_delta", "message_stop"], events);
        Assert.Equal(new TokenUsage(11, 3), whole.Usage);
    }

    [Fact]
    public void A_last_event_without_its_blank_line_is_still_relayed()
    {
        var (output, usage) = Relay(o => new OpenAiSseRelay(o, consumerWantsUsage: true),
            [Encoding.UTF8.GetBytes("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n")], BillingSettlement.Free);

        Assert.Equal(new TokenUsage(1, 2), usage);
        Assert.Equal("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}\n\ndata: [DONE]\n\n", output);
    }

    [Theory]
    [InlineData("{\"prompt_tokens\":2,\"completion_tokens\":900,\"content\":\"HIDDEN\"}")]
    [InlineData("[{\"text\":\"HIDDEN\"},[{\"reasoning\":\"HIDDEN\"}],\"HIDDEN\"]")]
    [InlineData("7")]
    public async Task A_whole_answer_shows_the_usage_billed_and_text_in_its_usage_is_not_counted(string usage)
    {
        var context = new DefaultHttpContext { Response = { Body = new MemoryStream() } };
        using var relay = new BufferedRelay(new ConsumerOutput(context.Response), anthropicNative: false, translator: null, 1 << 20);
        var hidden = usage.Replace("HIDDEN", new string('h', 3000), StringComparison.Ordinal);
        relay.Accept(Encoding.UTF8.GetBytes("{\"choices\":[{\"index\":0,\"message\":{\"content\":\"twelve bytes\"}}],\"usage\":" + hidden + "}"));

        Assert.True(relay.Complete());
        Assert.Equal(4, relay.CountedOutputTokens); // "twelve bytes": the text in usage is not the consumer's
        await relay.FinishingAsync(new TokenUsage(3, 4), TestContext.Current.CancellationToken);
        relay.Finish(BillingSettlement.Free);
        await context.Response.BodyWriter.FlushAsync(TestContext.Current.CancellationToken);
        var body = Encoding.UTF8.GetString(((MemoryStream)context.Response.Body).ToArray());
        Assert.Equal("{\"choices\":[{\"index\":0,\"message\":{\"content\":\"twelve bytes\"}}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7}}", body);
    }

    [Fact]
    public void Output_that_is_not_a_stream_of_JSON_is_a_provider_failure()
    {
        var context = new DefaultHttpContext { Response = { Body = new MemoryStream() } };
        using var relay = new AnthropicFromOpenAiSseRelay(new ConsumerOutput(context.Response), new AnthropicReply("msg_1", "m", []));

        Assert.Throws<ProviderOutputException>(() => relay.Accept("data: <html>oops</html>\n\n"u8));
    }

    [Fact]
    public void A_stream_event_without_an_end_cannot_grow_past_its_limit()
    {
        var context = new DefaultHttpContext { Response = { Body = new MemoryStream() } };
        using var relay = new OpenAiSseRelay(new ConsumerOutput(context.Response), false);
        var piece = new byte[64 * 1024];
        Array.Fill(piece, (byte)'x');

        Assert.Throws<ProviderOutputException>(() =>
        {
            for (var i = 0; i < 32; i++)
            {
                relay.Accept(piece);
            }
        });
    }
}

public class InferenceJobTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000);

    [Fact]
    public void A_job_is_rerunnable_until_its_first_byte_and_each_attempt_gets_a_new_fence()
    {
        var job = new InferenceJob(Guid.NewGuid(), "m", InferenceRoute.ChatCompletions, Now, maxAttempts: 3);

        var first = job.Dispatch("a", Now);
        job.AttemptFailed(); // the kernel revokes the attempt's fence: anything "a" still sends is stale
        var second = job.Dispatch("b", Now);
        Assert.True(second > first + 1, $"fence {second} must be past the revoked {first + 1}");
        Assert.True(job.Rerunnable);
        job.FirstByteSent(Now);

        Assert.Equal(JobState.Streaming, job.State);
        Assert.False(job.Rerunnable);
        Assert.Equal(RecoveryDisposition.OwnerBound, job.Work.Disposition);
        Assert.Equal(WorkRefusal.AlreadyStarted,
            WorkKernel.Claim(job.Work, new LeaseOwner("c", "x"), "t", LeaseTimings.Default, Now.AddHours(2)).Refusal); // never runs again
        Assert.Throws<InvalidOperationException>(job.AttemptFailed);
        Assert.Throws<InvalidOperationException>(() => job.Dispatch("c", Now));
        job.Complete(new TokenUsage(1, 2), null, Now);
        Assert.Throws<InvalidOperationException>(() => job.Fail("late", Now)); // terminals are final
        Assert.Equal(2, job.ToRecord().Attempts);
        Assert.Equal("b", job.ToRecord().ProviderId);
    }

    [Fact]
    public void A_job_runs_at_most_its_maximum_attempts()
    {
        var job = new InferenceJob(Guid.NewGuid(), "m", InferenceRoute.Messages, Now, maxAttempts: 2);
        job.Dispatch("a", Now);
        job.AttemptFailed();
        job.Dispatch("b", Now);
        job.AttemptFailed();

        Assert.False(job.CanRetry);
        Assert.Throws<InvalidOperationException>(() => job.Dispatch("c", Now));
        job.Fail("provider_failed", Now);
        Assert.Equal(Storage.Jobs.JobOutcome.Failed, job.ToRecord().Outcome);
        Assert.Equal("anthropic", job.ToRecord().WireFormat);
    }
}
