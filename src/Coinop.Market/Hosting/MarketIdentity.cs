using System.Security.Cryptography;
using Coinop.Core.Identity;
using Coinop.Storage.Meta;

namespace Coinop.Market.Hosting;

/// <summary>
/// The market's id and the admin token that guards operator endpoints, both shared by all nodes of one market through the
/// store (so an operator's token works on whichever node a balancer picks). The token is also kept in
/// <c>&lt;data&gt;/admin.token</c> (mode 0600) for the operator to read: the first node's token wins and the others write it there.
/// </summary>
public sealed class MarketIdentity(IMarketMetaStore meta, MarketOptions options)
{
    private string? _marketId;
    private string? _adminToken;

    public string MarketId => _marketId ?? throw new InvalidOperationException("The market identity is not loaded yet.");

    public string AdminToken => _adminToken ?? throw new InvalidOperationException("The market identity is not loaded yet.");

    public async Task LoadAsync(CancellationToken cancellationToken)
    {
        _marketId = await meta.GetOrAddAsync("market_id", "m" + Base32.EncodeLower(RandomNumberGenerator.GetBytes(10)), cancellationToken);
        var path = Path.Combine(options.DataDir, "admin.token");
        var local = File.Exists(path) ? File.ReadAllText(path).Trim() : null;
        _adminToken = await meta.GetOrAddAsync("admin_token", local ?? "adm_" + Base32.EncodeLower(RandomNumberGenerator.GetBytes(20)), cancellationToken);
        if (local != _adminToken)
        {
            WriteAdminToken(path, _adminToken);
        }
    }

    private static void WriteAdminToken(string path, string token)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var temp = path + ".tmp";
        File.WriteAllText(temp, "");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite); // before the secret is written
        }

        File.WriteAllText(temp, token);

        File.Move(temp, path, overwrite: true);
    }
}
