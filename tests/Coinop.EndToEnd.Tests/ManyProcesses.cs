namespace Coinop.EndToEnd.Tests;

/// <summary>
/// Tests that run a whole market of processes (several nodes, a balancer, providers, simulators) run alone, after the
/// others: on a small machine a dozen processes next to other tests' would make everyone's timeouts a lottery.
/// </summary>
[CollectionDefinition(nameof(ManyProcesses), DisableParallelization = true)]
public sealed class ManyProcesses;
