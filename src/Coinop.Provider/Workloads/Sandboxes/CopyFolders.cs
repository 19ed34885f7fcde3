namespace Coinop.Provider.Workloads.Sandboxes;

/// <summary>
/// The host folders of one copy, made by its sandbox before it starts: <see cref="Work"/> (its /work) and
/// <see cref="State"/> (its /state, what checkpoints archive), owned by the copy's user; and <see cref="AgentOnly"/>, the
/// agent's own folder for the copy (the bridge's socket, never writable by the copy). Disposing removes them all, never
/// following a link the copy left (<see cref="HostTree"/>), and gives back what was reserved for the copy.
/// </summary>
public sealed class CopyFolders : IAsyncDisposable
{
    private readonly Func<ValueTask>? _release;
    private int _disposed;

    /// <param name="root">The folder holding everything of the copy; removed on dispose.</param>
    /// <param name="uid">The copy's user (it owns Work and State); null when copies run as the agent's own user.</param>
    /// <param name="diskBytes">The size cap of Work and State together, when a size-limited mount holds them.</param>
    /// <param name="release">Runs on dispose before the folders are removed (unmounting, freeing the user).</param>
    public CopyFolders(string root, string work, string? state, string agentOnly, int? uid, int? gid, long? diskBytes = null, Func<ValueTask>? release = null)
    {
        Root = root;
        Work = work;
        State = state;
        AgentOnly = agentOnly;
        Uid = uid;
        Gid = gid;
        DiskBytes = diskBytes;
        _release = release;
    }

    public string Root { get; }

    public string Work { get; }

    public string? State { get; }

    public string AgentOnly { get; }

    public int? Uid { get; }

    public int? Gid { get; }

    public long? DiskBytes { get; }

    /// <summary>
    /// Fresh plain folders under <paramref name="root"/> (anything there before is removed first): work and state owned by
    /// <paramref name="uid"/>:<paramref name="gid"/> when given, the agent's folder private to the agent.
    /// </summary>
    public static CopyFolders CreatePlain(string root, bool wantsState, int? uid, int? gid, long? diskBytes = null, Func<ValueTask>? release = null)
    {
        HostTree.Delete(root);
        Directory.CreateDirectory(root);
        var work = Path.Combine(root, "work");
        var state = wantsState ? Path.Combine(root, "state") : null;
        var agentOnly = Path.Combine(root, "agent");
        foreach (var dir in new[] { work, state }.OfType<string>())
        {
            Posix.CreatePrivateDirectory(dir);
            if (uid is { } u)
            {
                HostTree.Chown(dir, u, gid ?? u);
            }
        }

        Posix.CreatePrivateDirectory(agentOnly);
        return new CopyFolders(root, work, state, agentOnly, uid, gid, diskBytes, release);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (_release is not null)
        {
            await _release().ConfigureAwait(false);
        }

        HostTree.Delete(Root);
    }
}
