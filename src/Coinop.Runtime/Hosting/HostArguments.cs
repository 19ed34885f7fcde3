namespace Coinop.Runtime.Hosting;

/// <summary>Arguments every Coinop host is built with.</summary>
public static class HostArguments
{
    /// <summary>
    /// Coinop reads no appsettings files, so the default file watcher on the working directory (which can be a large
    /// checkout) is pure cost: turn its reload-on-change off.
    /// </summary>
    public static string[] Default => ["--hostBuilder:reloadConfigOnChange=false"];
}
