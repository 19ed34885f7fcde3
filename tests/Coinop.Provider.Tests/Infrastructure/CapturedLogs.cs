using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Coinop.Provider.Tests.Infrastructure;

/// <summary>One log entry with its structured values (LoggerMessage state).</summary>
public sealed record LogEntry(LogLevel Level, int EventId, string Message, IReadOnlyDictionary<string, object?> Values);

/// <summary>Keeps every log entry of a host so tests can await and inspect what the agent reported.</summary>
public sealed class CapturedLogs : ILoggerProvider
{
    private readonly ConcurrentQueue<LogEntry> _entries = new();
    private readonly Lock _gate = new();
    private readonly List<(Func<LogEntry, bool> Match, TaskCompletionSource<LogEntry> Done)> _waiters = [];

    public IReadOnlyList<LogEntry> Entries => [.. _entries];

    public ILogger CreateLogger(string categoryName) => new Logger(this);

    public void Dispose()
    {
    }

    /// <summary>Waits for an entry matching <paramref name="match"/> (including ones already logged).</summary>
    public Task<LogEntry> WaitForAsync(Func<LogEntry, bool> match, TimeSpan? timeout = null)
    {
        var tcs = new TaskCompletionSource<LogEntry>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            var seen = _entries.FirstOrDefault(match);
            if (seen is not null)
            {
                return Task.FromResult(seen);
            }

            _waiters.Add((match, tcs));
        }

        return tcs.Task.WaitAsync(timeout ?? TimeSpan.FromSeconds(30));
    }

    public Task<LogEntry> WaitForEventAsync(int eventId, Func<LogEntry, bool>? match = null, TimeSpan? timeout = null) =>
        WaitForAsync(e => e.EventId == eventId && (match is null || match(e)), timeout);

    private void Add(LogEntry entry)
    {
        List<TaskCompletionSource<LogEntry>> done = [];
        lock (_gate)
        {
            _entries.Enqueue(entry);
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Match(entry))
                {
                    done.Add(_waiters[i].Done);
                    _waiters.RemoveAt(i);
                }
            }
        }

        foreach (var d in done)
        {
            d.TrySetResult(entry);
        }
    }

    private sealed class Logger(CapturedLogs owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var values = state is IReadOnlyList<KeyValuePair<string, object?>> list
                ? list.ToDictionary(p => p.Key, p => p.Value)
                : new Dictionary<string, object?>();
            owner.Add(new LogEntry(logLevel, eventId.Id, formatter(state, exception), values));
        }
    }
}
