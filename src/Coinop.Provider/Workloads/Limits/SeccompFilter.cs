using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Coinop.Provider.Workloads.Limits;

/// <summary>
/// The default seccomp filter of bubblewrap copies, as the classic BPF program <c>bwrap --seccomp</c> loads: the system
/// calls Docker's default profile also refuses (kernel modules, keyrings, mounts and namespaces, bpf, perf, kexec,
/// clock and swap changes, io_uring, handles to arbitrary inodes) fail with EPERM; a call of another architecture's ABI
/// (i386 or x32 on x86-64) kills the process, so the list cannot be bypassed through a second syscall table.
/// </summary>
public static class SeccompFilter
{
    private const ushort LdAbsWord = 0x20;
    private const ushort JumpEqual = 0x15;
    private const ushort JumpGreaterOrEqual = 0x35;
    private const ushort Return = 0x06;
    private const uint Allow = 0x7fff0000;
    private const uint KillProcess = 0x80000000;
    private const uint ErrnoEperm = 0x00050000 | 1;
    private const uint X32Bit = 0x40000000;

    /// <summary>Architecture tag and denied call numbers, by architecture (x86-64, arm64).</summary>
    private static readonly Dictionary<Architecture, (uint AuditArch, int[] Denied)> Tables = new()
    {
        [Architecture.X64] = (0xC000003E,
        [
            163, 248, 321, 305, 227, 174, 176, 313, 177, 175, 173, 172, 312, 320, 246, 250, 212, 165, 429, 303, 180, 304,
            428, 430, 431, 432, 433, 442, 298, 155, 178, 179, 443, 169, 249, 308, 164, 167, 168, 139, 156, 166, 272, 134,
            323, 136, 425, 426, 427, 153,
        ]),
        [Architecture.Arm64] = (0xC00000B7,
        [
            89, 217, 280, 266, 112, 106, 273, 105, 272, 294, 104, 219, 18, 40, 429, 264, 42, 265, 428, 430, 431, 432, 433,
            442, 241, 41, 60, 443, 142, 218, 268, 170, 224, 225, 39, 97, 282, 425, 426, 427, 58,
        ]),
    };

    /// <summary>Whether a filter exists for this machine's architecture.</summary>
    public static bool Supported => Tables.ContainsKey(RuntimeInformation.ProcessArchitecture);

    /// <summary>The number of <c>keyctl</c> here (tests call it to see the filter refuse it).</summary>
    public static int KeyctlNumber => RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 219 : 250;

    /// <summary>The program for this machine's architecture: 8-byte <c>struct sock_filter</c> entries, little-endian.</summary>
    public static byte[] Program() => Program(RuntimeInformation.ProcessArchitecture);

    public static byte[] Program(Architecture architecture)
    {
        if (!Tables.TryGetValue(architecture, out var table))
        {
            throw new PlatformNotSupportedException($"no seccomp filter for {architecture}");
        }

        var denied = table.Denied;
        var x32Check = architecture == Architecture.X64;
        var program = new List<(ushort Code, byte True, byte False, uint K)>
        {
            (LdAbsWord, 0, 0, 4), // seccomp_data.arch
            (JumpEqual, 1, 0, table.AuditArch),
            (Return, 0, 0, KillProcess),
            (LdAbsWord, 0, 0, 0), // seccomp_data.nr
        };
        if (x32Check)
        {
            // Jumps to the final "deny", past the list and the "allow".
            program.Add((JumpGreaterOrEqual, (byte)(denied.Length + 1), 0, X32Bit));
        }

        for (var i = 0; i < denied.Length; i++)
        {
            program.Add((JumpEqual, (byte)(denied.Length - i), 0, (uint)denied[i]));
        }

        program.Add((Return, 0, 0, Allow));
        program.Add((Return, 0, 0, ErrnoEperm));

        var bytes = new byte[program.Count * 8];
        for (var i = 0; i < program.Count; i++)
        {
            var (code, jt, jf, k) = program[i];
            var slot = bytes.AsSpan(i * 8, 8);
            BinaryPrimitives.WriteUInt16LittleEndian(slot, code);
            slot[2] = jt;
            slot[3] = jf;
            BinaryPrimitives.WriteUInt32LittleEndian(slot[4..], k);
        }

        return bytes;
    }
}
