namespace Coinop.Runtime.Links;

/// <summary>
/// The transport under a link's WebSocket, when it can gather frames: between <see cref="Hold"/> and
/// <see cref="WriteHeldAsync"/> every write is kept in memory, then all of it leaves in one write. Frames sent back to
/// back (an answer's last chunk and its <c>job_done</c>, or frames queued behind a send) then cost the link one send
/// syscall and wake the peer's reader once, not once per frame.
/// </summary>
public interface IWriteHolding
{
    /// <summary>Keeps the writes that follow in memory.</summary>
    void Hold();

    /// <summary>Writes everything held since <see cref="Hold"/> in one write and stops holding.</summary>
    ValueTask WriteHeldAsync();
}
