using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Coinop.Provider.Workloads.Metering;
using Coinop.Provider.Workloads.Sandboxes;
using Microsoft.Win32.SafeHandles;

namespace Coinop.Provider.Workloads.Bridge;

/// <summary>
/// A copy's network namespace, held open by descriptor, in which the agent (as root) creates the sockets that reach the
/// workload's port: a socket belongs to the namespace of the thread that created it, so the connection is made without
/// any path, file or process inside the sandbox. Namespaces are entered on one dedicated thread that does nothing else.
/// </summary>
internal sealed class NetworkNamespace : IDisposable
{
    private readonly SafeFileHandle _handle;

    private NetworkNamespace(SafeFileHandle handle) => _handle = handle;

    /// <summary>
    /// The namespace of the first child of <paramref name="parentPid"/> (bubblewrap's sandbox init), or null while that
    /// child does not exist yet or is still in the agent's namespace.
    /// </summary>
    public static NetworkNamespace? OfChild(int parentPid, long parentStartTicks)
    {
        if (ProcFs.ReadStat(parentPid) is not { } parent || parent.StartTicks != parentStartTicks)
        {
            return null;
        }

        foreach (var child in Children(parentPid))
        {
            SafeFileHandle handle;
            try
            {
                handle = Posix.Open(Posix.AtFdCwd, $"/proc/{child}/ns/net", Posix.ORdOnly | Posix.OCloExec, 0);
            }
            catch (IOException)
            {
                continue;
            }

            // Opened, then checked: still the child of the same bwrap, and not our own namespace (not unshared yet).
            if (ProcFs.ReadStat(child) is { } stat && stat.ParentPid == parentPid && Posix.Stat(handle).Inode != Own.Value)
            {
                return new NetworkNamespace(handle);
            }

            handle.Dispose();
        }

        return null;
    }

    /// <summary>
    /// The namespace of <paramref name="pid"/> (a container's first process), or null when that process is gone (its
    /// pid no longer has <paramref name="startTicks"/>) or shares the agent's namespace.
    /// </summary>
    public static NetworkNamespace? OfProcess(int pid, long startTicks)
    {
        SafeFileHandle handle;
        try
        {
            handle = Posix.Open(Posix.AtFdCwd, $"/proc/{pid}/ns/net", Posix.ORdOnly | Posix.OCloExec, 0);
        }
        catch (IOException)
        {
            return null;
        }

        // Opened, then checked: the same process as when it started, and not in our own namespace.
        if (ProcFs.ReadStat(pid) is { } stat && stat.StartTicks == startTicks && Posix.Stat(handle).Inode != Own.Value)
        {
            return new NetworkNamespace(handle);
        }

        handle.Dispose();
        return null;
    }

    /// <summary>A TCP socket created inside the namespace and connected to its 127.0.0.1:<paramref name="port"/>.</summary>
    public async Task<Socket> ConnectAsync(int port, CancellationToken cancellationToken)
    {
        var socket = await Entering.CreateSocketAsync(_handle).ConfigureAwait(false);
        try
        {
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cancellationToken).ConfigureAwait(false);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public void Dispose() => _handle.Dispose();

    private static readonly Lazy<ulong> Own = new(() =>
    {
        using var handle = Posix.Open(Posix.AtFdCwd, "/proc/self/ns/net", Posix.ORdOnly | Posix.OCloExec, 0);
        return Posix.Stat(handle).Inode;
    });

    private static IEnumerable<int> Children(int pid)
    {
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid}/task/{pid}/children");
        }
        catch (IOException)
        {
            return ProcFs.All().Where(s => s.ParentPid == pid).Select(s => s.Pid).ToList();
        }

        return text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(s => int.Parse(s, NumberStyles.None, CultureInfo.InvariantCulture)).ToList();
    }

    /// <summary>The one thread that enters namespaces: it creates a socket inside one and returns to its own.</summary>
    private static class Entering
    {
        private static readonly BlockingCollection<(SafeFileHandle Ns, TaskCompletionSource<Socket> Done)> Requests = [];
        private static readonly Lock Gate = new();
        private static Thread? _worker;

        public static Task<Socket> CreateSocketAsync(SafeFileHandle ns)
        {
            var done = new TaskCompletionSource<Socket>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (Gate)
            {
                if (_worker is null || !_worker.IsAlive)
                {
                    _worker = new Thread(Run) { IsBackground = true, Name = "coinop-netns" };
                    _worker.Start();
                }

                Requests.Add((ns, done));
            }

            return done.Task;
        }

        private static void Run()
        {
            using var home = Posix.Open(Posix.AtFdCwd, "/proc/thread-self/ns/net", Posix.ORdOnly | Posix.OCloExec, 0);
            foreach (var (ns, done) in Requests.GetConsumingEnumerable())
            {
                Socket? socket = null;
                try
                {
                    Posix.SetNetworkNamespace(ns);
                    socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                }
                catch (Exception ex)
                {
                    done.TrySetException(ex);
                }

                try
                {
                    Posix.SetNetworkNamespace(home);
                }
                catch (Exception ex)
                {
                    // This thread is stuck in a copy's namespace: it must never create another socket. A new one takes over.
                    socket?.Dispose();
                    done.TrySetException(ex);
                    lock (Gate)
                    {
                        _worker = new Thread(Run) { IsBackground = true, Name = "coinop-netns" };
                        _worker.Start();
                    }

                    return;
                }

                if (socket is not null)
                {
                    done.TrySetResult(socket);
                }
            }
        }
    }
}
