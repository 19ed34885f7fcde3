using System.Data.Common;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Coinop.Ecash;
using Coinop.Ecash.Crypto;
using Coinop.Ecash.Keysets;
using Coinop.Ecash.Lightning;
using Coinop.Ecash.MintApi;
using Coinop.Ecash.Tokens;
using Coinop.Market.Hosting;
using Coinop.Market.Mint.Lightning;
using Coinop.Storage;
using Coinop.Storage.Mint;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Coinop.Market.Mint;

/// <summary>The outcome of <see cref="CashuMint.RedeemAsync"/>: the proofs' total and the mint's input fee, or a Cashu error.</summary>
public sealed record RedeemResult(ulong Amount, ulong InputFee, int? ErrorCode = null, string? Detail = null)
{
    public bool Succeeded => ErrorCode is null;

    /// <summary>What the proofs are worth to the market after the input fee.</summary>
    public ulong NetAmount => Amount - InputFee;
}

/// <summary>Ecash the mint issued to the market itself: the proofs and the same as a <c>cashuB</c> token.</summary>
public sealed record IssuedEcash(IReadOnlyList<Proof> Proofs, string Token, ulong Amount);

/// <summary>Ecash made but not yet recorded as issued (<see cref="CashuMint.PrepareIssueAsync"/>).</summary>
public sealed class PreparedEcash
{
    internal PreparedEcash(LoadedKeyset keyset, IReadOnlyList<SelfIssuedProof> made)
    {
        Keyset = keyset;
        Made = made;
    }

    public ulong Amount => Made.Aggregate(0UL, (sum, m) => checked(sum + m.Proof.Amount));

    internal LoadedKeyset Keyset { get; }

    internal IReadOnlyList<SelfIssuedProof> Made { get; }
}

/// <summary>Runs inside the transaction that spends proofs, so its writes commit or roll back with the spend.</summary>
public delegate Task SpendCallback(DbConnection connection, DbTransaction transaction, RedeemResult spent, CancellationToken cancellationToken);

