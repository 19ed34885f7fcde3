using Coinop.Core.Workloads;

namespace Coinop.Core.Tests.Workloads;

public class WorkloadSpecTests
{
    internal static WorkloadSpec Spec(
        RestartPolicy? restart = null, int standbys = 0, bool checkpointed = false, int durationSeconds = 3600) =>
        new("python3", ["-m", "http.server"], 1, 512, TimeSpan.FromSeconds(durationSeconds), 8000,
            restart ?? RestartPolicy.Never, standbys, checkpointed);

    [Theory]
    [InlineData("never", 0)]
    [InlineData("on-failure:1", 1)]
    [InlineData(" on-failure:100 ", 100)]
    public void Restart_policies_parse_and_format(string text, int attempts)
    {
        Assert.True(RestartPolicy.TryParse(text, out var policy, out _));
        Assert.Equal(attempts, policy.MaxAttempts);
        Assert.Equal(text.Trim(), policy.ToString());
        Assert.True(RestartPolicy.TryParse(policy.ToString(), out var again, out _));
        Assert.Equal(policy, again);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("always")]
    [InlineData("on-failure")]
    [InlineData("on-failure:0")]
    [InlineData("on-failure:101")]
    [InlineData("on-failure:-1")]
    [InlineData("on-failure:+2")]
    [InlineData("on-failure:1x")]
    [InlineData("Never")]
    public void Bad_restart_policies_get_a_clear_error(string? text)
    {
        Assert.False(RestartPolicy.TryParse(text, out _, out var error));
        Assert.Contains("'never' or 'on-failure:N'", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0, false, "none")]
    [InlineData(0, true, "checkpointed")]
    [InlineData(2, false, "warm-standby")]
    [InlineData(1, true, "warm-standby+checkpointed")]
    public void Standbys_and_checkpoints_combine(int standbys, bool checkpointed, string replication)
    {
        var spec = Spec(standbys: standbys, checkpointed: checkpointed);
        Assert.Empty(spec.Validate());
        Assert.Equal(replication, spec.Replication);
    }

    [Fact]
    public void A_reasonable_spec_is_valid()
    {
        Assert.Empty(Spec().Validate());
        Assert.Empty(Spec(RestartPolicy.OnFailure(3), standbys: 2, checkpointed: true).Validate());
    }

    [Fact]
    public void Every_bad_field_is_reported()
    {
        var bad = new WorkloadSpec("", ["a\0"], 0, 1, TimeSpan.Zero, 70000, RestartPolicy.Never, -1, false);
        var errors = bad.Validate();
        Assert.Equal(7, errors.Count);
        Assert.Contains(errors, e => e.StartsWith("command", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("port", StringComparison.Ordinal));
        Assert.Contains("cpu must be from 0.01 to 1024 cores", (Spec() with { CpuCores = double.NaN }).Validate());
    }

    [Fact]
    public void Standbys_are_bounded()
    {
        Assert.Single(Spec(standbys: -1).Validate());
        Assert.Single(Spec(standbys: WorkloadSpec.MaxStandbys + 1).Validate());
        Assert.Empty(Spec(standbys: WorkloadSpec.MaxStandbys, checkpointed: true).Validate());
    }

    [Fact]
    public void States_are_snake_lower_on_the_wire()
    {
        Assert.Equal("\"respawning\"", System.Text.Json.JsonSerializer.Serialize(WorkloadState.Respawning));
        Assert.Equal("provisioning", Coinop.Core.Text.WireEnum.Name(WorkloadState.Provisioning));
        Assert.True(Coinop.Core.Text.WireEnum.TryParse<WorkloadState>("cancelled", out var state));
        Assert.Equal(WorkloadState.Cancelled, state);
    }
}
