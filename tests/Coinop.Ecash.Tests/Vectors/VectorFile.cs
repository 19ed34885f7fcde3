using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Coinop.Ecash.Tests.Vectors;

/// <summary>A fenced code block of a vector file, with the heading it sits under and the prose just before it.</summary>
public sealed record VectorBlock(string Heading, string Prose, string Language, string Body)
{
    /// <summary>"key: value" lines of a shell block (quotes and trailing comments stripped).</summary>
    public Dictionary<string, string> Fields()
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in Lines())
        {
            var m = Regex.Match(line, @"^([A-Za-z_][\w ()',]*?):\s*""?([^""#\s]+)""?");
            if (m.Success)
            {
                fields[m.Groups[1].Value.Trim()] = m.Groups[2].Value;
            }
        }

        return fields;
    }

    /// <summary>Non-empty, non-comment lines.</summary>
    public IEnumerable<string> Lines() =>
        Body.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#'));

    /// <summary>The body as JSON, accepting the spec's <c>h'…'</c> byte notation and trailing commas.</summary>
    public JsonNode Json()
    {
        var text = Regex.Replace(Body, @"h'([0-9a-fA-F]*)'", "\"$1\"");
        text = Regex.Replace(text, @",(\s*[}\]])", "$1");
        text = Regex.Replace(text, @"(?m)\s+//\s.*$", "");
        return JsonNode.Parse(text)!;
    }
}

/// <summary>
/// Reads an official Cashu test-vector file (markdown). The files are vendored beside this code
/// (<c>cashu-nuts/</c>, MIT, with their source noted) and copied to the test output, so a clone alone passes.
/// </summary>
public static class VectorFile
{
    /// <summary>The folder holding the vendored vector files in the test output.</summary>
    public static string Folder => Path.Combine(AppContext.BaseDirectory, "Vectors", "cashu-nuts");

    public static string Text(string fileName) => File.ReadAllText(Path.Combine(Folder, fileName));

    public static List<VectorBlock> Load(string fileName)
    {
        var path = Path.Combine(Folder, fileName);
        var blocks = new List<VectorBlock>();
        var heading = "";
        var prose = new List<string>();
        string? language = null;
        var body = new List<string>();
        foreach (var raw in File.ReadAllLines(path))
        {
            if (language is not null)
            {
                if (raw.TrimStart().StartsWith("```", StringComparison.Ordinal))
                {
                    blocks.Add(new VectorBlock(heading, string.Join('\n', prose), language, string.Join('\n', body)));
                    language = null;
                    body.Clear();
                    prose.Clear();
                }
                else
                {
                    body.Add(raw);
                }

                continue;
            }

            if (raw.TrimStart().StartsWith("```", StringComparison.Ordinal))
            {
                language = raw.Trim()[3..];
            }
            else if (raw.StartsWith('#'))
            {
                heading = raw.TrimStart('#').Trim();
                prose.Clear();
            }
            else if (raw.Trim().Length > 0)
            {
                prose.Add(raw.Trim());
            }
        }

        return blocks;
    }

    public static IEnumerable<VectorBlock> Under(this IEnumerable<VectorBlock> blocks, string heading) =>
        blocks.Where(b => b.Heading.Equals(heading, StringComparison.OrdinalIgnoreCase));
}
