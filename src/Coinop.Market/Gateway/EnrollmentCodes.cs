using System.Security.Cryptography;
using Coinop.Core.Identity;
using Coinop.Storage.Providers;

namespace Coinop.Market.Gateway;

/// <summary>New enrollment codes (<c>COINOP-</c> and 16 base32 characters: 80 random bits), for the CLI and the operator's page.</summary>
public static class EnrollmentCodes
{
    public const int MaxUses = 1_000_000;
    public static readonly TimeSpan DefaultValidity = TimeSpan.FromHours(24);
    public static readonly TimeSpan MaxValidity = TimeSpan.FromDays(3650);

    public static EnrollmentCodeRecord New(int uses, TimeSpan validFor, DateTimeOffset now)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(uses, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(uses, MaxUses);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(validFor, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(validFor, MaxValidity);
        var code = "COINOP-" + Base32.EncodeLower(RandomNumberGenerator.GetBytes(10)).ToUpperInvariant();
        return new EnrollmentCodeRecord(code, uses, 0, now, now + validFor);
    }
}
