using System.Data.Common;
using System.Security.Cryptography;
using System.Text.Json;
using Coinop.Ecash;
using Coinop.Ecash.Crypto;
using Coinop.Ecash.MintApi;
using Coinop.Storage.Mint;
using Microsoft.Extensions.Options;

namespace Coinop.Market.Mint;

/// <summary>
/// The mint's shared core: validates inputs (signatures, keysets, fees) and outputs, signs, and records spent proofs
/// and issued signatures inside the caller's store transaction. The spent set (a primary key on Y) and the signed
/// set (a primary key on B_) make a double spend or a double issue impossible, across requests and market nodes.
/// Failures raise <see cref="CashuException"/> with the NUT error code.
/// </summary>
public sealed class MintCore(MintKeysets keysets, IMintProofStore proofs, IOptions<MintOptions> mintOptions)
{
    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.General);
    private readonly MintOptions _options = mintOptions.Value;

    // ---- Validation, signing, spending ----

    internal sealed record ValidInput(Proof Proof, byte[] Y, LoadedKeyset Keyset);

    internal sealed record ValidInputs(IReadOnlyList<ValidInput> Proofs, ulong Amount, ulong Fee, string Unit);

    internal sealed record ValidOutput(BlindedMessage Message, CurvePoint Point, LoadedKeyset Keyset);

    internal async Task<ValidInputs> ValidateInputsAsync(IReadOnlyList<Proof> inputs, CancellationToken cancellationToken)
    {
        if (inputs.Count == 0)
        {
            throw BadRequest("no inputs");
        }

        if (inputs.Count > _options.MaxInputs)
        {
            throw new CashuException(CashuErrorCode.MaxInputsExceeded, $"at most {_options.MaxInputs} inputs per request");
        }

        if (inputs.Any(p => p is null || p.Secret is null || p.Id is null || p.C is null))
        {
            throw BadRequest("every input needs amount, id, secret and C");
        }

        if (inputs.Select(p => p.Secret).Distinct(StringComparer.Ordinal).Count() != inputs.Count)
        {
            throw new CashuException(CashuErrorCode.DuplicateInputs, "duplicate inputs provided");
        }

        var known = await KeysetsByIdAsync(inputs.Select(p => p.Id), cancellationToken, forInputs: true);
        foreach (var p in inputs)
        {
            if (p.Secret.Length is 0 or > 1024)
            {
                throw new CashuException(CashuErrorCode.ProofVerificationFailed, "a secret must have 1 to 1024 characters");
            }

            if (IsSpendingCondition(p.Secret))
            {
                throw new CashuException(CashuErrorCode.ProofVerificationFailed, "proofs with spending conditions (NUT-10) are not supported by this mint");
            }
        }

        if (known.Values.Select(k => k.Record.Unit).Distinct().Count() > 1)
        {
            throw new CashuException(CashuErrorCode.MultipleUnits, "inputs of several units");
        }

        // Verification is the expensive part (a scalar multiplication per proof): spread big batches over the cores.
        var valid = new ValidInput[inputs.Count];
        var failed = 0;
        Parallel.For(0, inputs.Count, new ParallelOptions { MaxDegreeOfParallelism = inputs.Count > 8 ? Environment.ProcessorCount : 1 }, i =>
        {
            var p = inputs[i];
            var keyset = known[p.Id.ToLowerInvariant()];
            var y = Bdhke.HashToCurve(p.Secret);
            if (!keyset.Keys.Verify(p, y))
            {
                Interlocked.Increment(ref failed);
                return;
            }

            valid[i] = new ValidInput(p, Secp256k1.Compressed(y), keyset);
        });
        if (failed > 0)
        {
            throw new CashuException(CashuErrorCode.ProofVerificationFailed, "proof verification failed");
        }

        var amount = SumOrThrow(inputs.Select(p => p.Amount));
        var fee = Amounts.InputFee(valid.Select(v => v.Keyset.Record.InputFeePpk));
        if (amount <= fee)
        {
            // Whatever the inputs are for (swap, melt, a payment), nothing would be left after the fee.
            throw new CashuException(CashuErrorCode.TransactionNotBalanced, $"the inputs ({amount} sat) do not cover their input fee ({fee} sat)");
        }

        return new ValidInputs(valid, amount, fee, valid[0].Keyset.Record.Unit);
    }

    internal async Task<List<ValidOutput>> ValidateOutputsAsync(IReadOnlyList<BlindedMessage> outputs, CancellationToken cancellationToken, bool blank = false)
    {
        if (outputs.Count > _options.MaxOutputs)
        {
            throw new CashuException(CashuErrorCode.MaxOutputsExceeded, $"at most {_options.MaxOutputs} outputs per request");
        }

        if (outputs.Any(o => o is null || o.Id is null || o.B is null))
        {
            throw BadRequest("every output needs amount, id and B_");
        }

        if (outputs.Select(o => o.B.ToLowerInvariant()).Distinct().Count() != outputs.Count)
        {
            throw new CashuException(CashuErrorCode.DuplicateOutputs, "duplicate outputs provided");
        }

        var known = await KeysetsByIdAsync(outputs.Select(o => o.Id), cancellationToken);
        var valid = new List<ValidOutput>(outputs.Count);
        foreach (var o in outputs)
        {
            var keyset = known[o.Id.ToLowerInvariant()];
            if (!keyset.Record.Active)
            {
                throw new CashuException(CashuErrorCode.KeysetInactive, $"keyset {o.Id} is inactive and cannot sign new outputs");
            }

            if (!blank && !keyset.Keys.TryGetKey(o.Amount, out _))
            {
                throw new CashuException(CashuErrorCode.AmountOutOfLimitRange, $"output amount {o.Amount} is not a power of two the keyset signs");
            }

            if (!Secp256k1.TryParsePoint(o.B, out var point))
            {
                throw BadRequest($"B_ '{Clip(o.B)}' is not a compressed secp256k1 point");
            }

            valid.Add(new ValidOutput(o, point, keyset));
        }

        if (valid.Select(v => v.Keyset.Record.Unit).Distinct().Count() > 1)
        {
            throw new CashuException(CashuErrorCode.MultipleUnits, "outputs of several units");
        }

        return valid;
    }

    /// <summary>The keysets named by <paramref name="ids"/>; for inputs from the list as last read (see <see cref="MintKeysets.ForInputsAsync"/>).</summary>
    private async Task<Dictionary<string, LoadedKeyset>> KeysetsByIdAsync(IEnumerable<string> ids, CancellationToken cancellationToken, bool forInputs = false)
    {
        var wanted = ids.Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        string? missing = null;
        Dictionary<string, LoadedKeyset>? Pick(IReadOnlyList<LoadedKeyset> list)
        {
            var all = list.ToDictionary(k => k.Record.Id, StringComparer.OrdinalIgnoreCase);
            missing = wanted.FirstOrDefault(id => !all.ContainsKey(id));
            return missing is null ? wanted.ToDictionary(id => id, id => all[id], StringComparer.OrdinalIgnoreCase) : null;
        }

        var found = forInputs ? await keysets.ForInputsAsync(Pick, cancellationToken) : Pick(await keysets.ListAsync(cancellationToken));
        return found ?? throw new CashuException(CashuErrorCode.KeysetUnknown, $"keyset {Clip(missing!)} is not known");
    }

    /// <summary>
    /// Signs outputs; big batches are spread over the cores. A few outputs (change) are signed on the caller's thread:
    /// handing them to other threads costs more than it saves, and it would wait on pool threads while the caller
    /// may be holding the store's write lock (<see cref="CashuMint.IssueAsync(DbConnection, DbTransaction, ulong, CancellationToken)"/>).
    /// </summary>
    internal static BlindSignature[] Sign(IReadOnlyList<ValidOutput> outputs)
    {
        var signatures = new BlindSignature[outputs.Count];
        Parallel.For(0, outputs.Count, new ParallelOptions { MaxDegreeOfParallelism = outputs.Count > 8 ? Environment.ProcessorCount : 1 },
            i => signatures[i] = outputs[i].Keyset.Keys.Sign(outputs[i].Message.Amount, outputs[i].Point));
        return signatures;
    }

    internal async Task SpendAsync(DbConnection c, DbTransaction t, ValidInputs inputs, bool pending, string? meltQuoteId, DateTimeOffset now,
        CancellationToken cancellationToken)
    {
        // No read first: the unique key decides, and only a refused insert needs the states to say why. Inserted in key order, so two transactions spending overlapping sets wait on each other instead of deadlocking.
        var records = inputs.Proofs.Select(p => new SpentProofRecord(p.Y, p.Keyset.Record.Id, p.Proof.Amount, p.Proof.Secret, p.Proof.C, p.Proof.Witness))
            .OrderBy(r => Convert.ToHexStringLower(r.Y), StringComparer.Ordinal).ToList();
        var inserted = await proofs.InsertProofsAsync(c, t, records, pending, meltQuoteId, now, cancellationToken);
        if (inserted != records.Count)
        {
            // Some Y were spent or pending already (the rows this transaction inserted show our own state).
            ThrowIfSpentOrPending(await proofs.StatesAsync(c, t, [.. inputs.Proofs.Select(p => p.Y)], cancellationToken), pending ? ProofState.Pending : ProofState.Spent);
            throw pending
                ? new CashuException(CashuErrorCode.ProofsPending, "proofs are pending")
                : new CashuException(CashuErrorCode.ProofsAlreadySpent, "proofs already spent");
        }
    }

    private static void ThrowIfSpentOrPending(IReadOnlyList<ProofStateRecord> states, string ours)
    {
        if (states.Any(s => s.State == ProofState.Spent && ours != ProofState.Spent))
        {
            throw new CashuException(CashuErrorCode.ProofsAlreadySpent, "proofs already spent");
        }

        if (states.Any(s => s.State == ProofState.Pending && ours != ProofState.Pending))
        {
            throw new CashuException(CashuErrorCode.ProofsPending, "proofs are pending");
        }
    }

    internal async Task RecordSignaturesAsync(DbConnection c, DbTransaction t, IReadOnlyList<ValidOutput> outputs, IReadOnlyList<BlindSignature> signatures,
        DateTimeOffset now, CancellationToken cancellationToken)
    {
        foreach (var id in outputs.Select(o => o.Keyset.Record.Id).Distinct())
        {
            if (!await proofs.IsKeysetActiveAsync(c, t, id, cancellationToken))
            {
                throw new CashuException(CashuErrorCode.KeysetInactive, $"keyset {id} is inactive and cannot sign new outputs");
            }
        }

        var records = outputs.Zip(signatures, (o, s) => new SignatureRecord(Convert.FromHexString(o.Message.B), s.Id, s.Amount, s.C, s.Dleq!.E, s.Dleq.S))
            .OrderBy(r => Convert.ToHexStringLower(r.B), StringComparer.Ordinal).ToList();
        if (await proofs.InsertSignaturesAsync(c, t, records, now, cancellationToken) != records.Count)
        {
            throw new CashuException(CashuErrorCode.OutputsAlreadySigned, "outputs have already been signed before");
        }
    }

    /// <summary>160 random bits, hex: unguessable, and not derivable from the invoice.</summary>
    internal static string NewQuoteId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(20));

    /// <summary>
    /// Whether a quote id a wallet sent may be looked up at all: one with a NUL (PostgreSQL refuses it in text, a 500)
    /// or longer than any id this mint makes is simply no quote of ours.
    /// </summary>
    internal static bool MayBeQuoteId(string quoteId) => quoteId.Length is > 0 and <= 128 && !quoteId.Contains('\0', StringComparison.Ordinal);

    internal static bool IsSpendingCondition(string secret)
    {
        if (!secret.StartsWith('['))
        {
            return false;
        }

        try
        {
            using var doc = JsonDocument.Parse(secret);
            return doc.RootElement.ValueKind == JsonValueKind.Array && doc.RootElement.GetArrayLength() == 2
                && doc.RootElement[0].ValueKind == JsonValueKind.String;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    internal static ulong SumOrThrow(IEnumerable<ulong> amounts) =>
        Amounts.TrySum(amounts, out var sum) ? sum : throw new CashuException(CashuErrorCode.AmountOutOfLimitRange, "the amounts add up to more than 2^64-1");

    internal static void RequireUnit(string? unit)
    {
        if (unit != MintKeysets.Unit)
        {
            throw new CashuException(CashuErrorCode.UnitNotSupported, $"unit '{Clip(unit)}' is not supported; this mint issues sat");
        }
    }

    internal static void Require(bool condition, string detail)
    {
        if (!condition)
        {
            throw BadRequest(detail);
        }
    }

    internal static CashuException BadRequest(string detail) => new(CashuErrorCode.BadRequest, detail);

    internal static CashuException UnknownQuote() => new(CashuErrorCode.BadRequest, "quote not found");

    internal static string Clip(string? s) => s is null ? "null" : Coinop.Core.Text.TextCut.Quote(s, 70);
}
