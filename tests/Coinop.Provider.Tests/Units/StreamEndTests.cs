using System.Text;
using Coinop.Provider.Jobs;

namespace Coinop.Provider.Tests.Units;

/// <summary>
/// The agent looks for the backend's end only after output that ends with OpenAI's <c>data: [DONE]</c>: anything after
/// it (more events, a partial line) means the stream goes on, and the chunk is sent without waiting.
/// </summary>
public class StreamEndTests
{
    [Theory]
    [InlineData("data: [DONE]\n\n", true)]
    [InlineData("data: [DONE]\r\n\r\n", true)]
    [InlineData("data: {\"choices\":[]}\n\ndata: [DONE]\n\n", true)]
    [InlineData("data: [DONE]", true)]
    [InlineData("data: [DONE]\n\ndata: {\"choices\":[]}\n\n", false)]
    [InlineData("data: {\"content\":\"data: [DONE]\"}\n\n", false)]
    [InlineData("data: [DON", false)]
    [InlineData("", false)]
    public void Output_ending_with_done_is_the_end_of_an_openai_stream(string output, bool ends)
    {
        Assert.Equal(ends, JobRun.EndsWithDone(Encoding.UTF8.GetBytes(output)));
    }
}
