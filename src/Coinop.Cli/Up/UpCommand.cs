using System.CommandLine;
using Coinop.Cli.Shared;

namespace Coinop.Cli.Up;

public static class UpCommand
{
    public static Command Create()
    {
        var command = new Command("up", "Run a market node and a provider on this machine (the demo)");
        command.SetAction(int (_) => throw new CliException("'up' is not available yet"));
        return command;
    }
}
