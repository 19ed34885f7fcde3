using System.CommandLine;
using System.Security.Cryptography;
using Coinop.Cli.Shared;
using Coinop.Core.Identity;
using Coinop.Market.Hosting;
using Coinop.Market.Mint;
using Coinop.Storage;
using Coinop.Storage.Mint;
using Coinop.Storage.Providers;
using Microsoft.Extensions.Hosting;

namespace Coinop.Cli.MarketNode;

/// <summary><c>coinop market</c>: run a market node, and its operator subcommands.</summary>
public static class MarketCommands
{
    public static Command Create()
    {
        var urls = new Option<string>("--urls") { Description = "Addresses to listen on (';'-separated)", DefaultValueFactory = _ => "http://127.0.0.1:3338" };
        var data = CliOptions.Data(".coinop/market", "Market data directory (SQLite store, mint keys, admin token)");
        var enrollment = new Option<EnrollmentMode>("--enrollment") { Description = "How new providers join: open, or code (needs an enrollment code)", DefaultValueFactory = _ => EnrollmentMode.Open };
        var free = new Option<bool>("--free") { Description = "Serve without payment" };
        var feePercent = new Option<double>("--fee-percent") { Description = "The market's share of each paid job, in percent", DefaultValueFactory = _ => 10 };
        var acceptMint = new Option<string[]>("--accept-mint") { Description = "Also accept ecash from this Cashu mint (repeatable)", AllowMultipleArgumentsPerToken = false };
        var lightning = new Option<string>("--lightning") { Description = "Lightning backend of the mint (fake marks invoices paid at once)", DefaultValueFactory = _ => "fake" };
        var postgres = new Option<string?>("--postgres") { Description = "PostgreSQL connection string; several market nodes can share it" };
        var publicUrl = new Option<string?>("--public-url") { Description = "The URL consumers and providers use, if not the first of --urls" };
        var hbMin = new Option<double>("--heartbeat-min-ttl") { Description = "Shortest heartbeat TTL in seconds", DefaultValueFactory = _ => 10 };
        var hbGrace = new Option<double>("--heartbeat-grace") { Description = "Extra seconds after a TTL before a provider is silent", DefaultValueFactory = _ => 10 };
        var stopAfter = CliOptions.Duration("--workload-stop-after",
            "How long a provider keeps a workload copy running without an acknowledged heartbeat; the market replaces it after this plus 1% + 1 s; default 6s");
        var checkpointInterval = new Option<double>("--checkpoint-interval") { Description = "Seconds between checkpoints of a checkpointed workload", DefaultValueFactory = _ => 60 };
        var maxCheckpoint = new Option<long>("--max-checkpoint-bytes") { Description = "Largest workload checkpoint stored (encrypted bytes)", DefaultValueFactory = _ => 16 * 1024 * 1024 };
        var settleInterval = new Option<double>("--workload-settle-interval")
        {
            Description = "Seconds between settlements of a running paid workload (its time charged, its providers credited)",
            DefaultValueFactory = _ => 60,
        };

        var command = new Command("market", "Run a market node (OpenAI/Anthropic APIs, provider gateway, Cashu mint)")
        {
            urls, data, enrollment, free, feePercent, acceptMint, lightning, postgres, publicUrl, hbMin, hbGrace, stopAfter, checkpointInterval, maxCheckpoint,
            settleInterval,
        };
        command.SetAction(async (parse, ct) =>
        {
            var options = new MarketOptions
            {
                Urls = parse.GetValue(urls)!,
                DataDir = parse.GetValue(data)!,
                Enrollment = parse.GetValue(enrollment),
                Free = parse.GetValue(free),
                FeePercent = parse.GetValue(feePercent),
                AcceptMints = [.. parse.GetValue(acceptMint) ?? []],
                Lightning = parse.GetValue(lightning)!,
                Postgres = parse.GetValue(postgres),
                PublicUrl = parse.GetValue(publicUrl),
                HeartbeatMinTtl = parse.GetValue(hbMin),
                HeartbeatGrace = parse.GetValue(hbGrace),
                WorkloadStopAfter = parse.GetValue(stopAfter) ?? Core.Workloads.WorkloadTimings.DefaultStopAfter,
                CheckpointInterval = parse.GetValue(checkpointInterval),
                MaxCheckpointBytes = parse.GetValue(maxCheckpoint),
                WorkloadSettleInterval = parse.GetValue(settleInterval),
            };
            await using var app = MarketHost.Build(options, b => HostLogging.Configure(b.Logging));
            await app.StartAsync(ct);
            Console.WriteLine($"coinop market listening on {string.Join(", ", app.Urls)} ({(options.Free ? "free" : "paid")}, enrollment {options.Enrollment.ToString().ToLowerInvariant()})");
            await app.WaitForShutdownAsync(ct);
            return 0;
        });

        command.Subcommands.Add(CreateEnrollCode());
        command.Subcommands.Add(CreateRotateKeyset());
        return command;
    }

