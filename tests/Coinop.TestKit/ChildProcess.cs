using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace Coinop.TestKit;

/// <summary>
/// A real child process (usually the coinop CLI) whose output is captured line by line so tests can await
/// what it prints instead of sleeping. Killed (whole tree) on dispose.
/// </summary>
public sealed partial class ChildProcess : IAsyncDisposable
{
    private const string Env = "/usr/bin/env";
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly StringBuilder _all = new();
    private readonly Lock _gate = new();
    private readonly List<(Func<string, bool> Match, TaskCompletionSource<string> Done)> _waiters = [];
    private readonly TaskCompletionSource<int> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _pendingStreams = 2;

    private ChildProcess(Process process, string name)
    {
        _process = process;
        Name = name;
    }

    public string Name { get; }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>Everything printed so far (stdout and stderr interleaved).</summary>
    public string Output
    {
        get
        {
            lock (_gate)
            {
                return _all.ToString();
            }
        }
    }

    public Task<int> Exited => _exited.Task;

    /// <summary>Starts <c>dotnet coinop.dll args</c>.</summary>
    public static ChildProcess StartCoinop(string name, IEnumerable<string> args, IDictionary<string, string>? env = null, string? workingDirectory = null) =>
        Start(name, "dotnet", [RepoPaths.CliDll, .. args], env, workingDirectory);

    /// <summary>
    /// Starts <paramref name="fileName"/> with SIGINT and SIGQUIT at their default handling, as from a terminal. A test
    /// runner started in the background (<c>cmd &amp;</c>, <c>nohup cmd &amp;</c>) has both ignored, a child inherits
    /// that through exec, and a .NET child then never sees the Ctrl-C a test sends it (<see cref="Interrupt"/>).
    /// </summary>
    public static ChildProcess Start(string name, string fileName, IEnumerable<string> args, IDictionary<string, string>? env = null, string? workingDirectory = null)
    {
        var restoreSignals = OperatingSystem.IsLinux() && File.Exists(Env);
        var psi = new ProcessStartInfo(restoreSignals ? Env : fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? RepoPaths.Root,
        };
        if (restoreSignals)
        {
            // env execs the program in its own place: the pid stays the child's.
            psi.ArgumentList.Add("--default-signal=INT,QUIT");
            psi.ArgumentList.Add(fileName);
        }

        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["NO_COLOR"] = "1";
        if (env is not null)
        {
            foreach (var (k, v) in env)
            {
                psi.Environment[k] = v;
            }
        }

        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var child = new ChildProcess(process, name);
        process.OutputDataReceived += (_, e) => child.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => child.OnLine(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    /// <summary>Waits for a printed line that matches; fails with the output so far when the process exits first or time runs out.</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> match, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var tcs = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            foreach (var line in _lines)
            {
                if (match(line))
                {
                    return line;
                }
            }

            _waiters.Add((match, tcs));
        }

        var limit = timeout ?? TimeSpan.FromSeconds(60);
        var finished = await Task.WhenAny(tcs.Task, _exited.Task, Task.Delay(limit, cancellationToken));
        if (finished == tcs.Task)
        {
            return await tcs.Task;
        }

        lock (_gate)
        {
            _waiters.RemoveAll(w => w.Done == tcs);
        }

        // The match may have arrived together with the exit.
        if (tcs.Task.IsCompleted)
        {
            return await tcs.Task;
        }

        var why = finished == _exited.Task ? $"exited with {_exited.Task.Result}" : $"printed no matching line within {limit}";
        throw new TimeoutException($"{Name} {why}. Output:\n{Output}");
    }

    public Task<string> WaitForLineAsync(string contains, TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        WaitForLineAsync(l => l.Contains(contains, StringComparison.Ordinal), timeout, cancellationToken);

    public async Task<int> WaitForExitAsync(TimeSpan? timeout = null)
    {
        var limit = timeout ?? TimeSpan.FromSeconds(60);
        if (await Task.WhenAny(_exited.Task, Task.Delay(limit)) != _exited.Task)
        {
            throw new TimeoutException($"{Name} did not exit within {limit}. Output:\n{Output}");
        }

        return await _exited.Task;
    }

    /// <summary>SIGKILL: the process dies at once, no cleanup runs.</summary>
    public void KillHard()
    {
        if (!_process.HasExited)
        {
            _ = Kill(_process.Id, 9);
        }
    }

    /// <summary>SIGTERM: the process shuts down gracefully.</summary>
    public void Terminate()
    {
        if (!_process.HasExited)
        {
            _ = Kill(_process.Id, 15);
        }
    }

    /// <summary>SIGINT, as Ctrl-C in a terminal.</summary>
    public void Interrupt()
    {
        if (!_process.HasExited)
        {
            _ = Kill(_process.Id, 2);
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }
        }
        catch (Exception)
        {
            // Already gone.
        }

        _process.Dispose();
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            if (Interlocked.Decrement(ref _pendingStreams) == 0)
            {
                _ = Task.Run(async () =>
                {
                    await _process.WaitForExitAsync();
                    _exited.TrySetResult(_process.ExitCode);
                });
            }

            return;
        }

        List<TaskCompletionSource<string>> done = [];
        lock (_gate)
        {
            _lines.Enqueue(line);
            _all.AppendLine(line);
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Match(line))
                {
                    done.Add(_waiters[i].Done);
                    _waiters.RemoveAt(i);
                }
            }
        }

        foreach (var d in done)
        {
            d.TrySetResult(line);
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
