namespace Coinop.Provider.Identity;

/// <summary>
/// The market this provider answers challenges for, pinned on the first successful handshake in
/// <c>&lt;data&gt;/market.id</c>. A market presenting another id is refused before anything is signed, so a
/// hijacked DNS name or a swapped URL cannot collect a signature (or the provider's work) for a market it never
/// enrolled with. Deleting the file is the operator's reset.
/// </summary>
public sealed class MarketPin(string dataDir)
{
    public const string FileName = "market.id";

    public string Path { get; } = System.IO.Path.Combine(dataDir, FileName);

    /// <summary>The pinned market id, or null before the first handshake (or after the operator deleted the file).</summary>
    public string? Pinned => File.Exists(Path) ? File.ReadAllText(Path).Trim() : null;

    /// <summary>The rule: no pin yet accepts any market (trust on first use); a pin accepts only itself.</summary>
    public static bool Allows(string? pinned, string offered) =>
        string.IsNullOrEmpty(pinned) || string.Equals(pinned, offered, StringComparison.Ordinal);

    /// <summary>Pins <paramref name="marketId"/> unless a pin exists already (the first market wins).</summary>
    public void PinIfFirst(string marketId)
    {
        if (!string.IsNullOrEmpty(Pinned))
        {
            return;
        }

        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
        var temp = Path + ".tmp";
        File.WriteAllText(temp, marketId + "\n");
        File.Move(temp, Path, overwrite: true);
    }
}
