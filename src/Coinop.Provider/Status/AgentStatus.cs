using System.Text.Json;
using System.Text.Json.Serialization;

namespace Coinop.Provider.Status;

/// <summary>
/// What a running agent writes to <c>&lt;data&gt;/status.json</c> every few seconds (and once more when it stops), for
/// <c>coinop provider status</c>. <c>link.state</c>: <c>starting</c>, <c>connecting</c>, <c>online</c>, <c>draining</c>,
/// <c>stopped</c>.
/// </summary>
public sealed record AgentStatus(
    int Version,
    string? ProviderId,
    int Pid,
    string Market,
    DateTimeOffset StartedAt,
    DateTimeOffset UpdatedAt,
    LinkStatus Link,
    IReadOnlyList<OfferStatus> Models,
    JobCounts Jobs,
    IReadOnlyList<RecentError> RecentErrors)
{
    public const string FileName = "status.json";
    public const int CurrentVersion = 1;

    public static string PathIn(string dataDir) => System.IO.Path.Combine(dataDir, FileName);

    /// <summary>Reads the file; null when there is none, a <see cref="JsonException"/> when it is not a status file.</summary>
    public static AgentStatus? Read(string dataDir)
    {
        var path = PathIn(dataDir);
        if (!File.Exists(path))
        {
            return null;
        }

        return JsonSerializer.Deserialize(File.ReadAllBytes(path), AgentStatusJson.Default.AgentStatus)
            ?? throw new JsonException($"{path} is empty");
    }
}

/// <summary>The market link: its state, since when, and how the last session ended.</summary>
public sealed record LinkStatus(string State, DateTimeOffset Since);

/// <summary>One model offered: its backend and price in sats per million tokens.</summary>
public sealed record OfferStatus(string Model, string Backend, decimal InputPrice, decimal OutputPrice);

/// <summary>Jobs since the agent started, by how they ended, and the ones in flight now.</summary>
public sealed record JobCounts(long Served, long Failed, long Cancelled, int InFlight);

/// <summary>A warning or error the agent logged.</summary>
public sealed record RecentError(DateTimeOffset At, string Level, string Message);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true)]
[JsonSerializable(typeof(AgentStatus))]
public sealed partial class AgentStatusJson : JsonSerializerContext;
