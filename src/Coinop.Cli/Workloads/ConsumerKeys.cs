using System.Security.Cryptography;
using System.Text;
using Coinop.Cli.Shared;
using Coinop.Core.Workloads;
using Coinop.Core.Sealing;
using NSec.Cryptography;

namespace Coinop.Cli.Workloads;

/// <summary>
/// The consumer's secrets in its data directory (mode 0600 files): its owner key (<c>owner.key</c>), which makes the
/// workloads it submits its own (the market answers about them only to a request carrying it), its X25519 key
/// (<c>consumer.key</c>), which access receipts are sealed to, each checkpointed workload's key K
/// (<c>workloads/ID.key</c>), which only the consumer and the providers it sealed K to ever hold, and for each paid
/// workload the token that paid at submit (<c>workloads/ID.payer</c>): the credential the market asks for to cancel it
/// or hand over its refund.
/// </summary>
public sealed class ConsumerKeys(string dataDir)
{
    private string KeyPath => Path.Combine(dataDir, "consumer.key");

    private string OwnerKeyPath => Path.Combine(dataDir, "owner.key");

    /// <summary>The owner key of every workload submitted from this data directory, created on first use.</summary>
    public string LoadOrCreateOwnerKey()
    {
        if (!File.Exists(OwnerKeyPath))
        {
            WriteSecret(OwnerKeyPath, Encoding.UTF8.GetBytes(WorkloadOwnerKey.New()));
        }

        try
        {
            var key = Encoding.UTF8.GetString(Convert.FromBase64String(File.ReadAllText(OwnerKeyPath).Trim()));
            return WorkloadOwnerKey.IsWellFormed(key) ? key : throw new FormatException();
        }
        catch (FormatException)
        {
            throw new CliException($"{OwnerKeyPath} is not an owner key");
        }
    }

    /// <summary>The consumer's X25519 key, created on first use.</summary>
    public Key LoadOrCreate()
    {
        if (File.Exists(KeyPath))
        {
            return Load();
        }

        using var key = SealedBox.CreateKey();
        WriteSecret(KeyPath, key.Export(KeyBlobFormat.RawPrivateKey));
        return Load();
    }

    /// <summary>The consumer's X25519 key; a <see cref="CliException"/> when there is none yet.</summary>
    public Key Load()
    {
        if (!File.Exists(KeyPath))
        {
            throw new CliException($"no consumer key at {KeyPath}: receipts are sealed to the key of the --data directory the workload was submitted with");
        }

        try
        {
            return SealedBox.ImportPrivateKey(Convert.FromBase64String(File.ReadAllText(KeyPath).Trim()));
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException)
        {
            throw new CliException($"{KeyPath} is not a consumer key");
        }
    }

    public void SaveCheckpointKey(string workloadId, byte[] key) => WriteSecret(Path.Combine(dataDir, "workloads", workloadId + ".key"), key);

    public void SavePayer(string workloadId, string credential) => WriteSecret(PayerPath(workloadId), Encoding.UTF8.GetBytes(credential));

    /// <summary>The credential that paid for the workload, if it was submitted (and paid) from this data directory.</summary>
    public string? LoadPayer(string workloadId)
    {
        var path = PayerPath(workloadId);
        try
        {
            return File.Exists(path) ? Encoding.UTF8.GetString(Convert.FromBase64String(File.ReadAllText(path).Trim())) : null;
        }
        catch (FormatException)
        {
            throw new CliException($"{path} is not a payment credential");
        }
    }

    private string PayerPath(string workloadId) =>
        WorkloadIds.TryParse(workloadId, out _)
            ? Path.Combine(dataDir, "workloads", workloadId + ".payer")
            : throw new CliException($"'{workloadId}' is not a workload id");

    /// <summary>Writes a secret as base64 in a file that is 0600 before any secret byte lands in it, moved into place whole.</summary>
    private static void WriteSecret(string path, byte[] secret)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var temp = path + ".tmp";
        File.Delete(temp);
        var create = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            create.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var file = new FileStream(temp, create))
        using (var writer = new StreamWriter(file))
        {
            writer.Write(Convert.ToBase64String(secret));
        }

        CryptographicOperations.ZeroMemory(secret);
        File.Move(temp, path, overwrite: true);
    }
}
