namespace Coinop.Market.Workloads;

internal static class StoreTime
{
    /// <summary>Now, in whole milliseconds (the store's resolution), so the machine's times and the stored ones agree.</summary>
    public static DateTimeOffset Now(TimeProvider time) => DateTimeOffset.FromUnixTimeMilliseconds(time.GetUtcNow().ToUnixTimeMilliseconds());
}
