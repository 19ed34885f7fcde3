using System.Runtime.CompilerServices;
using Coinop.Runtime.Threading;

namespace Coinop.Provider.Tests;

/// <summary>
/// The tests run with the production threading: socket continuations inline on the socket engine threads (as the CLI sets
/// it for the market and the agent), and code that would block such a thread fails loudly instead of stalling the
/// process's other connections. Set before the first socket, which is when the runtime reads it.
/// </summary>
internal static class InlineSocketCompletions
{
    [ModuleInitializer]
    internal static void Enable()
    {
        SocketThreads.PreferInlineCompletions();
        SocketThreads.Strict = true;
    }
}
