using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Coinop.ProxyFloor;

/// <summary>
/// Kestrel answering the simulator's bytes with nothing behind it: the cost of one HTTP exchange in ASP.NET Core
/// (routing, reading the body, writing the answer), written as the simulator writes it (a whole answer with its
/// length; a stream in one write, or one flushed event at a time when the prompt asks for pacing).
/// </summary>
internal static class KestrelEndpoint
{
    public static WebApplication Build(string urls, SimAnswers answers)
    {
        var app = Hosts.Builder(urls).Build();
        app.MapGet("/v1/models", ctx => WriteAsync(ctx, "application/json", answers.Models, withLength: true));
        app.MapPost("/v1/chat/completions", ctx => AnswerAsync(ctx, answers));
        return app;
    }

    private static async Task AnswerAsync(HttpContext ctx, SimAnswers answers)
    {
        var arrived = Stopwatch.GetTimestamp();
        var (stream, slowMs) = await ReadRequestAsync(ctx.Request.BodyReader, ctx.RequestAborted);
        if (!stream)
        {
            await WriteAsync(ctx, "application/json", answers.Whole, withLength: true);
        }
        else if (slowMs is not { } slow)
        {
            ctx.Response.Headers.CacheControl = "no-cache";
            await WriteAsync(ctx, "text/event-stream", answers.Stream, withLength: false);
        }
        else
        {
            await PaceAsync(ctx, answers.PacedEvents, TimeSpan.FromMilliseconds(slow), arrived);
        }
    }

    /// <summary>The simulator's pacing: the role event and token 0 at once, token i at i × interval from arrival.</summary>
    private static async Task PaceAsync(HttpContext ctx, byte[][] events, TimeSpan interval, long arrived)
    {
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "text/event-stream";
        ctx.Response.Headers.CacheControl = "no-cache";
        var tokens = events.Length - 3; // role, tokens, finish, [DONE]
        for (var e = 0; e < events.Length; e++)
        {
            var due = interval * Math.Clamp(e - 1, 0, Math.Max(tokens - 1, 0));
            var elapsed = Stopwatch.GetElapsedTime(arrived);
            if (due > elapsed)
            {
                await Task.Delay(due - elapsed, ctx.RequestAborted);
            }

            await ctx.Response.Body.WriteAsync(events[e], ctx.RequestAborted);
            await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
        }
    }

    private static async Task WriteAsync(HttpContext ctx, string contentType, byte[] body, bool withLength)
    {
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = contentType;
        if (withLength)
        {
            ctx.Response.ContentLength = body.Length;
        }

        await ctx.Response.Body.WriteAsync(body, ctx.RequestAborted);
    }

    /// <summary>Reads the whole body (as the simulator does) and looks only for what picks the answer.</summary>
    private static async Task<(bool Stream, int? SlowMs)> ReadRequestAsync(PipeReader reader, CancellationToken cancellationToken)
    {
        while (true)
        {
            var read = await reader.ReadAsync(cancellationToken);
            if (!read.IsCompleted)
            {
                reader.AdvanceTo(read.Buffer.Start, read.Buffer.End);
                continue;
            }

            var body = read.Buffer.IsSingleSegment ? read.Buffer.FirstSpan : read.Buffer.ToArray();
            var stream = body.IndexOf("\"stream\":true"u8) >= 0;
            int? slow = null;
            if (body.IndexOf("[[sim:slow="u8) is var at and >= 0)
            {
                var digits = body[(at + "[[sim:slow="u8.Length)..];
                var n = 0;
                for (var i = 0; i < digits.Length && char.IsAsciiDigit((char)digits[i]); i++)
                {
                    n = (n * 10) + (digits[i] - '0');
                }

                slow = n;
            }

            reader.AdvanceTo(read.Buffer.End);
            return (stream, slow);
        }
    }
}
