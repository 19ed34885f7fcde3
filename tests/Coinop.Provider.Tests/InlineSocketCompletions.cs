using System.Runtime.CompilerServices;
using Coinop.Runtime.Threading;

namespace Coinop.Provider.Tests;

/// <summary>
/// The agent's tests run with its production threading: socket continuations inline on the socket engine threads, as
/// <c>coinop provider</c> sets it. Set before the first socket, which is when the runtime reads it.
/// </summary>
internal static class InlineSocketCompletions
{
    [ModuleInitializer]
    internal static void Enable() => SocketThreads.PreferInlineCompletions();
}
