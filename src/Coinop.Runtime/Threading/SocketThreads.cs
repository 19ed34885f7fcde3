namespace Coinop.Runtime.Threading;

/// <summary>
/// The runtime's socket engine threads (the epoll loops of <c>System.Net.Sockets</c>). With inline completions a socket's
/// continuation runs on its engine thread instead of after a hand-over to the thread pool. An engine thread serves every
/// socket registered with it (a process has one per core), so code that runs there must never wait: no SQLite, file I/O,
/// lock that can wait or synchronous wait. The switch is per process and holds for every library's sockets: a process
/// whose libraries block inside their own socket continuations (Npgsql does, when a command is cancelled) must not turn
/// it on (docs/architecture.md, "Threads").
/// </summary>
public static class SocketThreads
{
    /// <summary>The runtime's switch, read once from the environment when the first socket registers with an engine.</summary>
    public const string InlineCompletionsVariable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>The name the runtime gives its socket engine threads.</summary>
    public const string EngineThreadName = ".NET Sockets";

    /// <summary>
    /// Turns inline completions on for this process unless the environment already decides (a value set by the operator
    /// wins). Must run before the process's first asynchronous socket operation; later it has no effect.
    /// </summary>
    public static void PreferInlineCompletions()
    {
        if (Environment.GetEnvironmentVariable(InlineCompletionsVariable) is null)
        {
            Environment.SetEnvironmentVariable(InlineCompletionsVariable, "1");
        }
    }
}
