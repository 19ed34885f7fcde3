using System.Security.Cryptography;
using Coinop.Core.Identity;
using Coinop.Market.Hosting;

namespace Coinop.Market.Payments;

/// <summary>
/// This market node's id, kept in <c>&lt;data&gt;/node.id</c> so it survives restarts. Holds and foreign redemptions
/// carry the id of the node serving their request: at start a node knows the ones with its id belonged to requests
/// that died with its previous run, and resolves them, without touching other nodes' requests in a shared store.
/// </summary>
public sealed class NodeIdentity
{
    public NodeIdentity(MarketOptions options)
    {
        var path = Path.Combine(options.DataDir, "node.id");
        if (File.Exists(path))
        {
            NodeId = File.ReadAllText(path).Trim();
            return;
        }

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        NodeId = "n" + Base32.EncodeLower(RandomNumberGenerator.GetBytes(10));
        var temp = path + ".tmp";
        File.WriteAllText(temp, NodeId);
        File.Move(temp, path, overwrite: false);
    }

    public string NodeId { get; }
}
