using System.Globalization;

namespace Coinop.Ecash.Lightning;

/// <summary>The human-readable part of a BOLT 11 invoice: <c>ln</c>, the network's currency prefix, and the amount with its multiplier.</summary>
internal static class Bolt11Prefix
{
    public static bool TryParse(string hrp, out Bolt11Network network, out ulong? amountMsat, out string? error)
    {
        network = default;
        amountMsat = null;
        if (!hrp.StartsWith("ln", StringComparison.Ordinal))
        {
            error = "not a Lightning invoice (the prefix is not 'ln')";
            return false;
        }

        // Longest prefixes first: "bcrt" before "bc", "tbs" before "tb".
        (string Prefix, Bolt11Network Network)[] networks =
            [("bcrt", Bolt11Network.Regtest), ("bc", Bolt11Network.Mainnet), ("tbs", Bolt11Network.Signet), ("tb", Bolt11Network.Testnet)];
        var rest = hrp[2..];
        var match = networks.FirstOrDefault(n => rest.StartsWith(n.Prefix, StringComparison.Ordinal)
            && (rest.Length == n.Prefix.Length || char.IsAsciiDigit(rest[n.Prefix.Length])));
        if (match.Prefix is null)
        {
            error = $"unknown currency prefix 'ln{rest}'";
            return false;
        }

        network = match.Network;
        var amount = rest[match.Prefix.Length..];
        error = null;
        if (amount.Length == 0)
        {
            return true;
        }

        var multiplier = char.IsAsciiLetter(amount[^1]) ? amount[^1] : ' ';
        var digits = multiplier == ' ' ? amount : amount[..^1];
        if (digits.Length is 0 or > 30 || !digits.All(char.IsAsciiDigit) || !UInt128.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var value))
        {
            error = $"the amount '{amount}' is not a number";
            return false;
        }

        // msat per unit of each multiplier (1 BTC = 10^11 msat); pico amounts must be whole msat (a multiple of 10p).
        if (value > ulong.MaxValue * (UInt128)10)
        {
            error = "the amount is out of range";
            return false;
        }

        UInt128? msat = multiplier switch
        {
            ' ' => value * 100_000_000_000,
            'm' => value * 100_000_000,
            'u' => value * 100_000,
            'n' => value * 100,
            'p' when value % 10 == 0 => value / 10,
            'p' => null,
            _ => null,
        };
        if (msat is null)
        {
            error = multiplier == 'p' ? "the amount is not a whole number of millisatoshi" : $"unknown amount multiplier '{multiplier}'";
            return false;
        }

        if (msat > ulong.MaxValue || msat == 0)
        {
            error = "the amount is out of range";
            return false;
        }

        amountMsat = (ulong)msat.Value;
        return true;
    }
}

/// <summary>The Bitcoin networks of BOLT 11 currency prefixes.</summary>
public enum Bolt11Network
{
    /// <summary><c>lnbc</c></summary>
    Mainnet,

    /// <summary><c>lntb</c></summary>
    Testnet,

    /// <summary><c>lntbs</c></summary>
    Signet,

    /// <summary><c>lnbcrt</c></summary>
    Regtest,
}
