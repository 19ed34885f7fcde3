namespace Coinop.Provider.Workloads.Limits;

/// <summary>
/// The uids of running copies when the agent is root: each copy its own (its gid is the same number), so one tenant
/// cannot read another's files or <c>/proc/PID/environ</c>, signal or trace its processes, or share its process count.
/// Uids are handed out round-robin, so one just given back is the last to be reused.
/// </summary>
public sealed class CopyUsers
{
    private readonly int _first;
    private readonly int _count;
    private readonly HashSet<int> _leased = [];
    private readonly Lock _gate = new();
    private int _next;

    public CopyUsers(int first, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(first);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        _first = first;
        _count = count;
    }

    /// <summary>A uid no running copy has, or null when every one of the range is taken.</summary>
    public int? Lease()
    {
        lock (_gate)
        {
            for (var i = 0; i < _count; i++)
            {
                var offset = (_next + i) % _count;
                var uid = _first + offset;
                if (_leased.Add(uid))
                {
                    _next = (offset + 1) % _count;
                    return uid;
                }
            }

            return null;
        }
    }

    public void Return(int uid)
    {
        lock (_gate)
        {
            _leased.Remove(uid);
        }
    }
}
