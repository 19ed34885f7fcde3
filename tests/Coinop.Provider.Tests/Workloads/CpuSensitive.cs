namespace Coinop.Provider.Tests.Workloads;

/// <summary>
/// Tests that measure a CPU share run alone: on a two-core machine, other tests running beside them would take CPU
/// from the hog and push its share below what the limit allows, which says nothing about the limit.
/// </summary>
[CollectionDefinition(nameof(CpuSensitive), DisableParallelization = true)]
public sealed class CpuSensitive;