/// <summary>
/// The market's Cashu mint: the NUT-03/04/05/07/09 operations behind <c>/mint</c>, and the API the payment layer
/// uses (<see cref="RedeemAsync"/> to take payment in this mint's ecash, <see cref="IssueAsync(ulong, CancellationToken)"/> to hand
/// out change, refunds and payouts). Every operation that spends proofs or signs outputs does so in ONE store
/// transaction: the spent set (a primary key on Y) and the signed set (a primary key on B_) make a double spend or
/// a double issue impossible, across requests and across market nodes. Failures raise <see cref="CashuException"/>
/// with the NUT error code.
/// </summary>
public sealed partial class CashuMint(
    Database database,
    MintKeysets keysets,
    IMintQuoteStore quotes,
    IMintProofStore proofs,
    ILightningBackend lightning,
    IOptions<MintOptions> mintOptions,
    MarketOptions marketOptions,
    Microsoft.AspNetCore.Hosting.Server.IServer server,
    TimeProvider time,
    MintMetrics metrics,
    ILogger<CashuMint> logger)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.General);
    private readonly MintOptions _options = mintOptions.Value;

    /// <summary>This mint's URL as wallets should put it in tokens.</summary>
    /// <remarks>Without <c>--public-url</c> it is the address Kestrel actually bound (which differs from the option with port 0).</remarks>
    public string MintUrl =>
        (marketOptions.PublicUrl?.TrimEnd('/')
         ?? server.Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()?.Addresses.FirstOrDefault()?.TrimEnd('/')
         ?? marketOptions.EffectivePublicUrl) + "/mint";

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

    // ---- NUT-03 ----

    public async Task<SignaturesResponse> SwapAsync(SwapRequest request, CancellationToken cancellationToken)
    {
        Require(request.Inputs is not null && request.Outputs is not null, "inputs and outputs are required");
        var inputs = await ValidateInputsAsync(request.Inputs!, cancellationToken);
        var outputs = await ValidateOutputsAsync(request.Outputs!, cancellationToken);
        if (outputs.Count > 0 && outputs[0].Keyset.Record.Unit != inputs.Unit)
        {
            throw new CashuException(CashuErrorCode.InputsOutputsUnitMismatch, "inputs and outputs are not of the same unit");
        }

        var outputSum = SumOrThrow(outputs.Select(o => o.Message.Amount));
        if (inputs.Amount - inputs.Fee != outputSum)
        {
            throw new CashuException(CashuErrorCode.TransactionNotBalanced,
                $"inputs ({inputs.Amount}) minus fees ({inputs.Fee}) must equal outputs ({outputSum})");
        }

        var signatures = Sign(outputs);
        var now = time.GetUtcNow();
        await database.WriteAsync(async (c, t) =>
        {
            await SpendAsync(c, t, inputs, pending: false, meltQuoteId: null, now, cancellationToken);
            await RecordSignaturesAsync(c, t, outputs, signatures, now, cancellationToken);
        }, cancellationToken);
        metrics.ProofsSpent(inputs.Proofs.Count);
        metrics.SignaturesIssued(signatures.Length);
        return new SignaturesResponse(signatures);
    }

    // ---- NUT-04 / NUT-23 ----

    public async Task<MintQuoteResponse> CreateMintQuoteAsync(MintQuoteRequest request, CancellationToken cancellationToken)
    {
        RequireUnit(request.Unit);
        if (request.Pubkey is not null && !Nut20.IsValidPubkey(request.Pubkey))
        {
            throw new CashuException(CashuErrorCode.MintPubkeyInvalid, "pubkey must be a compressed secp256k1 public key (33 bytes, hex)");
        }

        var outstanding = await quotes.OutstandingSatAsync(time.GetUtcNow(), cancellationToken);
        if (MintLimits.CheckMint(request.Amount, (ulong)_options.MintMaxSat, outstanding, (ulong)_options.MaxOutstandingSat) is { } limit)
        {
            throw new CashuException(CashuErrorCode.AmountOutOfLimitRange, limit);
        }

        var ttl = _options.MintQuoteTtl;
        LightningInvoice invoice;
        try
        {
            invoice = await lightning.CreateInvoiceAsync(request.Amount, request.Description, ttl, cancellationToken);
        }
        catch (Exception ex) when (ex is not (OperationCanceledException or LightningUnavailableException))
        {
            throw new LightningUnavailableException("the mint's Lightning node did not create an invoice: " + ex.Message, ex);
        }

        var now = time.GetUtcNow();
        var quote = new MintQuoteRecord(NewQuoteId(), "bolt11", invoice.Bolt11, invoice.PaymentHash, request.Amount, MintKeysets.Unit,
            MintQuoteState.Unpaid, now, now + ttl, Pubkey: request.Pubkey?.ToLowerInvariant());
        await quotes.InsertMintQuoteAsync(quote, cancellationToken);
        return ToResponse(quote);
    }

    public async Task<MintQuoteResponse> GetMintQuoteAsync(string quoteId, CancellationToken cancellationToken) =>
        ToResponse(await RefreshMintQuoteAsync(quoteId, answerWhenUnreachable: true, cancellationToken));

    public async Task<SignaturesResponse> MintAsync(MintRequest request, CancellationToken cancellationToken)
    {
        Require(request.Quote is not null && request.Outputs is not null, "quote and outputs are required");
        var quote = await RefreshMintQuoteAsync(request.Quote!, answerWhenUnreachable: false, cancellationToken);
        switch (quote.State)
        {
            case MintQuoteState.Issued:
                throw new CashuException(CashuErrorCode.QuoteAlreadyIssued, "the quote has already been issued");
            case MintQuoteState.Unpaid when time.GetUtcNow() >= quote.ExpiresAt:
                throw new CashuException(CashuErrorCode.QuoteExpired, "the quote has expired");
            case MintQuoteState.Unpaid:
                throw new CashuException(CashuErrorCode.QuoteNotPaid, "the quote's invoice is not paid");
        }

        if (quote.Pubkey is { } pubkey && !Nut20.Verify(quote.Id, request.Outputs!.Select(o => o?.B ?? ""), pubkey, request.Signature))
        {
            throw new CashuException(CashuErrorCode.MintSignatureInvalid, "this quote was made with a pubkey: the mint request needs a valid signature by its key (NUT-20)");
        }

        var outputs = await ValidateOutputsAsync(request.Outputs!, cancellationToken);
        var outputSum = SumOrThrow(outputs.Select(o => o.Message.Amount));
        if (outputSum != quote.Amount)
        {
            throw new CashuException(CashuErrorCode.TransactionNotBalanced, $"outputs ({outputSum}) must equal the quote amount ({quote.Amount})");
        }

        var signatures = Sign(outputs);
        var now = time.GetUtcNow();
        await database.WriteAsync(async (c, t) =>
        {
            if (!await quotes.TryIssueMintQuoteAsync(c, t, quote.Id, now, cancellationToken))
            {
                throw new CashuException(CashuErrorCode.QuoteAlreadyIssued, "the quote has already been issued");
            }

            await RecordSignaturesAsync(c, t, outputs, signatures, now, cancellationToken);
        }, cancellationToken);
        metrics.SignaturesIssued(signatures.Length);
        return new SignaturesResponse(signatures);
    }

    // ---- NUT-05 / NUT-23 / NUT-08 ----

    public async Task<MeltQuoteResponse> CreateMeltQuoteAsync(MeltQuoteRequest request, CancellationToken cancellationToken)
    {
        RequireUnit(request.Unit);
        Require(!string.IsNullOrWhiteSpace(request.Request), "request (a bolt11 invoice) is required");
        if (!Bolt11Invoice.TryParse(request.Request, out var invoice, out var error))
        {
            throw BadRequest("the request is not a valid bolt11 invoice: " + error);
        }

        if (invoice!.AmountMsat is not { } amountMsat)
        {
            throw new CashuException(CashuErrorCode.AmountlessInvoiceNotSupported, "invoices without an amount are not supported");
        }

        Bolt11Network network;
        try
        {
            network = await lightning.GetNetworkAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is not (OperationCanceledException or LightningUnavailableException))
        {
            throw new LightningUnavailableException("the mint's Lightning node does not answer: " + ex.Message, ex);
        }

        if (invoice.Network != network)
        {
            throw BadRequest($"the invoice is for {invoice.Network}; this mint's Lightning node is on {network}");
        }

        var now = time.GetUtcNow();
        if (now >= invoice.ExpiresAt)
        {
            throw BadRequest("the invoice has expired");
        }

        var amount = invoice.AmountSatRoundedUp!.Value;
        if (MintLimits.CheckMelt(amount, (ulong)_options.MeltMaxSat) is { } limit)
        {
            throw new CashuException(CashuErrorCode.AmountOutOfLimitRange, limit);
        }

        if (await quotes.IsPaymentHashPaidAsync(invoice.PaymentHashHex, cancellationToken))
        {
            throw new CashuException(CashuErrorCode.InvoiceAlreadyPaid, "the invoice is already paid");
        }

        // An invoice of this mint's own quote settles internally: no Lightning, no routing fee.
        var own = await quotes.FindMintQuoteByPaymentHashAsync(invoice.PaymentHashHex, cancellationToken);
        var feeReserve = MeltFees.FeeReserveSat(amountMsat, _options.FeeReservePercent, (ulong)_options.FeeReserveMinSat, internalSettlement: own is not null);
        var quote = new MeltQuoteRecord(NewQuoteId(), "bolt11", invoice.Text, invoice.PaymentHashHex, amount, feeReserve,
            MintKeysets.Unit, MeltQuoteState.Unpaid, now, now + _options.MeltQuoteTtl, now);
        await quotes.InsertMeltQuoteAsync(quote, cancellationToken);
        return ToResponse(quote);
    }

    public async Task<MeltQuoteResponse> GetMeltQuoteAsync(string quoteId, CancellationToken cancellationToken) =>
        ToResponse(await quotes.FindMeltQuoteAsync(quoteId, cancellationToken) ?? throw UnknownQuote());

    public async Task<MeltQuoteResponse> MeltAsync(MeltRequest request, CancellationToken cancellationToken)
    {
        Require(request.Quote is not null && request.Inputs is not null, "quote and inputs are required");
        var quote = await quotes.FindMeltQuoteAsync(request.Quote!, cancellationToken) ?? throw UnknownQuote();
        switch (quote.State)
        {
            case MeltQuoteState.Paid:
                throw new CashuException(CashuErrorCode.InvoiceAlreadyPaid, "the invoice is already paid");
            case MeltQuoteState.Pending:
                throw new CashuException(CashuErrorCode.QuotePending, "the quote is being paid");
        }

        if (time.GetUtcNow() >= quote.ExpiresAt)
        {
            throw new CashuException(CashuErrorCode.QuoteExpired, "the quote has expired");
        }

        var inputs = await ValidateInputsAsync(request.Inputs!, cancellationToken);
        var blanks = request.Outputs is { Count: > 0 } o ? await ValidateOutputsAsync(o, cancellationToken, blank: true) : [];
        var needed = (UInt128)quote.Amount + quote.FeeReserve + inputs.Fee;
        if (inputs.Amount < needed)
        {
            throw new CashuException(CashuErrorCode.TransactionNotBalanced,
                $"inputs ({inputs.Amount}) must cover the amount ({quote.Amount}), fee reserve ({quote.FeeReserve}) and input fees ({inputs.Fee})");
        }

        var now = time.GetUtcNow();
        var changeOutputs = blanks.Count > 0 ? JsonSerializer.Serialize(blanks.Select(b => b.Message), Json) : null;
        var own = await quotes.FindMintQuoteByPaymentHashAsync(quote.PaymentHash, cancellationToken);
        if (own is not null)
        {
            return ToResponse(await MeltInternallyAsync(quote with { InputAmount = inputs.Amount, InputFee = inputs.Fee, ChangeOutputs = changeOutputs },
                own, inputs, cancellationToken));
        }

        try
        {
            await database.WriteAsync(async (c, t) =>
            {
                await SpendAsync(c, t, inputs, pending: true, quote.Id, now, cancellationToken);
                if (!await quotes.TryStartMeltAsync(c, t, quote.Id, inputs.Amount, inputs.Fee, changeOutputs, now, cancellationToken))
                {
                    throw new CashuException(CashuErrorCode.QuotePending, "the quote is already being paid");
                }
            }, cancellationToken);
        }
        catch (Exception ex) when (Database.IsUniqueViolation(ex))
        {
            // The store holds one PENDING or PAID melt per payment hash: the same invoice is never paid twice,
            // also when two market nodes take two quotes for it at once.
            throw new CashuException(CashuErrorCode.QuotePending, "another melt is already paying this invoice");
        }

        PaymentResult payment;
        using (var waited = new CancellationTokenSource(_options.MeltWaitTime, time))
        using (var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, waited.Token))
        {
            try
            {
                payment = await lightning.PayInvoiceAsync(Bolt11Invoice.Parse(quote.Request), quote.FeeReserve, linked.Token);
            }
            catch (LightningUnavailableException ex)
            {
                // The node was never reached: nothing left, so the proofs are free again and the wallet hears 503.
                await SettleMeltAsync(quote.Id, new PaymentResult(PaymentState.Failed, Error: ex.Message), CancellationToken.None);
                throw;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // Not definitive within the wait: the wallet hears PENDING; recovery follows the payment to its end.
                payment = new PaymentResult(PaymentState.Pending);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // Whether the payment left is unknown: keep the proofs locked; recovery asks the backend later.
                LogPaymentUnknown(logger, quote.Id, ex);
                return ToResponse(await quotes.FindMeltQuoteAsync(quote.Id, cancellationToken) ?? quote);
            }
        }

        var settled = await SettleMeltAsync(quote.Id, payment, cancellationToken);
        if (payment.State == PaymentState.Failed)
        {
            throw new CashuException(CashuErrorCode.LightningPaymentFailed, "the Lightning payment failed: " + (payment.Error ?? "unknown reason"));
        }

        return ToResponse(settled);
    }

    /// <summary>
    /// Pays an invoice of this mint's own mint quote without Lightning: in ONE transaction the inputs are spent, the
    /// mint quote becomes PAID (so its owner can mint) and the melt PAID with change for the whole fee reserve.
    /// </summary>
    private async Task<MeltQuoteRecord> MeltInternallyAsync(MeltQuoteRecord quote, MintQuoteRecord own, ValidInputs inputs, CancellationToken cancellationToken)
    {
        if (own.Amount != quote.Amount)
        {
            throw new CashuException(CashuErrorCode.AmountMismatch, $"the invoice asks {quote.Amount} sat but its mint quote is for {own.Amount}");
        }

        var change = await SignChangeAsync(quote, feePaid: 0, cancellationToken);
        var now = time.GetUtcNow();
        try
        {
            await database.WriteAsync(async (c, t) =>
            {
                await SpendAsync(c, t, inputs, pending: true, quote.Id, now, cancellationToken);
                if (!await quotes.TryStartMeltAsync(c, t, quote.Id, inputs.Amount, inputs.Fee, quote.ChangeOutputs, now, cancellationToken))
                {
                    throw new CashuException(CashuErrorCode.QuotePending, "the quote is already being paid");
                }

                if (!await quotes.MarkMintQuotePaidAsync(c, t, own.Id, now, cancellationToken))
                {
                    throw new CashuException(CashuErrorCode.InvoiceAlreadyPaid, "the invoice is already paid");
                }

                await proofs.SettlePendingAsync(c, t, quote.Id, now, cancellationToken);
                if (change.Outputs.Count > 0)
                {
                    await RecordSignaturesAsync(c, t, change.Outputs, change.Signatures, now, cancellationToken);
                }

                await quotes.CompleteMeltAsync(c, t, quote.Id, 0, null,
                    change.Signatures.Count > 0 ? JsonSerializer.Serialize(change.Signatures, Json) : null, now, cancellationToken);
            }, cancellationToken);
        }
        catch (Exception ex) when (Database.IsUniqueViolation(ex))
        {
            throw new CashuException(CashuErrorCode.InvoiceAlreadyPaid, "the invoice is already paid or being paid");
        }

        metrics.ProofsSpent(inputs.Proofs.Count);
        return await quotes.FindMeltQuoteAsync(quote.Id, cancellationToken) ?? quote;
    }

    /// <summary>
    /// Finishes a PENDING melt from its payment's outcome (<see cref="MeltResolution"/>): paid → inputs SPENT, change
    /// signed; definitively failed → locks released, quote UNPAID again; in flight or unknown → left PENDING. Used
    /// right after paying and by recovery.
    /// </summary>
    public async Task<MeltQuoteRecord> SettleMeltAsync(string quoteId, PaymentResult payment, CancellationToken cancellationToken)
    {
        var quote = await quotes.FindMeltQuoteAsync(quoteId, cancellationToken) ?? throw UnknownQuote();
        var action = MeltResolution.Decide(payment.State, mayPayAgain: false);
        if (quote.State != MeltQuoteState.Pending || action == MeltAction.KeepPending)
        {
            return quote;
        }

        var now = time.GetUtcNow();
        if (action == MeltAction.Settle)
        {
            var change = await SignChangeAsync(quote, payment.FeePaidSat, cancellationToken);
            await database.WriteAsync(async (c, t) =>
            {
                // The quote leaves PENDING first: a pass on another node (or the request itself) that got there first
                // settled it already, and then nothing of this one is written.
                if (!await quotes.CompleteMeltAsync(c, t, quote.Id, payment.FeePaidSat, payment.Preimage,
                    change.Signatures.Count > 0 ? JsonSerializer.Serialize(change.Signatures, Json) : null, now, cancellationToken))
                {
                    return;
                }

                await proofs.SettlePendingAsync(c, t, quote.Id, now, cancellationToken);
                if (change.Outputs.Count > 0)
                {
                    await RecordSignaturesAsync(c, t, change.Outputs, change.Signatures, now, cancellationToken);
                }
            }, cancellationToken);
        }
        else
        {
            await database.WriteAsync(async (c, t) =>
            {
                if (await quotes.ResetMeltAsync(c, t, quote.Id, now, cancellationToken))
                {
                    await proofs.ReleasePendingAsync(c, t, quote.Id, cancellationToken);
                }
            }, cancellationToken);
        }

        return await quotes.FindMeltQuoteAsync(quote.Id, cancellationToken) ?? quote;
    }

    // ---- NUT-07 ----

    public async Task<CheckStateResponse> CheckStateAsync(CheckStateRequest request, CancellationToken cancellationToken)
    {
        Require(request.Ys is not null, "Ys is required");
        if (request.Ys!.Count > _options.MaxInputs)
        {
            throw new CashuException(CashuErrorCode.MaxInputsExceeded, $"at most {_options.MaxInputs} Ys per request");
        }

        var ys = request.Ys.Select(y => Secp256k1.TryParsePoint(y, out _) ? Convert.FromHexString(y) : throw BadRequest($"Y '{Clip(y)}' is not a compressed point")).ToList();
        var states = (await proofs.StatesAsync(ys, cancellationToken)).ToDictionary(s => Convert.ToHexStringLower(s.Y));
        return new CheckStateResponse([.. request.Ys.Select(y => states.TryGetValue(y.ToLowerInvariant(), out var s)
            ? new ProofStateEntry(y, s.State, s.Witness)
            : new ProofStateEntry(y, ProofState.Unspent, null))]);
    }

    // ---- NUT-09 ----

    public async Task<RestoreResponse> RestoreAsync(RestoreRequest request, CancellationToken cancellationToken)
    {
        Require(request.Outputs is not null && request.Outputs.All(o => o is not null), "outputs are required");
        if (request.Outputs!.Count > _options.MaxOutputs)
        {
            throw new CashuException(CashuErrorCode.MaxOutputsExceeded, $"at most {_options.MaxOutputs} outputs per request");
        }

        var bs = request.Outputs.Select(o => Secp256k1.TryParsePoint(o.B, out _) ? Convert.FromHexString(o.B) : throw BadRequest($"B_ '{Clip(o.B)}' is not a compressed point")).ToList();
        var found = (await proofs.FindSignaturesAsync(bs, cancellationToken)).ToDictionary(s => Convert.ToHexStringLower(s.B));
        var outputs = new List<BlindedMessage>();
        var signatures = new List<BlindSignature>();
        foreach (var o in request.Outputs)
        {
            if (found.TryGetValue(o.B.ToLowerInvariant(), out var s))
            {
                outputs.Add(o with { Amount = s.Amount, Id = s.KeysetId });
                signatures.Add(new BlindSignature { Amount = s.Amount, Id = s.KeysetId, C = s.C, Dleq = new DleqProof { E = s.DleqE, S = s.DleqS } });
            }
        }

        return new RestoreResponse(outputs, signatures);
    }

    // ---- The payment layer's API ----

    /// <summary>
    /// Takes payment in this mint's ecash: verifies the proofs (signatures, known sat keyset, no duplicate secrets,
    /// valid amounts, no spending conditions) and marks them SPENT in one store transaction. When
    /// <paramref name="onSpent"/> is given it runs inside that same transaction (e.g. to credit a ledger), so the
    /// spend and the credit commit together or not at all; if it throws, nothing is spent and the exception
    /// propagates. Returns the amount and input fee, or the Cashu error code (e.g. 11001 for a double spend).
    /// </summary>
    public async Task<RedeemResult> RedeemAsync(IReadOnlyList<Proof> proofsToSpend, SpendCallback? onSpent, CancellationToken cancellationToken)
    {
        try
        {
            var inputs = await ValidateInputsAsync(proofsToSpend, cancellationToken);
            var result = new RedeemResult(inputs.Amount, inputs.Fee);
            await database.WriteAsync(async (c, t) =>
            {
                await SpendAsync(c, t, inputs, pending: false, meltQuoteId: null, time.GetUtcNow(), cancellationToken);
                if (onSpent is not null)
                {
                    await onSpent(c, t, result, cancellationToken);
                }
            }, cancellationToken);
            metrics.ProofsSpent(inputs.Proofs.Count);
            return result;
        }
        catch (CashuException ex)
        {
            return new RedeemResult(0, 0, ex.Code, ex.Detail);
        }
    }

    /// <summary>Issues fresh ecash of the active keyset worth <paramref name="amount"/> sat to the market itself, in its own transaction.</summary>
    public async Task<IssuedEcash> IssueAsync(ulong amount, CancellationToken cancellationToken)
    {
        var prepared = await PrepareIssueAsync(amount, cancellationToken);
        return await database.WriteAsync((c, t) => IssueAsync(c, t, prepared, cancellationToken), cancellationToken);
    }

    /// <summary>
    /// As <see cref="IssueAsync(ulong, CancellationToken)"/> inside the caller's transaction (e.g. the one that debits a
    /// balance): the signatures are recorded there, so if it rolls back the ecash was never issued in the store's eyes.
    /// The returned proofs carry DLEQ proofs with their blinding factors, so any receiving wallet can check them.
    /// </summary>
    public async Task<IssuedEcash> IssueAsync(DbConnection connection, DbTransaction transaction, ulong amount, CancellationToken cancellationToken) =>
        await IssueAsync(connection, transaction, await PrepareIssueAsync(amount, cancellationToken), cancellationToken);

    /// <summary>
    /// The elliptic-curve work of issuing <paramref name="amount"/> sat to the market (about 0.3 ms a proof), done
    /// before the transaction that records it so the store's write lock is not held meanwhile. The mint makes the
    /// proofs for itself (<see cref="MintKeyset.IssueToSelf"/>) rather than going through a wallet's blind-sign-unblind
    /// round trip with itself.
    /// </summary>
    public async Task<PreparedEcash> PrepareIssueAsync(ulong amount, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfZero(amount);
        return PrepareIssue(await keysets.ActiveAsync(cancellationToken), Amounts.Split(amount));
    }

    /// <summary>One proof per amount of <paramref name="amounts"/> (each a power of two) with the keyset at hand: CPU work only, for callers that choose where it runs.</summary>
    public static PreparedEcash PrepareIssue(LoadedKeyset keyset, IEnumerable<ulong> amounts)
    {
        return new PreparedEcash(keyset, [.. amounts.Select(keyset.Keys.IssueToSelf)]);
    }

    /// <summary>Records prepared ecash as issued inside the caller's transaction, as a <c>cashuB</c> token too; fails if its keyset was retired meanwhile.</summary>
    public async Task<IssuedEcash> IssueAsync(DbConnection connection, DbTransaction transaction, PreparedEcash prepared, CancellationToken cancellationToken)
    {
        var issued = await RecordIssuedAsync(connection, transaction, prepared, cancellationToken);
        return new IssuedEcash(issued, TokenCodec.EncodeV4(new Token(MintUrl, MintKeysets.Unit, issued)), prepared.Amount);
    }

    /// <summary>Records prepared ecash as issued inside the caller's transaction and returns its proofs.</summary>
    public async Task<IReadOnlyList<Proof>> RecordIssuedAsync(DbConnection connection, DbTransaction transaction, PreparedEcash prepared, CancellationToken cancellationToken)
    {
        var outputs = prepared.Made.Select(m => new ValidOutput(m.Message, m.Blinded, prepared.Keyset)).ToList();
        await RecordSignaturesAsync(connection, transaction, outputs, [.. prepared.Made.Select(m => m.Signature)], time.GetUtcNow(), cancellationToken);
        metrics.SignaturesIssued(outputs.Count);
        return [.. prepared.Made.Select(m => m.Proof)];
    }

    /// <summary>Resolves the keyset ids of a token for this mint (short V4 ids to full ones).</summary>
    public async Task<Token> ResolveTokenAsync(Token token, CancellationToken cancellationToken)
    {
        string? problem = null;
        Token? Resolve(IReadOnlyList<LoadedKeyset> known)
        {
            try
            {
                return token.ResolveKeysetIds([.. known.Select(k => k.Record.Id)]);
            }
            catch (FormatException ex)
            {
                problem = ex.Message;
                return null;
            }
        }

        return await keysets.ForInputsAsync(Resolve, cancellationToken) ?? throw new CashuException(CashuErrorCode.KeysetUnknown, problem!);
    }

    // ---- Validation, signing, spending ----

    private sealed record ValidInput(Proof Proof, byte[] Y, LoadedKeyset Keyset);

    private sealed record ValidInputs(IReadOnlyList<ValidInput> Proofs, ulong Amount, ulong Fee, string Unit);

    private sealed record ValidOutput(BlindedMessage Message, CurvePoint Point, LoadedKeyset Keyset);

    private async Task<ValidInputs> ValidateInputsAsync(IReadOnlyList<Proof> inputs, CancellationToken cancellationToken)
    {
        if (inputs.Count == 0)
        {
            throw BadRequest("no inputs");
        }

        if (inputs.Count > _options.MaxInputs)
        {
            throw new CashuException(CashuErrorCode.MaxInputsExceeded, $"at most {_options.MaxInputs} inputs per request");
        }

        if (inputs.Any(p => p is null || p.Secret is null || p.Id is null || p.C is null))
        {
            throw BadRequest("every input needs amount, id, secret and C");
        }

        if (inputs.Select(p => p.Secret).Distinct(StringComparer.Ordinal).Count() != inputs.Count)
        {
            throw new CashuException(CashuErrorCode.DuplicateInputs, "duplicate inputs provided");
        }

        var known = await KeysetsByIdAsync(inputs.Select(p => p.Id), cancellationToken, forInputs: true);
        foreach (var p in inputs)
        {
            if (p.Secret.Length is 0 or > 1024)
            {
                throw new CashuException(CashuErrorCode.ProofVerificationFailed, "a secret must have 1 to 1024 characters");
            }

            if (IsSpendingCondition(p.Secret))
            {
                throw new CashuException(CashuErrorCode.ProofVerificationFailed, "proofs with spending conditions (NUT-10) are not supported by this mint");
            }
        }

        if (known.Values.Select(k => k.Record.Unit).Distinct().Count() > 1)
        {
            throw new CashuException(CashuErrorCode.MultipleUnits, "inputs of several units");
        }

        // Verification is the expensive part (a scalar multiplication per proof): spread big batches over the cores.
        var valid = new ValidInput[inputs.Count];
        var failed = 0;
        Parallel.For(0, inputs.Count, new ParallelOptions { MaxDegreeOfParallelism = inputs.Count > 8 ? Environment.ProcessorCount : 1 }, i =>
        {
            var p = inputs[i];
            var keyset = known[p.Id.ToLowerInvariant()];
            var y = Bdhke.HashToCurve(p.Secret);
            if (!keyset.Keys.Verify(p, y))
            {
                Interlocked.Increment(ref failed);
                return;
            }

            valid[i] = new ValidInput(p, Secp256k1.Compressed(y), keyset);
        });
        if (failed > 0)
        {
            throw new CashuException(CashuErrorCode.ProofVerificationFailed, "proof verification failed");
        }

        var amount = SumOrThrow(inputs.Select(p => p.Amount));
        var fee = Amounts.InputFee(valid.Select(v => v.Keyset.Record.InputFeePpk));
        if (amount <= fee)
        {
            // Whatever the inputs are for (swap, melt, a payment), nothing would be left after the fee.
            throw new CashuException(CashuErrorCode.TransactionNotBalanced, $"the inputs ({amount} sat) do not cover their input fee ({fee} sat)");
        }

        return new ValidInputs(valid, amount, fee, valid[0].Keyset.Record.Unit);
    }

    private async Task<List<ValidOutput>> ValidateOutputsAsync(IReadOnlyList<BlindedMessage> outputs, CancellationToken cancellationToken, bool blank = false)
    {
        if (outputs.Count > _options.MaxOutputs)
        {
            throw new CashuException(CashuErrorCode.MaxOutputsExceeded, $"at most {_options.MaxOutputs} outputs per request");
        }

        if (outputs.Any(o => o is null || o.Id is null || o.B is null))
        {
            throw BadRequest("every output needs amount, id and B_");
        }

        if (outputs.Select(o => o.B.ToLowerInvariant()).Distinct().Count() != outputs.Count)
        {
            throw new CashuException(CashuErrorCode.DuplicateOutputs, "duplicate outputs provided");
        }

        var known = await KeysetsByIdAsync(outputs.Select(o => o.Id), cancellationToken);
        var valid = new List<ValidOutput>(outputs.Count);
        foreach (var o in outputs)
        {
            var keyset = known[o.Id.ToLowerInvariant()];
            if (!keyset.Record.Active)
            {
                throw new CashuException(CashuErrorCode.KeysetInactive, $"keyset {o.Id} is inactive and cannot sign new outputs");
            }

            if (!blank && !keyset.Keys.TryGetKey(o.Amount, out _))
            {
                throw new CashuException(CashuErrorCode.AmountOutOfLimitRange, $"output amount {o.Amount} is not a power of two the keyset signs");
            }

            if (!Secp256k1.TryParsePoint(o.B, out var point))
            {
                throw BadRequest($"B_ '{Clip(o.B)}' is not a compressed secp256k1 point");
            }

            valid.Add(new ValidOutput(o, point, keyset));
        }

        if (valid.Select(v => v.Keyset.Record.Unit).Distinct().Count() > 1)
        {
            throw new CashuException(CashuErrorCode.MultipleUnits, "outputs of several units");
        }

        return valid;
    }

    /// <summary>The keysets named by <paramref name="ids"/>; for inputs from the list as last read (see <see cref="MintKeysets.ForInputsAsync"/>).</summary>
    private async Task<Dictionary<string, LoadedKeyset>> KeysetsByIdAsync(IEnumerable<string> ids, CancellationToken cancellationToken, bool forInputs = false)
    {
        var wanted = ids.Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        string? missing = null;
        Dictionary<string, LoadedKeyset>? Pick(IReadOnlyList<LoadedKeyset> list)
        {
            var all = list.ToDictionary(k => k.Record.Id, StringComparer.OrdinalIgnoreCase);
            missing = wanted.FirstOrDefault(id => !all.ContainsKey(id));
            return missing is null ? wanted.ToDictionary(id => id, id => all[id], StringComparer.OrdinalIgnoreCase) : null;
        }

        var found = forInputs ? await keysets.ForInputsAsync(Pick, cancellationToken) : Pick(await keysets.ListAsync(cancellationToken));
        return found ?? throw new CashuException(CashuErrorCode.KeysetUnknown, $"keyset {Clip(missing!)} is not known");
    }

    /// <summary>
    /// Signs outputs; big batches are spread over the cores. A few outputs (change) are signed on the caller's thread:
    /// handing them to other threads costs more than it saves, and it would wait on pool threads while the caller
    /// may be holding the store's write lock (<see cref="IssueAsync(DbConnection, DbTransaction, ulong, CancellationToken)"/>).
    /// </summary>
    private static BlindSignature[] Sign(IReadOnlyList<ValidOutput> outputs)
    {
        var signatures = new BlindSignature[outputs.Count];
        Parallel.For(0, outputs.Count, new ParallelOptions { MaxDegreeOfParallelism = outputs.Count > 8 ? Environment.ProcessorCount : 1 },
            i => signatures[i] = outputs[i].Keyset.Keys.Sign(outputs[i].Message.Amount, outputs[i].Point));
        return signatures;
    }

    private async Task SpendAsync(DbConnection c, DbTransaction t, ValidInputs inputs, bool pending, string? meltQuoteId, DateTimeOffset now,
        CancellationToken cancellationToken)
    {
        // No read first: the unique key decides, and only a refused insert needs the states to say why. Inserted in key order, so two transactions spending overlapping sets wait on each other instead of deadlocking.
        var records = inputs.Proofs.Select(p => new SpentProofRecord(p.Y, p.Keyset.Record.Id, p.Proof.Amount, p.Proof.Secret, p.Proof.C, p.Proof.Witness))
            .OrderBy(r => Convert.ToHexStringLower(r.Y), StringComparer.Ordinal).ToList();
        var inserted = await proofs.InsertProofsAsync(c, t, records, pending, meltQuoteId, now, cancellationToken);
        if (inserted != records.Count)
        {
            // Some Y were spent or pending already (the rows this transaction inserted show our own state).
            ThrowIfSpentOrPending(await proofs.StatesAsync(c, t, [.. inputs.Proofs.Select(p => p.Y)], cancellationToken), pending ? ProofState.Pending : ProofState.Spent);
            throw pending
                ? new CashuException(CashuErrorCode.ProofsPending, "proofs are pending")
                : new CashuException(CashuErrorCode.ProofsAlreadySpent, "proofs already spent");
        }
    }

    private static void ThrowIfSpentOrPending(IReadOnlyList<ProofStateRecord> states, string ours)
    {
        if (states.Any(s => s.State == ProofState.Spent && ours != ProofState.Spent))
        {
            throw new CashuException(CashuErrorCode.ProofsAlreadySpent, "proofs already spent");
        }

        if (states.Any(s => s.State == ProofState.Pending && ours != ProofState.Pending))
        {
            throw new CashuException(CashuErrorCode.ProofsPending, "proofs are pending");
        }
    }

    private async Task RecordSignaturesAsync(DbConnection c, DbTransaction t, IReadOnlyList<ValidOutput> outputs, IReadOnlyList<BlindSignature> signatures,
        DateTimeOffset now, CancellationToken cancellationToken)
    {
        foreach (var id in outputs.Select(o => o.Keyset.Record.Id).Distinct())
        {
            if (!await proofs.IsKeysetActiveAsync(c, t, id, cancellationToken))
            {
                throw new CashuException(CashuErrorCode.KeysetInactive, $"keyset {id} is inactive and cannot sign new outputs");
            }
        }

        var records = outputs.Zip(signatures, (o, s) => new SignatureRecord(Convert.FromHexString(o.Message.B), s.Id, s.Amount, s.C, s.Dleq!.E, s.Dleq.S))
            .OrderBy(r => Convert.ToHexStringLower(r.B), StringComparer.Ordinal).ToList();
        if (await proofs.InsertSignaturesAsync(c, t, records, now, cancellationToken) != records.Count)
        {
            throw new CashuException(CashuErrorCode.OutputsAlreadySigned, "outputs have already been signed before");
        }
    }

    private async Task<(List<ValidOutput> Outputs, List<BlindSignature> Signatures)> SignChangeAsync(MeltQuoteRecord quote, ulong feePaid, CancellationToken cancellationToken)
    {
        if (quote.ChangeOutputs is null || quote.InputAmount is not { } paidIn)
        {
            return ([], []);
        }

        var spent = (UInt128)quote.Amount + feePaid + (quote.InputFee ?? 0);
        var overpaid = paidIn > spent ? (ulong)(paidIn - spent) : 0UL;
        var blanks = JsonSerializer.Deserialize<List<BlindedMessage>>(quote.ChangeOutputs, Json) ?? [];
        var amounts = Amounts.Split(overpaid);
        var usable = Math.Min(amounts.Count, blanks.Count);
        if (usable == 0)
        {
            return ([], []);
        }

        // The payment went out: settling must not fail on change. A blank of a keyset retired meanwhile, or one signed
        // before (a wallet reusing it), gets no signature rather than leaving the melt pending for ever (NUT-08 change
        // is best effort).
        var all = (await keysets.ListAsync(cancellationToken)).ToDictionary(k => k.Record.Id, StringComparer.OrdinalIgnoreCase);
        var wellFormed = blanks.Take(usable).Where(b => Secp256k1.TryParsePoint(b.B, out _)).Select(b => Convert.FromHexString(b.B)).ToList();
        var signedBefore = (await proofs.FindSignaturesAsync(wellFormed, cancellationToken))
            .Select(r => Convert.ToHexStringLower(r.B)).ToHashSet(StringComparer.Ordinal);
        var outputs = new List<ValidOutput>();
        for (var i = 0; i < usable; i++)
        {
            if (!all.TryGetValue(blanks[i].Id, out var keyset) || !keyset.Record.Active || signedBefore.Contains(blanks[i].B.ToLowerInvariant())
                || !Secp256k1.TryParsePoint(blanks[i].B, out var point))
            {
                continue;
            }

            outputs.Add(new ValidOutput(blanks[i] with { Amount = amounts[i] }, point, keyset));
        }

        return (outputs, [.. Sign(outputs)]);
    }

    /// <summary>The quote, marked PAID first when the node says its invoice was paid.</summary>
    /// <param name="answerWhenUnreachable">True: with the node down, answer the stored state; false: 503.</param>
    private async Task<MintQuoteRecord> RefreshMintQuoteAsync(string quoteId, bool answerWhenUnreachable, CancellationToken cancellationToken)
    {
        var quote = await quotes.FindMintQuoteAsync(quoteId, cancellationToken) ?? throw UnknownQuote();
        if (quote.State != MintQuoteState.Unpaid)
        {
            return quote;
        }

        InvoiceState state;
        try
        {
            state = await lightning.CheckInvoiceAsync(quote.PaymentHash, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogInvoiceCheckFailed(logger, quote.Id, ex);
            return answerWhenUnreachable ? quote : throw new LightningUnavailableException("the mint's Lightning node cannot say whether the invoice was paid: " + ex.Message, ex);
        }

        if (state == InvoiceState.Paid)
        {
            await quotes.MarkMintQuotePaidAsync(quote.Id, time.GetUtcNow(), cancellationToken);
            quote = await quotes.FindMintQuoteAsync(quoteId, cancellationToken) ?? quote;
        }

        return quote;
    }

    private static KeysetKeysResponse KeysOf(LoadedKeyset k) => new()
    {
        Id = k.Record.Id,
        Unit = k.Record.Unit,
        Active = k.Record.Active,
        InputFeePpk = k.Record.InputFeePpk,
        Keys = k.Keys.PublicKeysHex,
    };

    private static MintQuoteResponse ToResponse(MintQuoteRecord q) => new()
    {
        Quote = q.Id,
        Request = q.Request,
        Amount = q.Amount,
        Unit = q.Unit,
        State = q.State,
        Expiry = q.ExpiresAt.ToUnixTimeSeconds(),
        Pubkey = q.Pubkey,
    };

    private static MeltQuoteResponse ToResponse(MeltQuoteRecord q) => new()
    {
        Quote = q.Id,
        Request = q.Request,
        Amount = q.Amount,
        Unit = q.Unit,
        FeeReserve = q.FeeReserve,
        State = q.State,
        Expiry = q.ExpiresAt.ToUnixTimeSeconds(),
        PaymentPreimage = q.PaymentPreimage,
        Change = q.Change is null ? null : JsonSerializer.Deserialize<List<BlindSignature>>(q.Change, Json),
    };

    /// <summary>160 random bits, hex: unguessable, and not derivable from the invoice.</summary>
    private static string NewQuoteId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(20));

    private static bool IsSpendingCondition(string secret)
    {
        if (!secret.StartsWith('['))
        {
            return false;
        }

        try
        {
            using var doc = JsonDocument.Parse(secret);
            return doc.RootElement.ValueKind == JsonValueKind.Array && doc.RootElement.GetArrayLength() == 2
                && doc.RootElement[0].ValueKind == JsonValueKind.String;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static ulong SumOrThrow(IEnumerable<ulong> amounts) =>
        Amounts.TrySum(amounts, out var sum) ? sum : throw new CashuException(CashuErrorCode.AmountOutOfLimitRange, "the amounts add up to more than 2^64-1");

    private static void RequireUnit(string? unit)
    {
        if (unit != MintKeysets.Unit)
        {
            throw new CashuException(CashuErrorCode.UnitNotSupported, $"unit '{Clip(unit)}' is not supported; this mint issues sat");
        }
    }

    private static void Require(bool condition, string detail)
    {
        if (!condition)
        {
            throw BadRequest(detail);
        }
    }

    private static CashuException BadRequest(string detail) => new(CashuErrorCode.BadRequest, detail);

    private static CashuException UnknownQuote() => new(CashuErrorCode.BadRequest, "quote not found");

    private static string Clip(string? s) => s is null ? "null" : s.Length > 70 ? s[..70] + "…" : s;
}
