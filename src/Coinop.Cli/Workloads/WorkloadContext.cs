using System.CommandLine;

namespace Coinop.Cli.Workloads;

/// <summary>The options every workload command reads.</summary>
internal sealed record WorkloadContext(Option<string> Market, Option<string> Data, Option<string> Wallet, Option<ulong> MaxSat)
{
    /// <summary>A client of the market that carries this data directory's owner key.</summary>
    public WorkloadClient Client(ParseResult parse) =>
        new(parse.GetValue(Market)!, new ConsumerKeys(parse.GetValue(Data)!).LoadOrCreateOwnerKey());
}
