using System.Net;
using System.Net.Sockets;
using System.Text;
using Coinop.Core.Protocol;
using Coinop.Provider.Jobs;

namespace Coinop.Provider.Tests.Units;

public class BackendFailureTests
{
    [Theory]
    [InlineData(401, JobErrorCodes.AuthRejectedByBackend)]
    [InlineData(403, JobErrorCodes.AuthRejectedByBackend)]
    [InlineData(404, JobErrorCodes.ModelNotLoaded)]
    [InlineData(429, JobErrorCodes.OutOfCapacity)]
    [InlineData(503, JobErrorCodes.OutOfCapacity)]
    [InlineData(400, JobErrorCodes.InvalidRequest)]
    [InlineData(422, JobErrorCodes.InvalidRequest)]
    [InlineData(504, JobErrorCodes.BackendTimeout)]
    [InlineData(500, JobErrorCodes.Internal)]
    [InlineData(418, JobErrorCodes.Internal)]
    public void Maps_http_statuses_to_protocol_codes(int status, string code)
    {
        Assert.Equal(code, BackendFailure.FromStatus((HttpStatusCode)status, []).Code);
    }

    [Theory]
    [InlineData("{\"error\":{\"message\":\"max_tokens is too large\",\"type\":\"invalid_request_error\"}}", "max_tokens is too large")]
    [InlineData("{\"error\":\"model 'x' not found\"}", "model 'x' not found")]
    [InlineData("{\"detail\":\"bad field\"}", "bad field")]
    [InlineData("plain text failure", "plain text failure")]
    public void Keeps_the_backends_own_message(string body, string message)
    {
        var (_, text) = BackendFailure.FromStatus(HttpStatusCode.BadRequest, Encoding.UTF8.GetBytes(body));
        Assert.Equal("backend answered HTTP 400: " + message, text);
    }

    [Fact]
    public void Maps_transport_failures()
    {
        Assert.Equal(JobErrorCodes.BackendUnreachable, BackendFailure.CodeFor(new HttpRequestException(HttpRequestError.ConnectionError, "refused", new SocketException())));
        Assert.Equal(JobErrorCodes.BackendUnreachable, BackendFailure.CodeFor(new HttpIOException(HttpRequestError.ResponseEnded)));
        Assert.Equal(JobErrorCodes.BackendUnreachable, BackendFailure.CodeFor(new OperationCanceledException("connect", new TimeoutException())));
        Assert.Equal(JobErrorCodes.Internal, BackendFailure.CodeFor(new InvalidOperationException()));
    }
}
