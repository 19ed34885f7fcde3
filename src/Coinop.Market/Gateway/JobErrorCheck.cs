using Coinop.Core.Protocol;

namespace Coinop.Market.Gateway;

/// <summary>
/// A provider's <c>job_error</c> as the market passes it on: its message reaches the consumer (the backend's refusal, or
/// why the provider failed) and the logs, so it is cut to <see cref="MaxMessage"/> characters, and a code that is not a
/// short snake_case word counts as <c>internal</c>. Megabytes from a provider never reach a consumer's error.
/// </summary>
public static class JobErrorCheck
{
    public const int MaxMessage = 1024;
    private const int MaxCode = 64;

    public static JobError Bounded(JobError error)
    {
        var code = IsCode(error.Code) ? error.Code : JobErrorCodes.Internal;
        var message = Coinop.Core.Text.TextCut.Cut(error.Message ?? "", MaxMessage);
        return ReferenceEquals(code, error.Code) && ReferenceEquals(message, error.Message) ? error : error with { Code = code, Message = message };
    }

    private static bool IsCode(string? code) =>
        code is { Length: > 0 and <= MaxCode } && code.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_');
}
