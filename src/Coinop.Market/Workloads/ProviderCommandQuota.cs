namespace Coinop.Market.Workloads;

/// <summary>
/// The rule that bounds what one provider can put in the workload supervisor's queue (sans-IO: not thread-safe, the
/// caller serialises). Each command a provider's session queues is admitted here and marked done once the supervisor
/// handled it. A provider with <see cref="Limit"/> commands not yet done is flooding: the command that would exceed the
/// bound is refused (its session is closed), and the provider is <em>cut</em>: every command of it still queued is
/// dropped unread, and nothing more of it is admitted until the last of them is done. One provider's flood never
/// refuses another's commands, and the supervisor's queue holds at most <see cref="Limit"/> commands per provider.
/// </summary>
public sealed class ProviderCommandQuota
{
    private readonly Dictionary<string, int> _pending = new(StringComparer.Ordinal);
    private readonly HashSet<string> _cut = new(StringComparer.Ordinal);

    public ProviderCommandQuota(int limit)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        Limit = limit;
    }

    /// <summary>Commands one provider may have queued and not yet handled.</summary>
    public int Limit { get; }

    /// <summary>Commands of <paramref name="provider"/> admitted and not yet done.</summary>
    public int Pending(string provider) => _pending.GetValueOrDefault(provider);

    /// <summary>True while <paramref name="provider"/> is cut for flooding (its queued commands are dropped).</summary>
    public bool IsCut(string provider) => _cut.Contains(provider);

    /// <summary>
    /// Whether one more command of <paramref name="provider"/> may be queued. False when it is cut or already has
    /// <see cref="Limit"/> pending; the provider is cut from then on, until its pending commands are done.
    /// </summary>
    public bool TryAdmit(string provider)
    {
        if (_cut.Contains(provider))
        {
            return false;
        }

        var pending = _pending.GetValueOrDefault(provider);
        if (pending >= Limit)
        {
            _cut.Add(provider);
            return false;
        }

        _pending[provider] = pending + 1;
        return true;
    }

    /// <summary>
    /// The supervisor took an admitted command of <paramref name="provider"/> off the queue: true when it is to be
    /// obeyed, false when the provider was cut after it was queued (drop it). Either way the command is done.
    /// </summary>
    public bool Take(string provider)
    {
        var obey = !_cut.Contains(provider);
        if (!_pending.TryGetValue(provider, out var pending))
        {
            throw new InvalidOperationException($"no command of provider {provider} is pending");
        }

        if (pending > 1)
        {
            _pending[provider] = pending - 1;
        }
        else
        {
            _pending.Remove(provider);
            _cut.Remove(provider); // drained: a reconnected provider starts afresh
        }

        return obey;
    }
}
