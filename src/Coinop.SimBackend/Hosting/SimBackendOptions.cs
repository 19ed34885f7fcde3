using System.ComponentModel.DataAnnotations;

namespace Coinop.SimBackend.Hosting;

/// <summary>Settings of the inference simulator, validated when it starts.</summary>
public sealed class SimBackendOptions : IValidatableObject
{
    public static IReadOnlyList<string> DefaultModels { get; } = ["sim-small", "sim-large"];

    /// <summary>Addresses Kestrel listens on (';'-separated); port 0 picks a free port.</summary>
    [Required]
    public string Urls { get; set; } = "http://127.0.0.1:0";

    /// <summary>The model names the simulator serves.</summary>
    public List<string> Models { get; set; } = [.. DefaultModels];

    /// <summary>Models that take images (reported as <c>vision</c> by <c>/api/show</c>); each is served besides <see cref="Models"/>.</summary>
    public List<string> VisionModels { get; set; } = [];

    /// <summary>Keep the bodies of the last requests (<see cref="Simulator.RecentRequests"/>), for tests that check what a backend received.</summary>
    public bool RecordRequests { get; set; }

    /// <summary>Time to first token (<c>--latency</c>, in milliseconds on the command line).</summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan Latency { get; set; }

    /// <summary>Output pacing; 0 emits every token at once.</summary>
    [Range(0, 1_000_000)]
    public double TokensPerSecond { get; set; }

    /// <summary>The context window every model reports (Ollama <c>/api/show</c>).</summary>
    [Range(1, 10_000_000)]
    public int ContextWindow { get; set; } = 8192;

    /// <summary>Length of embedding vectors when the request names no <c>dimensions</c>.</summary>
    [Range(1, 8192)]
    public int EmbeddingDimensions { get; set; } = 64;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Models.Count == 0 && VisionModels.Count == 0)
        {
            yield return new ValidationResult("at least one --model is needed", [nameof(Models)]);
        }

        foreach (var model in Models.Concat(VisionModels))
        {
            if (string.IsNullOrWhiteSpace(model) || model.Any(c => char.IsWhiteSpace(c) || char.IsControl(c) || c is '"' or '\\'))
            {
                yield return new ValidationResult($"'{model}' is not a model name: use letters, digits and -_.:/", [nameof(Models)]);
            }
        }

        if (Models.Concat(VisionModels).Distinct(StringComparer.Ordinal).Count() != Models.Count + VisionModels.Count)
        {
            yield return new ValidationResult("model names must be unique", [nameof(Models)]);
        }
    }
}