    private static Command CreateRotateKeyset()
    {
        var data = CliOptions.Data(".coinop/market", "Market data directory");
        var postgres = StoreOption();
        var fee = new Option<long>("--input-fee-ppk") { Description = "Input fee of the new keyset, in parts per thousand per input", DefaultValueFactory = _ => 0 };
        var command = new Command("rotate-keyset", "Make a new active mint keyset; the old one still redeems but signs no new ecash") { data, postgres, fee };
        command.SetAction(async (parse, ct) =>
        {
            if (parse.GetValue(fee) is < 0 or > 1_000_000)
            {
                throw new CliException("--input-fee-ppk must be between 0 and 1000000", 2);
            }

            await using var database = await OpenStoreAsync(parse.GetValue(data)!, parse.GetValue(postgres), ct);
            var keyset = await MintKeysets.RotateAsync(new MintKeysetStore(database), (ulong)parse.GetValue(fee), TimeProvider.System, ct);
            Console.WriteLine($"New active keyset {keyset.Id} (input_fee_ppk {keyset.InputFeePpk}); running markets use it from their next request");
            return 0;
        });
        return command;
    }

    private static Command CreateEnrollCode()
    {
        var data = CliOptions.Data(".coinop/market", "Market data directory");
        var uses = new Option<int>("--uses") { Description = "How many providers may enroll with the code", DefaultValueFactory = _ => 1 };
        var postgres = StoreOption();
        var validFor = CliOptions.Duration("--valid-for", "How long the code stays valid; default 24h");
        var command = new Command("enroll-code", "Create an enrollment code for a market started with --enrollment code") { data, postgres, uses, validFor };
        command.SetAction(async (parse, ct) =>
        {
            if (parse.GetValue(uses) < 1)
            {
                throw new CliException("--uses must be at least 1", 2);
            }

            await using var database = await OpenStoreAsync(parse.GetValue(data)!, parse.GetValue(postgres), ct);
            var now = TimeProvider.System.GetUtcNow();
            var code = "COINOP-" + Base32.EncodeLower(RandomNumberGenerator.GetBytes(10)).ToUpperInvariant();
            var record = new EnrollmentCodeRecord(code, parse.GetValue(uses), 0, now, now + (parse.GetValue(validFor) ?? TimeSpan.FromHours(24)));
            await new ProviderRegistryStore(database).CreateEnrollmentCodeAsync(record, ct);
            Console.WriteLine(code);
            return 0;
        });
        return command;
    }

    private static Option<string?> StoreOption() =>
        new("--postgres") { Description = "The market's PostgreSQL connection string, if it uses one" };

    /// <summary>The store of an existing market: its PostgreSQL database, or the SQLite file in its data directory.</summary>
    private static async Task<Database> OpenStoreAsync(string dataDir, string? postgres, CancellationToken cancellationToken)
    {
        var dbPath = Path.Combine(dataDir, "market.db");
        if (postgres is null && !File.Exists(dbPath))
        {
            throw new CliException($"no market store at {dbPath}: start the market with --data {dataDir} first");
        }

        var database = postgres is not null ? Database.Postgres(postgres) : Database.Sqlite(dbPath);
        try
        {
            await Migrator.MigrateAsync(database, cancellationToken);
            return database;
        }
        catch
        {
            await database.DisposeAsync();
            throw;
        }
    }
}
