using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Coinop.Market.Inference;

/// <summary>Runs <see cref="CapacityQueue.Sweep"/> every <see cref="InferenceOptions.QueueSweepInterval"/>.</summary>
public sealed class CapacitySweep(CapacityQueue queue, IOptions<InferenceOptions> options, TimeProvider time) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.QueueSweepInterval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                queue.Sweep();
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }
}
