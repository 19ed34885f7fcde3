using Microsoft.Extensions.Logging;

namespace Coinop.Provider.Status;

/// <summary>The agent's last warnings and errors (a small ring), for the status file: what went wrong lately, without its logs.</summary>
public sealed class RecentErrors(TimeProvider time)
{
    public const int Capacity = 20;
    private const int MaxMessageLength = 500;
    private readonly Queue<RecentError> _errors = new();
    private readonly Lock _gate = new();

    public void Add(LogLevel level, string message)
    {
        var entry = new RecentError(time.GetUtcNow(), level.ToString(), message.Length > MaxMessageLength ? message[..MaxMessageLength] : message);
        lock (_gate)
        {
            if (_errors.Count == Capacity)
            {
                _errors.Dequeue();
            }

            _errors.Enqueue(entry);
        }
    }

    public IReadOnlyList<RecentError> Snapshot()
    {
        lock (_gate)
        {
            return [.. _errors];
        }
    }
}

/// <summary>Feeds <see cref="RecentErrors"/> from the agent's own log categories (Coinop.*), warnings and up.</summary>
public sealed class RecentErrorsLoggerProvider(RecentErrors errors) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) =>
        categoryName.StartsWith("Coinop.", StringComparison.Ordinal) ? new Logger(errors) : Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

    public void Dispose()
    {
    }

    private sealed class Logger(RecentErrors errors) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                errors.Add(logLevel, formatter(state, exception) + (exception is null ? "" : ": " + exception.Message));
            }
        }
    }
}
