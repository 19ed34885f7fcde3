using System.Net.WebSockets;
using System.Text;
using Coinop.Provider.Link;

namespace Coinop.Provider.Tests.Links;

/// <summary>The agent's link transport under a real (managed) WebSocket, over an in-memory stream that records each write and read.</summary>
public class LinkStreamTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Frames_sent_while_held_leave_in_one_write_and_arrive_as_separate_messages()
    {
        var wire = new RecordingStream();
        var link = new LinkStream(wire);
        using var client = WebSocket.CreateFromStream(link, new WebSocketCreationOptions { IsServer = false, KeepAliveInterval = TimeSpan.Zero });

        await client.SendAsync(Encoding.UTF8.GetBytes("alone"), WebSocketMessageType.Text, true, Ct);
        link.Hold();
        await client.SendAsync(new byte[3000], WebSocketMessageType.Binary, true, Ct);
        await client.SendAsync(Encoding.UTF8.GetBytes("{\"type\":\"job_done\"}"), WebSocketMessageType.Text, true, Ct);
        Assert.Single(wire.Writes); // held: nothing written yet
        await link.WriteHeldAsync();
        await client.SendAsync(Encoding.UTF8.GetBytes("after"), WebSocketMessageType.Text, true, Ct);

        Assert.Equal(3, wire.Writes.Count);
        var messages = await ReadAllAsync(wire.Written(), 4);
        Assert.Equal(["Text:alone", "Binary:3000 bytes", "Text:{\"type\":\"job_done\"}", "Text:after"], messages);
    }

    [Fact]
    public async Task A_message_read_in_pieces_by_the_websocket_costs_one_read_of_the_connection()
    {
        var frames = await ServerFramesAsync(Encoding.UTF8.GetBytes(new string('j', 900)), Encoding.UTF8.GetBytes(new string('k', 900)));
        var wire = new RecordingStream(frames);
        using var client = WebSocket.CreateFromStream(new LinkStream(wire), new WebSocketCreationOptions { IsServer = false, KeepAliveInterval = TimeSpan.Zero });

        var buffer = new byte[16 * 1024];
        var first = await client.ReceiveAsync(buffer, Ct);
        Assert.Equal(900, first.Count);
        var second = await client.ReceiveAsync(buffer, Ct);
        Assert.Equal(900, second.Count);
        Assert.True(second.EndOfMessage);
        Assert.Equal(1, wire.Reads); // both frames, headers and payloads, came from one read
    }

    private static async Task<byte[]> ServerFramesAsync(params byte[][] messages)
    {
        var sink = new RecordingStream();
        using var server = WebSocket.CreateFromStream(sink, new WebSocketCreationOptions { IsServer = true, KeepAliveInterval = TimeSpan.Zero });
        foreach (var message in messages)
        {
            await server.SendAsync(message, WebSocketMessageType.Text, true, Ct);
        }

        return sink.Written();
    }

    private static async Task<List<string>> ReadAllAsync(byte[] wire, int count)
    {
        using var server = WebSocket.CreateFromStream(new RecordingStream(wire), new WebSocketCreationOptions { IsServer = true, KeepAliveInterval = TimeSpan.Zero });
        var messages = new List<string>();
        var buffer = new byte[64 * 1024];
        while (true)
        {
            var length = 0;
            ValueWebSocketReceiveResult result;
            do
            {
                result = await server.ReceiveAsync(buffer.AsMemory(length), Ct);
                length += result.Count;
            }
            while (!result.EndOfMessage);

            messages.Add(result.MessageType == WebSocketMessageType.Text
                ? "Text:" + Encoding.UTF8.GetString(buffer, 0, length)
                : $"Binary:{length} bytes");
            if (messages.Count == count)
            {
                return messages;
            }
        }
    }

    /// <summary>Reads from a fixed byte array (then end of stream); records every write as one entry.</summary>
    private sealed class RecordingStream(byte[]? input = null) : Stream
    {
        private readonly MemoryStream _input = new(input ?? []);

        public List<byte[]> Writes { get; } = [];

        public int Reads { get; private set; }

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public byte[] Written() => [.. Writes.SelectMany(w => w)];

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Reads++;
            return ValueTask.FromResult(_input.Read(buffer.Span));
        }

        public override int Read(byte[] buffer, int offset, int count)
        {
            Reads++;
            return _input.Read(buffer, offset, count);
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Writes.Add(buffer.ToArray());
            return ValueTask.CompletedTask;
        }

        public override void Write(byte[] buffer, int offset, int count) => Writes.Add(buffer.AsSpan(offset, count).ToArray());

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
