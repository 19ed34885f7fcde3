namespace Coinop.Provider.Workloads.Checkpoints;

/// <summary>
/// A written checkpoint waiting to be uploaded: an unlinked-on-close temp file in the agent's own folder (never the
/// copy's), so an archive is never held in memory. Dispose it once sent.
/// </summary>
public sealed class CheckpointArchive : IAsyncDisposable
{
    private readonly FileStream _file;

    private CheckpointArchive(FileStream file, CheckpointSummary summary)
    {
        _file = file;
        Summary = summary;
    }

    public CheckpointSummary Summary { get; }

    public long Length => Summary.Length;

    /// <summary>The archive's bytes, from the start.</summary>
    public Stream Content => _file;

    /// <summary>Archives <paramref name="stateDir"/> into a temp file in <paramref name="tempDir"/>, at most <paramref name="maxBytes"/> long.</summary>
    public static async Task<CheckpointArchive> CreateAsync(string stateDir, byte[] key, string tempDir, long maxBytes, CancellationToken cancellationToken)
    {
        Sandboxes.Posix.CreatePrivateDirectory(tempDir);
        var path = Path.Combine(tempDir, "checkpoint-" + Guid.NewGuid().ToString("N"));
        var file = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.ReadWrite,
            Share = FileShare.None,
            Options = FileOptions.DeleteOnClose | FileOptions.Asynchronous,
        });
        try
        {
            var summary = await Checkpoint.WriteAsync(stateDir, key, file, maxBytes, cancellationToken).ConfigureAwait(false);
            await file.FlushAsync(cancellationToken).ConfigureAwait(false);
            file.Position = 0;
            return new CheckpointArchive(file, summary);
        }
        catch
        {
            await file.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public ValueTask DisposeAsync() => _file.DisposeAsync();
}
