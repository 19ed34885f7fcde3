namespace Coinop.Market.Workloads;

/// <summary>
/// Which provider links the store last said were current, and for which queued messages that answer holds. A message
/// counts when its link was current at some moment after it arrived; a read that found the link current answers for every
/// message of that link queued before the read began, so a provider's messages queued together cost one read, not one
/// each. A message queued after the read (a report sent after the provider linked again elsewhere, say) is never covered:
/// only a store read, made after it arrived, can admit it. A cache invalidated on takeover would not do: another node's
/// claim changes only the store. Used by the supervisor's loop only (not thread-safe).
/// </summary>
public sealed class ConfirmedLinks
{
    private readonly Dictionary<string, (long Epoch, long UpTo)> _confirmed = new(StringComparer.Ordinal);

    /// <summary>True when a read that began after message <paramref name="sequence"/> was queued found <paramref name="epoch"/> current.</summary>
    public bool Covers(string providerId, long epoch, long sequence) =>
        _confirmed.TryGetValue(providerId, out var c) && c.Epoch == epoch && sequence <= c.UpTo;

    /// <summary>A read that began when <paramref name="upTo"/> messages had been queued found <paramref name="epoch"/> current.</summary>
    public void Confirmed(string providerId, long epoch, long upTo)
    {
        if (!_confirmed.TryGetValue(providerId, out var c) || c.Epoch != epoch || c.UpTo < upTo)
        {
            _confirmed[providerId] = (epoch, upTo);
        }
    }

    /// <summary>The provider's session ended (or its link was found revoked): its next message is read for.</summary>
    public void Forget(string providerId) => _confirmed.Remove(providerId);
}
