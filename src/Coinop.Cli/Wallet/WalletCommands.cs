using System.CommandLine;
using Coinop.Cli.Shared;

namespace Coinop.Cli.Wallet;

public static class WalletCommands
{
    public static Command Create()
    {
        var command = new Command("wallet", "A Cashu wallet: mint, balance, send, receive, history");
        command.SetAction(int (_) => throw new CliException("'wallet' is not available yet"));
        return command;
    }
}
