using System.Collections.Concurrent;
using System.Security.Cryptography;
using Coinop.Ecash.Keysets;
using Coinop.Storage.Mint;

namespace Coinop.Market.Mint;

/// <summary>A stored keyset with its derived keys.</summary>
public sealed record LoadedKeyset(MintKeysetRecord Record, MintKeyset Keys);

/// <summary>
/// The mint's keysets. The master seed and the keyset list live in the store (shared by every market node);
/// private keys are derived from the seed on first use and cached per keyset id (a keyset never changes). The
/// list itself is read from the store on each call, so a rotation by any node or by the CLI is seen at once; only
/// checking a payment's inputs uses the list as last read (<see cref="ForInputsAsync"/>).
/// </summary>
public sealed class MintKeysets(IMintKeysetStore store, TimeProvider time)
{
    /// <summary>The only unit this mint issues.</summary>
    public const string Unit = "sat";

    private readonly ConcurrentDictionary<string, MintKeyset> _derived = new(StringComparer.OrdinalIgnoreCase);
    private byte[]? _seed;
    private IReadOnlyList<LoadedKeyset>? _seen;

    /// <summary>Loads (or creates) the seed and makes sure a sat keyset is active.</summary>
    public async Task InitializeAsync(ulong initialInputFeePpk, CancellationToken cancellationToken)
    {
        _seed = await store.GetOrCreateSeedAsync(RandomNumberGenerator.GetBytes(32), cancellationToken);
        await store.EnsureActiveAsync(Unit, index => NewRecord(_seed, index, initialInputFeePpk, time), cancellationToken);
    }

    public async Task<IReadOnlyList<LoadedKeyset>> ListAsync(CancellationToken cancellationToken)
    {
        IReadOnlyList<LoadedKeyset> list = [.. (await store.ListAsync(cancellationToken)).Select(Load)];
        Volatile.Write(ref _seen, list);
        return list;
    }

    /// <summary>
    /// Applies <paramref name="use"/> to the keysets as last read, for resolving and checking a payment's inputs, where
    /// only what never changes about a keyset matters (id, unit, input fee, keys; not whether it is still active). When
    /// it finds nothing there (null: a keyset rotated in by another node or by the CLI), it is applied once more to the
    /// list read from the store, so a new keyset is never refused; the payment path saves a store read otherwise.
    /// </summary>
    public async Task<T?> ForInputsAsync<T>(Func<IReadOnlyList<LoadedKeyset>, T?> use, CancellationToken cancellationToken)
        where T : class =>
        Volatile.Read(ref _seen) is { } seen && use(seen) is { } found ? found : use(await ListAsync(cancellationToken));

    /// <summary>A keyset by full id (active or not); null when the mint never had it.</summary>
    public async Task<LoadedKeyset?> FindAsync(string id, CancellationToken cancellationToken) =>
        await store.FindAsync(id.ToLowerInvariant(), cancellationToken) is { } record ? Load(record) : null;

    /// <summary>The keyset that signs new outputs.</summary>
    public async Task<LoadedKeyset> ActiveAsync(CancellationToken cancellationToken) =>
        (await ListAsync(cancellationToken)).LastOrDefault(k => k.Record.Active && k.Record.Unit == Unit)
        ?? throw new InvalidOperationException("the mint has no active keyset");

    /// <summary>
    /// Deactivates the active sat keyset and activates a new one with <paramref name="inputFeePpk"/>. Used by
    /// <c>coinop market rotate-keyset</c> against the store directly; running nodes see it on their next request.
    /// </summary>
    public static async Task<MintKeysetRecord> RotateAsync(IMintKeysetStore store, ulong inputFeePpk, TimeProvider time, CancellationToken cancellationToken)
    {
        var seed = await store.GetOrCreateSeedAsync(RandomNumberGenerator.GetBytes(32), cancellationToken);
        return await store.RotateAsync(Unit, index => NewRecord(seed, index, inputFeePpk, time), cancellationToken);
    }

    private LoadedKeyset Load(MintKeysetRecord record)
    {
        var keys = _derived.GetOrAdd(record.Id, _ =>
        {
            var seed = _seed ?? throw new InvalidOperationException("the mint keysets are not initialized");
            var derived = MintKeyset.Derive(seed, record.DerivationIndex, record.Unit, record.InputFeePpk, record.MaxOrder);
            return derived.Id == record.Id
                ? derived
                : throw new InvalidOperationException($"keyset {record.Id} does not derive from the stored seed (was the seed replaced?)");
        });
        return new LoadedKeyset(record, keys);
    }

    private static MintKeysetRecord NewRecord(byte[] seed, long index, ulong inputFeePpk, TimeProvider time)
    {
        var keys = MintKeyset.Derive(seed, index, Unit, inputFeePpk);
        return new MintKeysetRecord(keys.Id, Unit, index, inputFeePpk, 64, true, time.GetUtcNow());
    }
}
