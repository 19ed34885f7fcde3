using System.Buffers;
using System.Buffers.Text;
using System.IO.Pipelines;
using System.Runtime.InteropServices;
using Coinop.SimBackend.Generation;
using Coinop.SimBackend.Hosting;
using Microsoft.AspNetCore.Http;

namespace Coinop.SimBackend.OpenAi;

/// <summary>
/// One generated answer (the simulator's deterministic text for a prompt, or embeddings): its length, pacing and the
/// fragments of its JSON or SSE body.
/// </summary>
internal sealed class GeneratedAnswer
{
    private const int FlushThreshold = 16 * 1024;

    private static readonly byte[] ChatIdPrefix = "chatcmpl-sim"u8.ToArray();
    private static readonly byte[] TextIdPrefix = "cmpl-sim"u8.ToArray();

    private readonly Simulator _sim;
    private readonly SimRequest _request;
    private readonly byte[] _model;
    private readonly SimDirectives _directives;
    private readonly SimEndpoint _endpoint;
    private readonly ulong _seed;
    private readonly long _created;
    private readonly long _start;
    private readonly TimeSpan _interval;

    public GeneratedAnswer(Simulator sim, SimRequest request, byte[] model, SimDirectives directives, SimEndpoint endpoint, long arrived)
    {
        _sim = sim;
        _request = request;
        _model = model;
        _directives = directives;
        _endpoint = endpoint;
        _seed = SimText.Seed(request.Model, request.Prompt);
        _created = sim.Time.GetUtcNow().ToUnixTimeSeconds();
        _start = arrived; // from arrival, not from when parsing finished: the client's wait starts there
        _interval = directives.SlowMs is { } slow ? TimeSpan.FromMilliseconds(slow) : sim.TokenInterval;
        var natural = directives.Tokens ?? SimText.NaturalLength(_seed);
        Count = Math.Min(natural, request.MaxTokens ?? int.MaxValue);
        FinishReason = Count < natural ? "\"length\""u8.ToArray() : "\"stop\""u8.ToArray();
    }

    public int Count { get; }

    private byte[] FinishReason { get; }

    /// <summary>Waits until token <paramref name="index"/> is due: first-token latency plus the pacing interval per token.</summary>
    public ValueTask Pace(int index, CancellationToken cancellationToken)
    {
        var due = _sim.FirstTokenDelay + _interval * index;
        var elapsed = _sim.Time.GetElapsedTime(_start);
        return due <= elapsed ? ValueTask.CompletedTask : new ValueTask(Task.Delay(due - elapsed, _sim.Time, cancellationToken));
    }

    public async Task SendBodyAsync(HttpContext ctx, ReadOnlyMemory<byte> body)
    {
        if (_directives.DropAfter is not { } drop || drop >= body.Length)
        {
            await OpenAiEndpoints.WriteJsonAsync(ctx, 200, body);
            return;
        }

        // Promise the whole body, deliver part of it, then cut the connection.
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "application/json";
        ctx.Response.ContentLength = body.Length;
        await ctx.Response.Body.WriteAsync(body[..drop], ctx.RequestAborted);
        await CutAsync(ctx);
    }

