using System.Security.Cryptography;
using System.Text;

namespace Coinop.Core.Workloads;

/// <summary>What a request's owner key makes of it for one workload.</summary>
public enum OwnerCheck
{
    /// <summary>The key is the one the workload was submitted with.</summary>
    Owner,

    /// <summary>The workload has no owner (submitted before owner keys existed): anyone may act on it, as then.</summary>
    Unowned,

    /// <summary>The request carries no owner key (or a malformed one).</summary>
    NoKey,

    /// <summary>The key is someone else's.</summary>
    NotOwner,
}

/// <summary>
/// A workload belongs to whoever submitted it: the submitter's owner key (a secret of at least 128 bits, sent in
/// <see cref="Header"/>; the market makes one at submit when none is sent and returns it once) is the capability to read
/// its details, output and access receipt, to cancel it and to top it up. The market keeps only its SHA-256, so a copy
/// of the store lets nobody act on a workload. One key may own many workloads (the CLI keeps one per data directory),
/// which is what lists "my workloads".
/// </summary>
public static class WorkloadOwnerKey
{
    public const string Header = "X-Coinop-Owner-Key";

    /// <summary>Marks keys the market or the CLI made, so a key pasted in a log or a chat is recognisable as a secret.</summary>
    public const string Prefix = "owner_";

    /// <summary>22 base64url characters hold 128 bits: a shorter key is guessable, a much longer one is abuse.</summary>
    private const int MinLength = 22;
    private const int MaxLength = 256;

    /// <summary>A fresh key: the prefix and 32 random bytes in base64url.</summary>
    public static string New() =>
        Prefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>Printable, header-safe and long enough; a consumer may choose its own key within these bounds.</summary>
    public static bool IsWellFormed(string? key) =>
        key is { Length: >= MinLength and <= MaxLength } && key.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '~');

    /// <summary>What the market stores: the key's SHA-256 in hex.</summary>
    public static string Hash(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    /// <summary>The rule: a stored owner hash admits only the key it was made from; a workload without one admits anyone.</summary>
    public static OwnerCheck Check(string? ownerHash, string? presentedKey)
    {
        if (ownerHash is null)
        {
            return OwnerCheck.Unowned;
        }

        if (!IsWellFormed(presentedKey))
        {
            return OwnerCheck.NoKey;
        }

        // Fixed-time comparison: the hash of a guess should not leak how close it came.
        return CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(Hash(presentedKey!)), Encoding.ASCII.GetBytes(ownerHash))
            ? OwnerCheck.Owner
            : OwnerCheck.NotOwner;
    }
}
