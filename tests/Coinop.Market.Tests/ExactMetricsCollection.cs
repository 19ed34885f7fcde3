namespace Coinop.Market.Tests;

/// <summary>
/// Tests that assert exact counts at <c>/metrics</c> run alone: OpenTelemetry's meter provider subscribes to meters by
/// name, so the exporter of each market in this process also sees the same-named meters of every other test's market
/// (open-telemetry/opentelemetry-dotnet#4636). A market is one per process in production; here a token request of a
/// test running alongside would be counted twice.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ExactMetricsCollection
{
    public const string Name = "exact metrics";
}
