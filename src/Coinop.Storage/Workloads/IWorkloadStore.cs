using System.Data.Common;
using Coinop.Core.Workloads;

namespace Coinop.Storage.Workloads;

/// <summary>
/// What the consumer agreed to beyond the spec: the provider it pinned, the X25519 key access receipts are sealed
/// to, the per-second rate it pays (its quote: the copy's and the standbys' rates at submit) and how much it paid so
/// far (msat; 0 on a free market).
/// </summary>
public sealed record WorkloadTerms(string? PinnedProvider, string? SealTo, decimal RateMsatPerSecond, long PaidMsat);

/// <summary>
/// A workload as stored: the state machine's record, the row version it was read at, its terms, and the rate (msat
/// per second) of each provider that served it, fixed when that provider was placed.
/// </summary>
public sealed record StoredWorkload(Workload Workload, long Version, WorkloadTerms Terms, IReadOnlyDictionary<string, decimal> Rates);

/// <summary>More writes of the caller (say, moving the payment for a lease) inside the transaction that saves a workload.</summary>
public delegate Task WorkloadSaveHook(DbConnection c, DbTransaction t, Workload saved, CancellationToken cancellationToken);

/// <summary>
/// Workloads, their append-only history, their standbys and the checkpoint keys consumers sealed to providers. A
/// save is a compare-and-set on the row version and never touches a terminal row, so of two writers only one lands
/// and a finished workload stays finished.
/// </summary>
public interface IWorkloadStore
{
    /// <summary>
    /// Inserts a new workload with its history, standbys, sealed keys and providers' rates, running <paramref name="hook"/>
    /// in the same transaction; false when the id exists.
    /// </summary>
    Task<bool> InsertAsync(Workload workload, WorkloadTerms terms, IReadOnlyDictionary<string, string> sealedKeys, IReadOnlyDictionary<string, decimal> rates,
        CancellationToken cancellationToken, WorkloadSaveHook? hook = null);

    /// <summary>
    /// Writes <paramref name="next"/> if the row is still at <paramref name="before"/>'s version and not terminal; appends only
    /// new history and rates of providers not rated before. <paramref name="hook"/> runs in the same transaction.
    /// </summary>
    Task<StoredWorkload?> SaveAsync(StoredWorkload before, Workload next, WorkloadTerms terms, IReadOnlyDictionary<string, decimal> rates,
        CancellationToken cancellationToken, WorkloadSaveHook? hook = null);

    Task<StoredWorkload?> FindAsync(string id, CancellationToken cancellationToken);

    /// <summary>Newest first; only those not finished when <paramref name="openOnly"/>.</summary>
    Task<IReadOnlyList<StoredWorkload>> ListAsync(bool openOnly, int limit, CancellationToken cancellationToken);

    /// <summary>The workloads owned by <paramref name="ownerHash"/> (see <c>WorkloadOwnerKey</c>), newest first.</summary>
    Task<IReadOnlyList<StoredWorkload>> ListOwnedAsync(string ownerHash, int limit, CancellationToken cancellationToken);

    /// <summary>The hash of the owner key the workload was submitted with; null for a workload that predates owner keys.</summary>
    Task<string?> OwnerHashAsync(string workloadId, CancellationToken cancellationToken);

    /// <summary>The checkpoint key the consumer sealed to <paramref name="providerId"/> for this workload (base64), if any.</summary>
    Task<string?> SealedKeyAsync(string workloadId, string providerId, CancellationToken cancellationToken);

    /// <summary>The providers holding a sealed checkpoint key of this workload.</summary>
    Task<IReadOnlyList<string>> KeyHoldersAsync(string workloadId, CancellationToken cancellationToken);
}
