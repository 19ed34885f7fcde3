using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Coinop.Cli.Shared;
using Coinop.Provider.Drain;
using Coinop.Provider.Status;
using Spectre.Console;

namespace Coinop.Cli.ProviderAgent;

/// <summary>
/// <c>coinop provider status --data DIR</c>: the agent's own account of itself (the status file it writes to its data
/// directory: link state, models, jobs served, recent errors), whether it is still running, and what the market owes it
/// (asked with a request signed by the provider's key).
/// </summary>
public static class ProviderStatusCommand
{
    public static Command Create(string defaultData)
    {
        var data = CliOptions.Data(defaultData, "Data directory of the provider");
        var market = CliOptions.Market(required: false);
        market.Description = "The market to ask for earnings (default: the one the agent serves)";
        var json = CliOptions.Json();
        var command = new Command("status", "Show the provider running with --data: link, models, jobs served, earnings owed, recent errors") { data, market, json };
        command.SetAction(async (parse, ct) =>
        {
            var dir = parse.GetValue(data)!;
            AgentStatus status;
            try
            {
                status = AgentStatus.Read(dir)
                    ?? throw new CliException($"no status at {AgentStatus.PathIn(dir)}: no provider has run with --data {dir} (or it is older than this command)");
            }
            catch (JsonException ex)
            {
                throw new CliException($"{AgentStatus.PathIn(dir)} is not a provider status file: {ex.Message}");
            }

            var pid = AgentProcess.RunningPid(dir);
            var marketUrl = parse.GetValue(market) ?? status.Market.TrimEnd('/');
            var (earnings, earningsError) = await EarningsAsync(dir, marketUrl, ct);
            if (parse.GetValue(json))
            {
                Console.WriteLine(Json(status, pid, marketUrl, earnings, earningsError).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
                return 0;
            }

            Print(status, pid, marketUrl, earnings, earningsError);
            return 0;
        });
        return command;
    }

    private static async Task<(JsonElement? Earnings, string? Error)> EarningsAsync(string dir, string marketUrl, CancellationToken ct)
    {
        try
        {
            using var key = ProviderMoneyCommands.LoadKey(dir);
            using var http = new HttpClient { BaseAddress = new Uri(marketUrl + "/"), Timeout = TimeSpan.FromSeconds(15) };
            var (code, body) = await ProviderMoneyCommands.SendSignedAsync(http, key, HttpMethod.Get, "/api/provider/earnings", null, ct);
            if (code != HttpStatusCode.OK)
            {
                return (null, $"{(int)code} {ApiErrorText.MessageOf(body)}");
            }

            using var doc = JsonDocument.Parse(body);
            return (doc.RootElement.Clone(), null);
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or CliException or JsonException or UriFormatException)
        {
            return (null, ex.Message); // the status is still worth showing when the market cannot be asked
        }
    }

    /// <summary>The stable JSON of <c>provider status --json</c> (docs/api.md).</summary>
    private static JsonObject Json(AgentStatus s, int? pid, string market, JsonElement? earnings, string? earningsError) => new()
    {
        ["provider_id"] = s.ProviderId,
        ["running"] = pid is not null,
        ["pid"] = pid,
        ["market"] = market,
        ["link"] = new JsonObject { ["state"] = pid is null && s.Link.State != "stopped" ? "dead" : s.Link.State, ["since"] = s.Link.Since },
        ["started_at"] = s.StartedAt,
        ["updated_at"] = s.UpdatedAt,
        ["models"] = new JsonArray([.. s.Models.Select(m => (JsonNode)new JsonObject
        {
            ["model"] = m.Model, ["backend"] = m.Backend, ["input_price"] = m.InputPrice, ["output_price"] = m.OutputPrice,
        })]),
        ["jobs"] = new JsonObject { ["served"] = s.Jobs.Served, ["failed"] = s.Jobs.Failed, ["cancelled"] = s.Jobs.Cancelled, ["in_flight"] = s.Jobs.InFlight },
        ["earnings"] = earnings is { } e
            ? new JsonObject
            {
                ["earned_msat"] = e.GetProperty("earned_msat").GetInt64(),
                ["paid_out_msat"] = e.GetProperty("paid_out_msat").GetInt64(),
                ["owed_msat"] = e.GetProperty("owed_msat").GetInt64(),
                ["payable_sat"] = e.GetProperty("payable_sat").GetInt64(),
            }
            : null,
        ["earnings_error"] = earningsError,
        ["recent_errors"] = new JsonArray([.. s.RecentErrors.Select(r => (JsonNode)new JsonObject { ["at"] = r.At, ["level"] = r.Level, ["message"] = r.Message })]),
    };

    private static void Print(AgentStatus s, int? pid, string market, JsonElement? earnings, string? earningsError)
    {
        var inv = CultureInfo.InvariantCulture;
        var state = pid is null && s.Link.State != "stopped" ? $"dead (last seen {s.Link.State})" : s.Link.State;
        Console.WriteLine($"provider   {s.ProviderId ?? "-"}");
        Console.WriteLine(pid is { } p ? $"running    yes (pid {p}), since {s.StartedAt.ToString("u", inv)}" : $"running    no (status from {s.UpdatedAt.ToString("u", inv)})");
        Console.WriteLine($"market     {market}");
        Console.WriteLine($"link       {state} since {s.Link.Since.ToString("u", inv)}");
        Console.WriteLine(string.Create(inv, $"jobs       {s.Jobs.Served} served, {s.Jobs.Failed} failed, {s.Jobs.Cancelled} cancelled, {s.Jobs.InFlight} in flight"));
        Console.WriteLine(earnings is { } e
            ? string.Create(inv, $"earnings   {e.GetProperty("earned_msat").GetInt64() / 1000m:0.###} sat earned, {e.GetProperty("paid_out_msat").GetInt64() / 1000m:0.###} paid out, {e.GetProperty("owed_msat").GetInt64() / 1000m:0.###} owed ({e.GetProperty("payable_sat").GetInt64()} sat payable now)")
            : $"earnings   unavailable: {earningsError}");
        if (s.Models.Count == 0)
        {
            Console.WriteLine("models     none");
        }
        else
        {
            if (Console.IsOutputRedirected)
            {
                AnsiConsole.Profile.Width = 240;
            }

            var table = new Table().Border(TableBorder.Rounded).AddColumn("Model").AddColumn("Backend").AddColumn(new TableColumn("Price (sat/Mtok in:out)").RightAligned());
            foreach (var m in s.Models)
            {
                table.AddRow(Markup.Escape(m.Model), Markup.Escape(m.Backend), string.Create(inv, $"{m.InputPrice:0.###}:{m.OutputPrice:0.###}"));
            }

            AnsiConsole.Write(table);
        }

        Console.WriteLine(s.RecentErrors.Count == 0 ? "errors     none recently" : "recent errors");
        foreach (var r in s.RecentErrors.TakeLast(10))
        {
            Console.WriteLine($"  {r.At.ToString("u", inv)}  {r.Level,-8} {r.Message}");
        }
    }
}
