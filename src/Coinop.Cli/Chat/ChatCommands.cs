using System.CommandLine;
using Coinop.Cli.Shared;

namespace Coinop.Cli.Chat;

public static class ChatCommands
{
    public static Command CreateChat()
    {
        var command = new Command("chat", "Send a prompt to a model through the market");
        command.SetAction(int (_) => throw new CliException("'chat' is not available yet"));
        return command;
    }

    public static Command CreateProviders()
    {
        var command = new Command("providers", "List the market's providers");
        command.SetAction(int (_) => throw new CliException("'providers' is not available yet"));
        return command;
    }
}
