using System.Data.Common;

namespace Coinop.Storage;

/// <summary>
/// One statement to run (see <see cref="Database.Statement"/>): parameters by name, then execute. Disposing it disposes
/// the command unless the database keeps it prepared.
/// </summary>
public readonly struct Statement(DbCommand command, bool owned) : IDisposable
{
    /// <summary>
    /// Sets a parameter (null is SQL NULL), adding it on the command's first use. Name it as the SQL does (<c>@name</c>):
    /// Microsoft.Data.Sqlite binds a bare name only after trying it with each prefix.
    /// </summary>
    public Statement Set(string name, object? value)
    {
        var parameters = command.Parameters;
        var index = parameters.IndexOf(name);
        DbParameter parameter;
        if (index < 0)
        {
            parameter = command.CreateParameter();
            parameter.ParameterName = name;
            parameters.Add(parameter);
        }
        else
        {
            parameter = parameters[index];
        }

        parameter.Value = value ?? DBNull.Value;
        return this;
    }

    public Task<int> ExecuteAsync(CancellationToken cancellationToken) => command.ExecuteNonQueryAsync(cancellationToken);

    public Task<object?> ScalarAsync(CancellationToken cancellationToken) => command.ExecuteScalarAsync(cancellationToken);

    public Task<DbDataReader> ReaderAsync(CancellationToken cancellationToken) => command.ExecuteReaderAsync(cancellationToken);

    public void Dispose()
    {
        if (owned)
        {
            command.Dispose();
        }
    }
}
