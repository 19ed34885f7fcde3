using Coinop.Core.Workloads;

namespace Coinop.Core.Tests.Workloads;

public class WorkloadSpecTests
{
    internal static WorkloadSpec Spec(
        RestartPolicy? restart = null, ReplicationMode replication = ReplicationMode.None, int standbys = 0, int durationSeconds = 3600) =>
        new("python3", ["-m", "http.server"], 1, 512, TimeSpan.FromSeconds(durationSeconds), 8000,
            restart ?? RestartPolicy.Never, replication, standbys);

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
    [InlineData("none", ReplicationMode.None)]
    [InlineData("checkpointed", ReplicationMode.Checkpointed)]
    [InlineData("warm-standby", ReplicationMode.WarmStandby)]
    public void Replication_modes_use_their_wire_names(string text, ReplicationMode mode)
    {
        Assert.True(WorkloadSpec.TryParseReplication(text, out var parsed));
        Assert.Equal(mode, parsed);
        Assert.Equal(text, WorkloadSpec.Format(mode));
        Assert.Equal($"\"{text}\"", System.Text.Json.JsonSerializer.Serialize(mode));
        Assert.False(WorkloadSpec.TryParseReplication("warm_standby", out _));
    }

    [Fact]
    public void A_reasonable_spec_is_valid()
    {
        Assert.Empty(Spec().Validate());
        Assert.Empty(Spec(RestartPolicy.OnFailure(3), ReplicationMode.WarmStandby, 2).Validate());
    }

    [Fact]
    public void Every_bad_field_is_reported()
    {
        var bad = new WorkloadSpec("", ["a\0"], 0, 1, TimeSpan.Zero, 70000, RestartPolicy.Never, (ReplicationMode)9, 0);
        var errors = bad.Validate();
        Assert.Equal(7, errors.Count);
        Assert.Contains(errors, e => e.StartsWith("command", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("port", StringComparison.Ordinal));
        Assert.Contains("cpu must be more than 0 and at most 1024 cores", (Spec() with { CpuCores = double.NaN }).Validate());
    }

    [Fact]
    public void Standbys_go_with_warm_standby_only()
    {
        Assert.Single(Spec(replication: ReplicationMode.WarmStandby, standbys: 0).Validate());
        Assert.Single(Spec(replication: ReplicationMode.WarmStandby, standbys: WorkloadSpec.MaxStandbys + 1).Validate());
        Assert.Single(Spec(replication: ReplicationMode.Checkpointed, standbys: 1).Validate());
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
