using Microsoft.Extensions.Logging;

namespace Coinop.Market.Web;

/// <summary>Source-generated log messages of the web pages and the operator's actions.</summary>
internal static partial class WebLog
{
    [LoggerMessage(EventId = 7001, Level = LogLevel.Warning, Message = "Building the market overview failed")]
    public static partial void PulseFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 7002, Level = LogLevel.Information, Message = "Operator parked provider {ProviderId} until {Until}")]
    public static partial void ProviderParked(ILogger logger, string providerId, DateTimeOffset until);

    [LoggerMessage(EventId = 7003, Level = LogLevel.Warning, Message = "Operator revoked provider {ProviderId}: {Reason}")]
    public static partial void ProviderRevoked(ILogger logger, string providerId, string reason);

    [LoggerMessage(EventId = 7004, Level = LogLevel.Information, Message = "Operator issued an enrollment code for {Uses} uses, valid until {ExpiresAt}")]
    public static partial void EnrollmentCodeIssued(ILogger logger, int uses, DateTimeOffset expiresAt);

    [LoggerMessage(EventId = 7005, Level = LogLevel.Warning, Message = "Refused an operator sign-in from {Remote}: wrong token")]
    public static partial void SignInRefused(ILogger logger, string remote);
}
