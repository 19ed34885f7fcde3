using System.Runtime.CompilerServices;

namespace Coinop.Runtime.Threading;

/// <summary>
/// The runtime's socket engine threads (the epoll loops of <c>System.Net.Sockets</c>) and the rule for code that may run on
/// them. With inline completions (<see cref="PreferInlineCompletions"/>) a socket's continuation runs on its engine thread
/// instead of after a hand-over to the thread pool: the market relays a request from socket to socket with no thread
/// wake-up in between. An engine thread serves every socket registered with it (a process has one per core), so code on it
/// must never wait: before a SQLite statement, file I/O, a lock that can wait or a synchronous wait, it leaves with
/// <see cref="LeaveAsync"/>. Asynchronous socket I/O (Kestrel, WebSockets, HttpClient) may stay. The switch is per process and
/// holds for every library's sockets: a process whose libraries block inside their own socket continuations (Npgsql does,
/// when a command is cancelled) must not turn it on.
/// </summary>
public static class SocketThreads
{
    /// <summary>The runtime's switch, read once from the environment when the first socket registers with an engine.</summary>
    public const string InlineCompletionsVariable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>The name the runtime gives its socket engine threads.</summary>
    private const string EngineThreadName = ".NET Sockets";

    [ThreadStatic]
    private static int t_kind; // 0 unknown, 1 engine thread, 2 any other

    /// <summary>
    /// True when socket continuations run inline on the engine threads in this process (the variable is "1"). Meaningful
    /// once the first socket is registered; before that it says what will happen.
    /// </summary>
    public static bool InlineCompletions => Environment.GetEnvironmentVariable(InlineCompletionsVariable) == "1";

    /// <summary>True when the calling code runs on a socket engine thread.</summary>
    public static bool IsCurrent
    {
        get
        {
            var kind = t_kind;
            if (kind == 0)
            {
                // A thread's name is set before it starts and never changes for these threads: look it up once per thread.
                kind = Thread.CurrentThread.Name == EngineThreadName ? 1 : 2;
                t_kind = kind;
            }

            return kind == 1;
        }
    }

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

    /// <summary>
    /// Continues on a thread-pool thread when the caller is on a socket engine thread, else at once (no hop, no allocation).
    /// Await it before anything that can block.
    /// </summary>
    public static LeaveAwaitable LeaveAsync() => default;

    /// <summary>The awaitable of <see cref="LeaveAsync"/>.</summary>
    public readonly struct LeaveAwaitable
    {
        public LeaveAwaiter GetAwaiter() => default;
    }

    /// <summary>Completed unless on an engine thread; the continuation then runs on the thread pool.</summary>
    public readonly struct LeaveAwaiter : ICriticalNotifyCompletion
    {
        public bool IsCompleted => !IsCurrent;

        public void GetResult()
        {
        }

        public void OnCompleted(Action continuation)
        {
            ThreadPool.QueueUserWorkItem(static c => c(), continuation, preferLocal: false);
        }

        public void UnsafeOnCompleted(Action continuation)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static c => c(), continuation, preferLocal: false);
        }
    }
}
