using System.CommandLine;
using Coinop.Cli.Shared;

namespace Coinop.Cli.Simulator;

public static class SimBackendCommand
{
    public static Command Create()
    {
        var command = new Command("sim-backend", "Run the built-in inference simulator (OpenAI- and Ollama-compatible)");
        command.SetAction(int (_) => throw new CliException("'sim-backend' is not available yet"));
        return command;
    }
}
