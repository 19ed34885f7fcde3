using System.Reflection;

namespace Coinop.TestKit;

/// <summary>Locations in the repository: its root and the built CLI.</summary>
public static class RepoPaths
{
    private static readonly Lazy<string> LazyRoot = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "Coinop.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Cannot find the repository root (Coinop.slnx) above " + AppContext.BaseDirectory);
    });

    public static string Root => LazyRoot.Value;

    /// <summary>The configuration (Debug/Release) the tests were built with; the CLI is built with the same.</summary>
    public static string Configuration =>
        typeof(RepoPaths).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";

    /// <summary>The built <c>coinop.dll</c> (the test script builds the whole solution first).</summary>
    public static string CliDll
    {
        get
        {
            var path = System.IO.Path.Combine(Root, "src", "Coinop.Cli", "bin", Configuration, "net10.0", "coinop.dll");
            return File.Exists(path)
                ? path
                : throw new InvalidOperationException($"The CLI is not built at {path}: build the solution first (./test.sh does).");
        }
    }
}
