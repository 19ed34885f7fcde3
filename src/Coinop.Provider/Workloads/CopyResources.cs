namespace Coinop.Provider.Workloads;

/// <summary>What the shell holds for one copy besides the rule's view of it: its checkpoint loop and the signal a drain waits on.</summary>
internal sealed class CopyResources(long epoch)
{
    public long Epoch { get; } = epoch;

    public CancellationTokenSource CheckpointLoop { get; } = new();

    /// <summary>Completes once the copy's end was put in the outbox (a drain waits for it).</summary>
    public TaskCompletionSource Reported { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}
