using System.CommandLine;
using Coinop.Cli.Shared;

namespace Coinop.Cli.Workloads;

public static class WorkloadCommands
{
    public static Command Create()
    {
        var command = new Command("workload", "Rent compute by the second: submit, status, logs, cancel, topup, list");
        command.SetAction(int (_) => throw new CliException("'workload' is not available yet"));
        return command;
    }
}
