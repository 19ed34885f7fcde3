using Coinop.Provider.Workloads;
using CsCheck;

namespace Coinop.Provider.Tests.Units;

/// <summary>The single-writer epoch rules and the capacity of <see cref="CopyAdmission"/>, over any sequence of starts, stops and standbys.</summary>
public class CopyAdmissionProperties
{
    private const double Cores = 4;
    private const long MemoryMb = 4096;

    private static readonly Gen<(int Op, int Workload, int Epoch, int Cores, int MemoryMb)> Step =
        Gen.Select(Gen.Int[0, 4], Gen.Int[0, 2], Gen.Int[0, 5], Gen.Int[1, 3], Gen.Int[16, 3000]);

    [Fact]
    public void A_start_runs_only_past_every_epoch_started_or_stopped_and_within_capacity()
    {
        Step.Array[1, 40].Sample(steps =>
        {
            var admission = new CopyAdmission(new WorkloadHostOptions { DataDirectory = "/unused", CpuCores = Cores, MemoryMb = MemoryMb });
            var burnt = new Dictionary<string, long>(); // the highest epoch started or stopped, per workload
            foreach (var (op, w, epoch, cores, memory) in steps)
            {
                var id = $"w{w}";
                var highest = burnt.GetValueOrDefault(id, -1);
                switch (op)
                {
                    case 0 or 1:
                        var spec = new CopySpec(id, epoch, "true", [], new Dictionary<string, string>(), cores, memory);
                        var refused = admission.TryAdmit(spec, () => new ManagedCopy(spec, "/unused/" + id), out var admitted, out var previous);
                        if (epoch <= highest)
                        {
                            Assert.NotNull(refused);
                            Assert.True(refused!.Refusal is StartRefusal.StaleEpoch or StartRefusal.EpochAlreadyUsed);
                        }
                        else if (refused is null)
                        {
                            Assert.Same(admitted, admission.Find(id));
                            Assert.True(previous is null || previous.Spec.Epoch < epoch);
                            burnt[id] = epoch;
                        }
                        else
                        {
                            Assert.Equal(StartRefusal.OverCapacity, refused.Refusal);
                        }

                        break;
                    case 2:
                        var running = admission.Find(id);
                        var stopped = admission.Stop(id, epoch);
                        // A late stop never takes down a newer copy.
                        Assert.Equal(running is not null && running.Spec.Epoch <= epoch ? running : null, stopped);
                        burnt[id] = Math.Max(highest, epoch);
                        if (stopped is not null && epoch % 2 == 0)
                        {
                            admission.Forget(stopped); // sometimes the stopped copy is already gone
                        }

                        break;
                    case 3:
                        var reserved = admission.Reserve(id, epoch, cores, memory);
                        Assert.False(reserved && epoch < highest);
                        break;
                    default:
                        admission.Release(id);
                        break;
                }

                var capacity = admission.Capacity();
                Assert.True(capacity.ReservedCpuCores <= Cores + 1e-9 && capacity.ReservedMemoryMb <= MemoryMb);
            }
        });
    }
}
