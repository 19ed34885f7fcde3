using System.Text.Json.Nodes;
using Coinop.Ecash.MintApi;
using Coinop.Ecash.Keysets;
using Coinop.Market.Mint.Lightning;
using Microsoft.Extensions.Options;
using static Coinop.Market.Mint.MintCore;

namespace Coinop.Market.Mint;

/// <summary>What the mint says about itself: its info (NUT-06) and its keysets and public keys (NUT-01/02).</summary>
public sealed class MintInfo(MintKeysets keysets, ILightningBackend lightning, IOptions<MintOptions> mintOptions, TimeProvider time)
{
    private readonly MintOptions _options = mintOptions.Value;

    // ---- NUT-06 ----

    public InfoResponse GetInfo()
    {
        static JsonObject Supported() => new() { ["supported"] = true };
        JsonObject Methods(bool melt) => new()
        {
            ["methods"] = new JsonArray(new JsonObject
            {
                ["method"] = "bolt11",
                ["unit"] = MintKeysets.Unit,
                ["min_amount"] = 1,
                ["max_amount"] = melt ? _options.MeltMaxSat : _options.MintMaxSat,
                ["options"] = melt ? new JsonObject { ["amountless"] = false } : new JsonObject { ["description"] = true },
            }),
            ["disabled"] = false,
        };
        return new InfoResponse
        {
            // Demo money says so wherever a wallet shows the mint.
            Name = lightning.IsDemoMoney ? _options.Name + " (DEMO MONEY)" : _options.Name,
            Version = "Coinop/" + (typeof(CashuMint).Assembly.GetName().Version?.ToString(3) ?? "0"),
            Description = lightning.IsDemoMoney
                ? "DEMO MONEY: this mint's Lightning backend is fake; its ecash is worth nothing and pays no real invoice."
                : $"The Cashu mint of a Coinop market (Lightning backend: {lightning.Name})",
            Time = time.GetUtcNow().ToUnixTimeSeconds(),
            Nuts = new Dictionary<string, JsonObject>
            {
                ["4"] = Methods(melt: false),
                ["5"] = Methods(melt: true),
                ["7"] = Supported(),
                ["8"] = Supported(),
                ["9"] = Supported(),
                ["12"] = Supported(),
                ["17"] = new JsonObject
                {
                    ["supported"] = new JsonArray(new JsonObject
                    {
                        ["method"] = "bolt11",
                        ["unit"] = MintKeysets.Unit,
                        ["commands"] = new JsonArray([.. MintSubscriptions.Kinds.Select(k => (JsonNode)k)]),
                    }),
                },
                ["19"] = new JsonObject
                {
                    ["ttl"] = null, // the answers are the mint's own records, kept as long as the ecash
                    ["cached_endpoints"] = new JsonArray([.. CachedResponses.Endpoints.Select(e => (JsonNode)new JsonObject { ["method"] = e.Method, ["path"] = e.Path })]),
                },
                ["20"] = Supported(),
            },
        };
    }

    // ---- NUT-01/02 ----

    public async Task<KeysResponse> GetActiveKeysAsync(CancellationToken cancellationToken) =>
        new([.. (await keysets.ListAsync(cancellationToken)).Where(k => k.Record.Active).Select(KeysOf)]);

    public async Task<KeysResponse> GetKeysAsync(string keysetId, CancellationToken cancellationToken)
    {
        var keyset = KeysetId.IsWellFormed(keysetId) ? await keysets.FindAsync(keysetId, cancellationToken) : null;
        return keyset is null
            ? throw new CashuException(CashuErrorCode.KeysetUnknown, $"keyset {Clip(keysetId)} is not known")
            : new KeysResponse([KeysOf(keyset)]);
    }

    public async Task<KeysetsResponse> GetKeysetsAsync(CancellationToken cancellationToken) =>
        new([.. (await keysets.ListAsync(cancellationToken)).Select(k => new KeysetInfo
        {
            Id = k.Record.Id,
            Unit = k.Record.Unit,
            Active = k.Record.Active,
            InputFeePpk = k.Record.InputFeePpk,
        })]);

    private static KeysetKeysResponse KeysOf(LoadedKeyset k) => new()
    {
        Id = k.Record.Id,
        Unit = k.Record.Unit,
        Active = k.Record.Active,
        InputFeePpk = k.Record.InputFeePpk,
        Keys = k.Keys.PublicKeysHex,
    };
}
