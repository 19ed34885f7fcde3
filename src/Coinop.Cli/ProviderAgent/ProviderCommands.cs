using System.CommandLine;
using Coinop.Cli.Shared;

namespace Coinop.Cli.ProviderAgent;

public static class ProviderCommands
{
    public static Command Create()
    {
        var command = new Command("provider", "Run a provider agent next to local inference servers");
        command.SetAction(int (_) => throw new CliException("'provider' is not available yet"));
        return command;
    }
}
