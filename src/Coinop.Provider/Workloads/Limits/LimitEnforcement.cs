namespace Coinop.Provider.Workloads.Limits;

/// <summary>How CPU and memory limits are enforced on this machine.</summary>
public enum LimitEnforcement
{
    /// <summary>No writable cgroup: RLIMIT_AS for memory and SIGSTOP/SIGCONT duty-cycling for CPU (approximate).</summary>
    Approximate,

    /// <summary>cgroup v1: <c>cpu.cfs_quota_us</c>, <c>memory.limit_in_bytes</c>, <c>cpuacct.usage</c>.</summary>
    CgroupV1,

    /// <summary>cgroup v2: <c>cpu.max</c>, <c>memory.max</c>, <c>memory.swap.max</c>.</summary>
    CgroupV2,
}
