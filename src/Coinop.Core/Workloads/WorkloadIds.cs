namespace Coinop.Core.Workloads;

/// <summary>
/// Workload ids are random GUIDs written as 32 lowercase hex digits: unguessable (knowing one is what lets a consumer
/// follow or cancel it), valid in folder and cgroup names, and exactly the 16 bytes a binary frame header carries.
/// </summary>
public static class WorkloadIds
{
    public static string New() => Guid.NewGuid().ToString("N");

    public static bool TryParse(string? text, out Guid id) => Guid.TryParseExact(text, "N", out id) && Format(id) == text;

    public static string Format(Guid id) => id.ToString("N");
}
