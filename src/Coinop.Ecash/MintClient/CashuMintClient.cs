using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Coinop.Ecash.Keysets;
using Coinop.Ecash.MintApi;
using Coinop.Ecash.Tokens;
using Coinop.Ecash.Wallet;

namespace Coinop.Ecash.MintClient;

/// <summary>
/// An HTTP client for any Cashu mint (NUT-01..07, 09, 12): ours under <c>{market}/mint</c> or another one. Mint
/// errors arrive as <see cref="CashuException"/> with the mint's code; keysets are checked against their ids and
/// every signature's DLEQ proof is verified before a proof is built from it.
/// </summary>
public sealed class CashuMintClient(HttpClient http, string mintUrl)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.General);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, KeysetKeys> _keys = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>The mint's base URL without a trailing slash, as it appears in tokens.</summary>
    public string MintUrl { get; } = Token.NormalizeMintUrl(mintUrl);

    public Task<InfoResponse> GetInfoAsync(CancellationToken cancellationToken) => GetAsync<InfoResponse>("/v1/info", cancellationToken);

    public Task<KeysResponse> GetActiveKeysAsync(CancellationToken cancellationToken) => GetAsync<KeysResponse>("/v1/keys", cancellationToken);

    public Task<KeysetsResponse> GetKeysetsAsync(CancellationToken cancellationToken) => GetAsync<KeysetsResponse>("/v1/keysets", cancellationToken);

    public Task<SignaturesResponse> SwapAsync(SwapRequest request, CancellationToken cancellationToken) =>
        PostAsync<SignaturesResponse>("/v1/swap", request, cancellationToken);

    public Task<MintQuoteResponse> CreateMintQuoteAsync(ulong amount, CancellationToken cancellationToken, string unit = "sat") =>
        PostAsync<MintQuoteResponse>("/v1/mint/quote/bolt11", new MintQuoteRequest { Amount = amount, Unit = unit }, cancellationToken);

    public Task<MintQuoteResponse> GetMintQuoteAsync(string quoteId, CancellationToken cancellationToken) =>
        GetAsync<MintQuoteResponse>("/v1/mint/quote/bolt11/" + Uri.EscapeDataString(quoteId), cancellationToken);

    public Task<SignaturesResponse> MintAsync(MintRequest request, CancellationToken cancellationToken) =>
        PostAsync<SignaturesResponse>("/v1/mint/bolt11", request, cancellationToken);

    public Task<MeltQuoteResponse> CreateMeltQuoteAsync(string bolt11, CancellationToken cancellationToken, string unit = "sat") =>
        PostAsync<MeltQuoteResponse>("/v1/melt/quote/bolt11", new MeltQuoteRequest { Request = bolt11, Unit = unit }, cancellationToken);

    public Task<MeltQuoteResponse> GetMeltQuoteAsync(string quoteId, CancellationToken cancellationToken) =>
        GetAsync<MeltQuoteResponse>("/v1/melt/quote/bolt11/" + Uri.EscapeDataString(quoteId), cancellationToken);

    public Task<MeltQuoteResponse> MeltAsync(MeltRequest request, CancellationToken cancellationToken) =>
        PostAsync<MeltQuoteResponse>("/v1/melt/bolt11", request, cancellationToken);

    public Task<CheckStateResponse> CheckStateAsync(IReadOnlyList<string> ys, CancellationToken cancellationToken) =>
        PostAsync<CheckStateResponse>("/v1/checkstate", new CheckStateRequest(ys), cancellationToken);

    public Task<RestoreResponse> RestoreAsync(IReadOnlyList<BlindedMessage> outputs, CancellationToken cancellationToken) =>
        PostAsync<RestoreResponse>("/v1/restore", new RestoreRequest(outputs), cancellationToken);

    /// <summary>The keys of a keyset, fetched once and checked against the keyset id (a mint cannot swap keys under an id).</summary>
    public async Task<KeysetKeys> GetKeysetKeysAsync(string keysetId, CancellationToken cancellationToken)
    {
        if (_keys.TryGetValue(keysetId, out var cached))
        {
            return cached;
        }

        var response = await GetAsync<KeysResponse>("/v1/keys/" + Uri.EscapeDataString(keysetId), cancellationToken);
        var keyset = response.Keysets.FirstOrDefault(k => string.Equals(k.Id, keysetId, StringComparison.OrdinalIgnoreCase))
            ?? throw new CashuException(CashuErrorCode.KeysetUnknown, $"mint {MintUrl} did not return keyset {keysetId}");
        if (!KeysetKeys.TryParse(keyset.Keys, out var keys, out var error))
        {
            throw new CashuException(CashuErrorCode.KeysetUnknown, $"mint {MintUrl} returned a malformed keyset {keysetId}: {error}");
        }

        if (!keys.Matches(keyset.Id, keyset.Unit, keyset.InputFeePpk, keyset.FinalExpiry))
        {
            throw new CashuException(CashuErrorCode.KeysetUnknown, $"mint {MintUrl} returned keys that do not match keyset id {keysetId}");
        }

        _keys[keysetId] = keys;
        return keys;
    }

    /// <summary>The active keyset of <paramref name="unit"/> (the one new outputs must use).</summary>
    public async Task<KeysetInfo> GetActiveKeysetAsync(CancellationToken cancellationToken, string unit = "sat") =>
        (await GetKeysetsAsync(cancellationToken)).Keysets.LastOrDefault(k => k.Active && k.Unit == unit)
        ?? throw new CashuException(CashuErrorCode.KeysetUnknown, $"mint {MintUrl} has no active {unit} keyset");

    /// <summary>Unblinds signatures for outputs this wallet made, verifying every DLEQ proof (a failure rejects them all).</summary>
    public async Task<List<Proof>> UnblindAsync(IReadOnlyList<PendingOutput> outputs, IReadOnlyList<BlindSignature> signatures, CancellationToken cancellationToken)
    {
        var keys = new Dictionary<string, KeysetKeys>(StringComparer.OrdinalIgnoreCase);
        foreach (var id in signatures.Select(s => s.Id).Distinct(StringComparer.OrdinalIgnoreCase))
        {
            keys[id] = await GetKeysetKeysAsync(id, cancellationToken);
        }

        return BlindedOutputs.Unblind(outputs, signatures, id => keys.GetValueOrDefault(id));
    }

    /// <summary>
    /// Swaps <paramref name="proofs"/> of this mint into fresh proofs of its active keyset (less the input fee):
    /// how a receiver makes a token its own, and how the market redeems ecash of another accepted mint.
    /// </summary>
    public async Task<List<Proof>> SwapForFreshAsync(IReadOnlyList<Proof> proofs, CancellationToken cancellationToken)
    {
        var keysets = (await GetKeysetsAsync(cancellationToken)).Keysets;
        var active = keysets.LastOrDefault(k => k.Active && k.Unit == "sat")
            ?? throw new CashuException(CashuErrorCode.KeysetUnknown, $"mint {MintUrl} has no active sat keyset");
        var fees = keysets.ToDictionary(k => k.Id, k => k.InputFeePpk, StringComparer.OrdinalIgnoreCase);
        var fee = Amounts.InputFee(proofs.Select(p => fees.TryGetValue(p.Id, out var f) ? f : 0));
        if (!Amounts.TrySum(proofs.Select(p => p.Amount), out var total) || total <= fee)
        {
            throw new CashuException(CashuErrorCode.TransactionNotBalanced, $"the proofs ({total} sat) do not cover the mint's input fee ({fee} sat)");
        }

        var outputs = BlindedOutputs.Create(active.Id, Amounts.Split(total - fee));
        var response = await SwapAsync(new SwapRequest([.. proofs.Select(p => p with { Dleq = null })], [.. outputs.Select(o => o.Message)]), cancellationToken);
        return await UnblindAsync(outputs, response.Signatures, cancellationToken);
    }

    private async Task<T> GetAsync<T>(string path, CancellationToken cancellationToken)
    {
        using var response = await http.GetAsync(MintUrl + path, cancellationToken);
        return await ReadAsync<T>(response, cancellationToken);
    }

    private async Task<T> PostAsync<T>(string path, object body, CancellationToken cancellationToken)
    {
        using var content = JsonContent.Create(body, body.GetType(), options: Json);
        using var response = await http.PostAsync(MintUrl + path, content, cancellationToken);
        return await ReadAsync<T>(response, cancellationToken);
    }

    private async Task<T> ReadAsync<T>(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.StatusCode == HttpStatusCode.BadRequest)
        {
            ErrorResponse? error = null;
            try
            {
                error = await response.Content.ReadFromJsonAsync<ErrorResponse>(Json, cancellationToken);
            }
            catch (JsonException)
            {
            }

            throw new CashuException(error?.Code ?? CashuErrorCode.BadRequest, error?.Detail ?? $"mint {MintUrl} answered 400");
        }

        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException($"mint {MintUrl} answered {(int)response.StatusCode} {response.ReasonPhrase}", null, response.StatusCode);
        }

        try
        {
            return await response.Content.ReadFromJsonAsync<T>(Json, cancellationToken)
                ?? throw new HttpRequestException($"mint {MintUrl} sent an empty response");
        }
        catch (JsonException ex)
        {
            throw new HttpRequestException($"mint {MintUrl} sent a malformed response: {ex.Message}", ex);
        }
    }
}
