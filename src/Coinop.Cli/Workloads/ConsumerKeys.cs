using System.Security.Cryptography;
using Coinop.Cli.Shared;
using Coinop.Core.Sealing;
using NSec.Cryptography;

namespace Coinop.Cli.Workloads;

/// <summary>
/// The consumer's secrets in its data directory (mode 0600 files): its X25519 key (<c>consumer.key</c>), which access
/// receipts are sealed to, and each checkpointed workload's key K (<c>workloads/ID.key</c>), which only the consumer and
/// the providers it sealed K to ever hold.
/// </summary>
public sealed class ConsumerKeys(string dataDir)
{
    private string KeyPath => Path.Combine(dataDir, "consumer.key");

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
