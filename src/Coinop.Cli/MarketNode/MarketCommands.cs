using System.CommandLine;
using Coinop.Cli.Shared;
using Coinop.Market.Gateway;
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
        var lightning = new Option<string>("--lightning") { Description = "Lightning backend of the mint: fake (demo money, invoices paid at once), lnd or cln", DefaultValueFactory = _ => "fake" };
        var lndUrl = new Option<string?>("--lnd-url") { Description = "LND REST address, https://HOST:PORT" };
        var lndMacaroon = new Option<string?>("--lnd-macaroon") { Description = "LND macaroon file (invoices, offchain and info permissions; see docs/operations.md)" };
        var lndCert = new Option<string?>("--lnd-cert") { Description = "LND's TLS certificate file (tls.cert)" };
        var clnUrl = new Option<string?>("--cln-url") { Description = "Core Lightning clnrest address, https://HOST:PORT" };
        var clnRune = new Option<string?>("--cln-rune") { Description = "Core Lightning rune (see docs/operations.md for its restrictions)" };
        var clnCert = new Option<string?>("--cln-cert") { Description = "clnrest's TLS certificate file" };
        var mintMax = new Option<long>("--mint-max-sat") { Description = "Largest amount one mint quote may ask for, in sat", DefaultValueFactory = _ => 1_000_000 };
        var meltMax = new Option<long>("--melt-max-sat") { Description = "Largest invoice one melt may pay, in sat", DefaultValueFactory = _ => 1_000_000 };
        var maxOutstanding = new Option<long>("--mint-max-outstanding-sat")
        {
            Description = "Cap on ecash outstanding against Lightning (minted less melted), in sat; 0 for none",
            DefaultValueFactory = _ => 10_000_000,
        };
        var postgres = new Option<string?>("--postgres") { Description = "PostgreSQL connection string; several market nodes can share it" };
        var publicUrl = new Option<string?>("--public-url") { Description = "The URL consumers and providers use, if not the first of --urls (nodes of one market share it: the balancer's)" };
        var nodeUrl = new Option<string?>("--node-url") { Description = "Where the market's other nodes reach this one (default: the first of --urls)" };
        var hbMin = new Option<double>("--heartbeat-min-ttl") { Description = "Shortest heartbeat TTL in seconds", DefaultValueFactory = _ => 10 };
        var hbGrace = new Option<double>("--heartbeat-grace") { Description = "Extra seconds after a TTL before a provider is silent", DefaultValueFactory = _ => 10 };
        var stopAfter = CliOptions.Duration("--workload-stop-after",
            "How long a provider keeps a workload copy running without an acknowledged heartbeat; the market replaces it after this plus 1% + 1 s; default 6s");
        var checkpointInterval = new Option<double>("--checkpoint-interval") { Description = "Seconds between checkpoints of a checkpointed workload", DefaultValueFactory = _ => 60 };
        var maxCheckpoint = new Option<long>("--max-checkpoint-bytes") { Description = "Largest workload checkpoint stored (encrypted bytes)", DefaultValueFactory = _ => 16 * 1024 * 1024 };
        var maxPrice = new Option<string>("--max-price")
        {
            Description = "Highest price a provider may ask, IN:OUT sats per million tokens; dearer offers get no jobs",
            DefaultValueFactory = _ => "10000:30000",
        };
        var maxContext = new Option<int>("--max-context")
        {
            Description = "Largest context window (tokens) a provider's offer is believed to have when reserving payment",
            DefaultValueFactory = _ => 131_072,
        };
        var maxProviderCpu = new Option<double>("--max-provider-cpu")
        {
            Description = "Most CPU cores workload placement believes one provider offers; larger claims count as this",
            DefaultValueFactory = _ => 64,
        };
        var maxProviderMemory = new Option<long>("--max-provider-memory")
        {
            Description = "Most memory (MB) workload placement believes one provider offers; larger claims count as this",
            DefaultValueFactory = _ => 256 * 1024,
        };
        var unprovenCpu = new Option<double>("--unproven-provider-cpu")
        {
            Description = "Most CPU cores placement believes a provider offers before it has delivered work; then twice the most it kept live",
            DefaultValueFactory = _ => 4,
        };
        var unprovenMemory = new Option<long>("--unproven-provider-memory")
        {
            Description = "Most memory (MB) placement believes a provider offers before it has delivered work; then twice the most it kept live",
            DefaultValueFactory = _ => 8 * 1024,
        };
        var provingTime = CliOptions.Duration("--capacity-proving-time", "How long a copy must have been live on a provider before its size counts as delivered work; default 1m");
        var settleInterval = new Option<double>("--workload-settle-interval")
        {
            Description = "Seconds between settlements of a running paid workload (its time charged, its providers credited)",
            DefaultValueFactory = _ => 60,
        };

        var responseRetention = CliOptions.Duration("--response-retention", "How long Responses API answers stay readable and continuable (GET /v1/responses/ID, previous_response_id); default 1h");
        var command = new Command("market", "Run a market node (OpenAI/Anthropic APIs, provider gateway, Cashu mint)")
        {
            urls, data, enrollment, free, feePercent, acceptMint, lightning, lndUrl, lndMacaroon, lndCert, clnUrl, clnRune, clnCert, mintMax, meltMax,
            maxOutstanding, postgres, publicUrl, nodeUrl, hbMin, hbGrace, stopAfter, checkpointInterval, maxCheckpoint, settleInterval, maxPrice, maxContext, responseRetention,
            maxProviderCpu, maxProviderMemory, unprovenCpu, unprovenMemory, provingTime,
        };
        command.SetAction(async (parse, ct) =>
        {
            if (parse.GetValue(lightning) == "fake" && parse.GetValue(acceptMint) is { Length: > 0 })
            {
                // Change and refunds for real ecash must never be paid in demo ecash.
                throw new CliException("--accept-mint needs a real Lightning backend (--lightning lnd or cln): with --lightning fake this market's ecash is demo money", 2);
            }

            var options = new MarketOptions
            {
                Urls = parse.GetValue(urls)!,
                DataDir = parse.GetValue(data)!,
                Enrollment = parse.GetValue(enrollment),
                Free = parse.GetValue(free),
                FeePercent = parse.GetValue(feePercent),
                AcceptMints = [.. parse.GetValue(acceptMint) ?? []],
                Lightning = parse.GetValue(lightning)!,
                LndUrl = parse.GetValue(lndUrl),
                LndMacaroon = parse.GetValue(lndMacaroon),
                LndCert = parse.GetValue(lndCert),
                ClnUrl = parse.GetValue(clnUrl),
                ClnRune = parse.GetValue(clnRune),
                ClnCert = parse.GetValue(clnCert),
                MintMaxSat = parse.GetValue(mintMax),
                MeltMaxSat = parse.GetValue(meltMax),
                MintMaxOutstandingSat = parse.GetValue(maxOutstanding),
                Postgres = parse.GetValue(postgres),
                PublicUrl = parse.GetValue(publicUrl),
                NodeUrl = parse.GetValue(nodeUrl),
                HeartbeatMinTtl = TimeSpan.FromSeconds(parse.GetValue(hbMin)),
                HeartbeatGrace = TimeSpan.FromSeconds(parse.GetValue(hbGrace)),
                WorkloadStopAfter = parse.GetValue(stopAfter) ?? Core.Workloads.WorkloadTimings.DefaultStopAfter,
                CheckpointInterval = TimeSpan.FromSeconds(parse.GetValue(checkpointInterval)),
                MaxCheckpointBytes = parse.GetValue(maxCheckpoint),
                WorkloadSettleInterval = TimeSpan.FromSeconds(parse.GetValue(settleInterval)),
                MaxPrice = parse.GetValue(maxPrice)!,
                MaxContext = parse.GetValue(maxContext),
                MaxProviderCpu = parse.GetValue(maxProviderCpu),
                MaxProviderMemoryMb = parse.GetValue(maxProviderMemory),
                UnprovenProviderCpu = parse.GetValue(unprovenCpu),
                UnprovenProviderMemoryMb = parse.GetValue(unprovenMemory),
                CapacityProvingTime = parse.GetValue(provingTime) ?? Coinop.Market.Workloads.DeliveryTrustSettings.DefaultProvingTime,
                ResponseRetention = parse.GetValue(responseRetention) ?? TimeSpan.FromHours(1),
            };
            if (options.Postgres is not { Length: > 0 })
            {
                // Told in one line before the host starts (its start would log the failure with a stack trace); the host
                // then claims the store for the process's life.
                try
                {
                    Database.ClaimSqlite(Path.Combine(options.DataDir, "market.db")).Dispose();
                }
                catch (StoreInUseException ex)
                {
                    throw new CliException(ex.Message);
                }
            }

            await using var app = MarketHost.Build(options, b => HostLogging.Configure(b.Logging));
            await app.StartAsync(ct);
            Console.WriteLine($"coinop market listening on {string.Join(", ", app.Urls)} ({(options.Free ? "free" : "paid")}, enrollment {options.Enrollment.ToString().ToLowerInvariant()}, "
                + (options.Lightning == "fake" ? "Lightning fake: DEMO MONEY)" : $"Lightning {options.Lightning})"));
            await app.WaitForShutdownAsync(ct);
            return 0;
        });

        command.Subcommands.Add(CreateEnrollCode());
        command.Subcommands.Add(CreateRotateKeyset());
        command.Subcommands.Add(InstallServiceCommand.Create("market", "Coinop market node", "coinop-market", "/var/lib/coinop/market", TimeSpan.FromSeconds(30), isProvider: false));
        return command;
    }

    private static Command CreateRotateKeyset()
    {
        var data = CliOptions.Data(".coinop/market", "Market data directory");
        var postgres = StoreOption();
        var fee = new Option<long>("--input-fee-ppk") { Description = "Input fee of the new keyset, in parts per thousand per input", DefaultValueFactory = _ => 0 };
        var json = CliOptions.Json();
        var command = new Command("rotate-keyset", "Make a new active mint keyset; the old one still redeems but signs no new ecash") { data, postgres, fee, json };
        command.SetAction(async (parse, ct) =>
        {
            if (parse.GetValue(fee) is < 0 or > 1_000_000)
            {
                throw new CliException("--input-fee-ppk must be between 0 and 1000000", 2);
            }

            await using var database = await OpenStoreAsync(parse.GetValue(data)!, parse.GetValue(postgres), ct);
            var keyset = await MintKeysets.RotateAsync(new MintKeysetStore(database), (ulong)parse.GetValue(fee), TimeProvider.System, ct);
            Console.WriteLine(parse.GetValue(json)
                ? System.Text.Json.JsonSerializer.Serialize(new { id = keyset.Id, unit = keyset.Unit, input_fee_ppk = keyset.InputFeePpk, active = keyset.Active })
                : $"New active keyset {keyset.Id} (input_fee_ppk {keyset.InputFeePpk}); running markets use it from their next request");
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
        var json = CliOptions.Json();
        var command = new Command("enroll-code", "Create an enrollment code for a market started with --enrollment code") { data, postgres, uses, validFor, json };
        command.SetAction(async (parse, ct) =>
        {
            if (parse.GetValue(uses) < 1)
            {
                throw new CliException("--uses must be at least 1", 2);
            }

            await using var database = await OpenStoreAsync(parse.GetValue(data)!, parse.GetValue(postgres), ct);
            EnrollmentCodeRecord record;
            try
            {
                record = EnrollmentCodes.New(parse.GetValue(uses), parse.GetValue(validFor) ?? EnrollmentCodes.DefaultValidity, TimeProvider.System.GetUtcNow());
            }
            catch (ArgumentOutOfRangeException)
            {
                throw new CliException($"--uses must be 1 to {EnrollmentCodes.MaxUses} and --valid-for at most {EnrollmentCodes.MaxValidity.TotalDays:0} days", 2);
            }

            await new ProviderRegistryStore(database).CreateEnrollmentCodeAsync(record, ct);
            Console.WriteLine(parse.GetValue(json)
                ? System.Text.Json.JsonSerializer.Serialize(new { code = record.Code, max_uses = record.MaxUses, expires_at = record.ExpiresAt })
                : record.Code);
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
