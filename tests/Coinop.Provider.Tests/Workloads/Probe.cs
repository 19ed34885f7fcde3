using System.Runtime.InteropServices;
using Coinop.TestKit;

namespace Coinop.Provider.Tests.Workloads;

/// <summary>The built probe program (tests/Coinop.WorkloadProbe) and the dotnet host that runs it.</summary>
internal static class Probe
{
    public static string Directory => Path.Combine(RepoPaths.Root, "tests", "Coinop.WorkloadProbe", "bin", RepoPaths.Configuration, "net10.0");

    public static string Dll => Path.Combine(Directory, "coinop-workload-probe.dll");

    public static string DotnetHost => Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", "..", "dotnet"));

    /// <summary>Copies the probe into a copy's work dir, so a sandbox that hides the repository can still run it.</summary>
    public static void StageInto(string workDir)
    {
        var target = System.IO.Directory.CreateDirectory(Path.Combine(workDir, "probe")).FullName;
        foreach (var file in System.IO.Directory.EnumerateFiles(Directory).Where(f => f.EndsWith(".dll", StringComparison.Ordinal) || f.EndsWith(".json", StringComparison.Ordinal)))
        {
            File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
        }
    }
}
