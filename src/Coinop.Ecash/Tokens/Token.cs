namespace Coinop.Ecash.Tokens;

/// <summary>
/// A Cashu token: proofs of one mint in one unit, with an optional memo. Keyset ids in <see cref="Proofs"/> are
/// as the token carried them: a V4 token may use short ids, see <see cref="ResolveKeysetIds"/>.
/// </summary>
public sealed record Token(string Mint, string Unit, IReadOnlyList<Proof> Proofs, string? Memo = null)
{
    /// <summary>The total, or null when it does not fit in 64 bits (such a token is refused).</summary>
    public ulong? Amount => Amounts.TrySum(Proofs.Select(p => p.Amount), out var sum) ? sum : null;

    /// <summary>Replaces short keyset ids with the full ids among <paramref name="knownKeysetIds"/>; throws on unknown or ambiguous ids.</summary>
    public Token ResolveKeysetIds(IReadOnlyCollection<string> knownKeysetIds)
    {
        var resolved = new List<Proof>(Proofs.Count);
        foreach (var p in Proofs)
        {
            var full = Keysets.KeysetId.Resolve(p.Id, knownKeysetIds) ?? throw new FormatException($"keyset {p.Id} is not known to mint {Mint}");
            resolved.Add(full == p.Id ? p : p with { Id = full });
        }

        return this with { Proofs = resolved };
    }

    /// <summary>Mint URLs compare without trailing slashes (NUT-00).</summary>
    public static string NormalizeMintUrl(string url) => url.Trim().TrimEnd('/');
}
