using System.Security.Cryptography;
using Coinop.Core.Identity;
using Coinop.Storage.Meta;

namespace Coinop.Market.Hosting;

/// <summary>
/// The market's id (shared by all nodes of one market, kept in the store) and the admin token
/// (kept in <c>&lt;data&gt;/admin.token</c>, mode 0600) that guards operator endpoints.
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
        _adminToken = LoadOrCreateAdminToken(Path.Combine(options.DataDir, "admin.token"));
    }

    private static string LoadOrCreateAdminToken(string path)
    {
        if (File.Exists(path))
        {
            return File.ReadAllText(path).Trim();
        }

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var token = "adm_" + Base32.EncodeLower(RandomNumberGenerator.GetBytes(20));
        var temp = path + ".tmp";
        File.WriteAllText(temp, "");
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite); // before the secret is written
        }

        File.WriteAllText(temp, token);

        File.Move(temp, path, overwrite: false);
        return token;
    }
}
