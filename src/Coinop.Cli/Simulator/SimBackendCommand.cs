using System.CommandLine;
using Coinop.Cli.Shared;
using Coinop.SimBackend.Generation;
using Coinop.SimBackend.Hosting;
using Microsoft.Extensions.Hosting;

namespace Coinop.Cli.Simulator;

/// <summary><c>coinop sim-backend</c>: the deterministic inference simulator for demos, tests and benchmarks.</summary>
public static class SimBackendCommand
{
    public static Command Create()
    {
        var urls = new Option<string>("--urls") { Description = "Addresses to listen on (';'-separated)", DefaultValueFactory = _ => "http://127.0.0.1:11435" };
        var model = new Option<string[]>("--model") { Description = "A model name to serve (repeatable; default sim-small and sim-large)" };
        var visionModel = new Option<string[]>("--vision-model") { Description = "A model name to serve that takes images (repeatable)" };
        var latency = new Option<int>("--latency") { Description = "Time to first token in milliseconds", DefaultValueFactory = _ => 0 };
        var tokensPerSecond = new Option<double>("--tokens-per-second") { Description = "Output pacing; 0 answers as fast as possible", DefaultValueFactory = _ => 0 };
        var contextWindow = new Option<int>("--context-window") { Description = "Context window the models report", DefaultValueFactory = _ => 8192 };
        var command = new Command(
            "sim-backend",
            "Run the built-in inference simulator: deterministic text (not a real model) behind OpenAI- and Ollama-compatible APIs.\n" +
            "Fault injection for tests, written anywhere in a prompt:\n" + SimDirectives.Help)
        {
            urls, model, visionModel, latency, tokensPerSecond, contextWindow,
        };
        command.SetAction(async (parse, ct) =>
        {
            var names = parse.GetValue(model) ?? [];
            var vision = parse.GetValue(visionModel) ?? [];
            var options = new SimBackendOptions
            {
                Urls = parse.GetValue(urls)!,
                Models = names.Length > 0 || vision.Length > 0 ? [.. names] : [.. SimBackendOptions.DefaultModels],
                VisionModels = [.. vision],
                Latency = TimeSpan.FromMilliseconds(parse.GetValue(latency)),
                TokensPerSecond = parse.GetValue(tokensPerSecond),
                ContextWindow = parse.GetValue(contextWindow),
            };
            await using var app = SimBackendHost.Build(options, configure: b => HostLogging.Configure(b.Logging));
            await app.StartAsync(ct);
            Console.WriteLine($"coinop sim-backend (SIMULATOR: deterministic text, not a real model) listening on {string.Join(", ", app.Urls)}; models: {string.Join(", ", options.Models.Concat(options.VisionModels))}");
            await app.WaitForShutdownAsync(ct);
            return 0;
        });
        return command;
    }
}
