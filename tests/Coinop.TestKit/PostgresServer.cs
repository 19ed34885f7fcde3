namespace Coinop.TestKit;

/// <summary>
/// The PostgreSQL server the test script started (initdb in a temp dir, a loopback port). Its connection
/// string arrives in <c>COINOP_TEST_POSTGRES</c>; each test gets a fresh database on it.
/// </summary>
public static class PostgresServer
{
    public const string EnvironmentVariable = "COINOP_TEST_POSTGRES";

    public static string ConnectionString =>
        Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } cs
            ? cs
            : throw new InvalidOperationException(
                $"{EnvironmentVariable} is not set: run the tests with ./test.sh, which installs and starts PostgreSQL.");
}
