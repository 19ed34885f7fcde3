namespace Coinop.TestKit;

/// <summary>
/// Waits for a condition in another process that cannot be awaited directly (an HTTP endpoint coming up, a
/// provider showing online). Polls quickly, fails with the last observation after a generous overall timeout.
/// </summary>
public static class Eventually
{
    public static async Task<T> WaitAsync<T>(Func<Task<T?>> probe, Func<T?, bool> done, string what, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var limit = timeout ?? TimeSpan.FromSeconds(60);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(limit);
        T? last = default;
        Exception? lastError = null;
        var delay = 20;
        while (true)
        {
            try
            {
                last = await probe();
                if (done(last))
                {
                    return last!;
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cts.IsCancellationRequested)
            {
                lastError = ex;
            }

            try
            {
                await Task.Delay(delay, cts.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TimeoutException($"Timed out after {limit} waiting for {what}. Last value: {last}; last error: {lastError?.Message}");
            }

            delay = Math.Min(delay * 2, 250);
        }
    }

    /// <summary>Waits until GET <paramref name="url"/> answers 2xx.</summary>
    public static Task WaitForHttpAsync(string url, TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        WaitAsync<bool?>(async () =>
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            using var response = await http.GetAsync(url, cancellationToken);
            return response.IsSuccessStatusCode;
        }, ok => ok == true, "GET " + url, timeout, cancellationToken);
}
