using Coinop.Provider.Jobs;

namespace Coinop.Provider.Tests.Units;

public class SendWindowTests
{
    [Fact]
    public async Task Waits_while_the_window_is_used_up_and_resumes_on_a_grant()
    {
        var window = new SendWindow(10);
        Assert.Equal(10, await window.WaitAsync(64, TestContext.Current.CancellationToken));
        window.Consume(10);

        var waiting = window.WaitAsync(64, TestContext.Current.CancellationToken).AsTask();
        Assert.False(waiting.IsCompleted);
        window.Grant(5);
        Assert.Equal(5, await waiting);
    }

    [Fact]
    public async Task Hands_out_at_most_the_requested_size()
    {
        var window = new SendWindow(1_000_000);
        Assert.Equal(64, await window.WaitAsync(64, TestContext.Current.CancellationToken));
        window.Grant(0);
        window.Grant(-5);
        Assert.Equal(1_000_000, window.Available);
    }
}
