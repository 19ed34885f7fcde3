// The suite drives Unix processes and file modes; it runs on Linux.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