    public PooledBuffer Json()
    {
        var b = new PooledBuffer();
        Head(b, chunk: false);
        if (_endpoint == SimEndpoint.Chat)
        {
            b.Put("{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\""u8);
            Text(b);
            b.Put("\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":"u8);
        }
        else
        {
            b.Put("{\"text\":\""u8);
            Text(b);
            b.Put("\",\"index\":0,\"logprobs\":null,\"finish_reason\":"u8);
        }

        b.Put(FinishReason);
        b.Put("}],"u8);
        Usage(b);
        b.Put("}"u8);
        return b;
    }

    public PooledBuffer Embeddings()
    {
        var b = new PooledBuffer();
        var dimensions = _request.Dimensions ?? _sim.Options.EmbeddingDimensions;
        var vector = new float[dimensions];
        b.Put("{\"object\":\"list\",\"data\":["u8);
        for (var i = 0; i < _request.Inputs.Count; i++)
        {
            SimText.Embedding(_request.Inputs[i].Seed, vector);
            b.Put(i == 0 ? "{\"object\":\"embedding\",\"index\":"u8 : ",{\"object\":\"embedding\",\"index\":"u8);
            b.PutNumber(i);
            b.Put(",\"embedding\":"u8);
            if (_request.Base64)
            {
                var raw = MemoryMarshal.AsBytes(vector.AsSpan());
                var span = b.GetSpan(Base64.GetMaxEncodedToUtf8Length(raw.Length) + 2);
                span[0] = (byte)'"';
                Base64.EncodeToUtf8(raw, span[1..], out _, out var written);
                span[written + 1] = (byte)'"';
                b.Advance(written + 2);
            }
            else
            {
                b.Put("["u8);
                for (var d = 0; d < vector.Length; d++)
                {
                    if (d > 0)
                    {
                        b.Put(","u8);
                    }

                    b.PutNumber(vector[d]);
                }

                b.Put("]"u8);
            }

            b.Put("}"u8);
        }

        b.Put("],\"model\":\""u8);
        b.Put(_model);
        b.Put("\",\"usage\":{\"prompt_tokens\":"u8);
        b.PutNumber(_request.PromptTokens);
        b.Put(",\"total_tokens\":"u8);
        b.PutNumber(_request.PromptTokens);
        b.Put("}}"u8);
        return b;
    }

    public async Task StreamAsync(HttpContext ctx)
    {
        var aborted = ctx.RequestAborted;
        var events = 0;
        await Pace(0, aborted);
        if (_directives.DropAfter == 0)
        {
            ctx.Abort();
            return;
        }

        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "text/event-stream";
        ctx.Response.Headers.CacheControl = "no-cache";
        var pipe = ctx.Response.BodyWriter;
        var paced = _interval > TimeSpan.Zero;

        // Chat streams open with an empty assistant delta, as OpenAI's do.
        if (_endpoint == SimEndpoint.Chat)
        {
            ChunkStart(pipe);
            pipe.Put("{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}]"u8);
            ChunkEnd(pipe);
            if (await AfterEventAsync(ctx, pipe, ++events, paced))
            {
                return;
            }
        }

        for (var i = 0; i < Count; i++)
        {
            await Pace(i, aborted);
            ChunkStart(pipe);
            pipe.Put(_endpoint == SimEndpoint.Chat ? "{\"index\":0,\"delta\":{\"content\":\""u8 : "{\"text\":\""u8);
            pipe.Put(SimText.Token(_seed, i));
            pipe.Put(_endpoint == SimEndpoint.Chat ? "\"},\"logprobs\":null,\"finish_reason\":null}]"u8 : "\",\"index\":0,\"logprobs\":null,\"finish_reason\":null}]"u8);
            ChunkEnd(pipe);
            if (await AfterEventAsync(ctx, pipe, ++events, paced))
            {
                return;
            }
        }

        ChunkStart(pipe);
        pipe.Put(_endpoint == SimEndpoint.Chat ? "{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":"u8 : "{\"text\":\"\",\"index\":0,\"logprobs\":null,\"finish_reason\":"u8);
        pipe.Put(FinishReason);
        pipe.Put("}]"u8);
        ChunkEnd(pipe);
        if (await AfterEventAsync(ctx, pipe, ++events, paced))
        {
            return;
        }

        if (_request.IncludeUsage)
        {
            ChunkStart(pipe);
            pipe.Put("],"u8);
            Usage(pipe);
            pipe.Put("}\n\n"u8);
            if (await AfterEventAsync(ctx, pipe, ++events, paced))
            {
                return;
            }
        }

        pipe.Put("data: [DONE]\n\n"u8);
        if (!await AfterEventAsync(ctx, pipe, ++events, paced: true))
        {
            await pipe.CompleteAsync();
        }
    }

    /// <summary>Flushes when pacing (each event is its own write) or when enough is buffered; cuts the connection for drop-after.</summary>
    private async ValueTask<bool> AfterEventAsync(HttpContext ctx, PipeWriter pipe, int events, bool paced)
    {
        var drop = _directives.DropAfter == events;
        if (drop)
        {
            await CutAsync(ctx);
        }
        else if (paced || pipe.UnflushedBytes >= FlushThreshold)
        {
            await pipe.FlushAsync(ctx.RequestAborted);
        }

        return drop;
    }

    /// <summary>
    /// Delivers what was written, then drops the connection. Kestrel's abort discards output still queued for
    /// the socket, so the cut waits a moment for the transport to send it first.
    /// </summary>
    private static async Task CutAsync(HttpContext ctx)
    {
        await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
        await Task.Delay(TimeSpan.FromMilliseconds(50), ctx.RequestAborted);
        ctx.Abort();
    }

    private void ChunkStart(IBufferWriter<byte> b)
    {
        b.Put("data: "u8);
        Head(b, chunk: true);
    }

    private void ChunkEnd(IBufferWriter<byte> b)
    {
        b.Put(_request.IncludeUsage ? ",\"usage\":null}\n\n"u8 : "}\n\n"u8);
    }

    /// <summary>Everything up to and including <c>"choices":[</c>.</summary>
    private void Head(IBufferWriter<byte> b, bool chunk)
    {
        b.Put("{\"id\":\""u8);
        b.Put(_endpoint == SimEndpoint.Chat ? ChatIdPrefix : TextIdPrefix);
        var hex = b.GetSpan(16);
        _seed.TryFormat(hex, out var written, "x16", null);
        b.Advance(written);
        b.Put(_endpoint == SimEndpoint.Chat
            ? (chunk ? "\",\"object\":\"chat.completion.chunk\",\"created\":"u8 : "\",\"object\":\"chat.completion\",\"created\":"u8)
            : "\",\"object\":\"text_completion\",\"created\":"u8);
        b.PutNumber(_created);
        b.Put(",\"model\":\""u8);
        b.Put(_model);
        b.Put("\",\"system_fingerprint\":\""u8);
        b.Put(Simulator.FingerprintUtf8);
        b.Put("\",\"choices\":["u8);
    }

    private void Text(IBufferWriter<byte> b)
    {
        for (var i = 0; i < Count; i++)
        {
            b.Put(SimText.Token(_seed, i));
        }
    }

    private void Usage(IBufferWriter<byte> b)
    {
        b.Put("\"usage\":{\"prompt_tokens\":"u8);
        b.PutNumber(_request.PromptTokens);
        b.Put(",\"completion_tokens\":"u8);
        b.PutNumber(Count);
        b.Put(",\"total_tokens\":"u8);
        b.PutNumber(_request.PromptTokens + (long)Count);
        b.Put("}"u8);
    }
}
