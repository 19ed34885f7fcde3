using System.Text.Json;
using Coinop.Ecash;
using Coinop.Ecash.Lightning;
using Coinop.Ecash.MintApi;
using Coinop.Market.Mint.Lightning;
using Coinop.Storage;
using Coinop.Storage.Mint;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using static Coinop.Market.Mint.MintCore;

namespace Coinop.Market.Mint;

/// <summary>
/// Melt quotes and melting (NUT-05, NUT-23): pays a bolt11 invoice with ecash. The inputs are locked PENDING while
/// the payment is in flight; <see cref="MeltSettlement"/> finishes the melt from the payment's outcome.
/// </summary>
public sealed partial class Melting(
    Database database,
    MintCore core,
    MeltSettlement settlement,
    IMintQuoteStore quotes,
    ILightningBackend lightning,
    IOptions<MintOptions> mintOptions,
    TimeProvider time,
    ILogger<Melting> logger)
{
    private readonly MintOptions _options = mintOptions.Value;

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
        ToResponse((MintCore.MayBeQuoteId(quoteId) ? await quotes.FindMeltQuoteAsync(quoteId, cancellationToken) : null) ?? throw UnknownQuote());

    public async Task<MeltQuoteResponse> MeltAsync(MeltRequest request, CancellationToken cancellationToken)
    {
        Require(request.Quote is not null && request.Inputs is not null, "quote and inputs are required");
        var quote = (MintCore.MayBeQuoteId(request.Quote!) ? await quotes.FindMeltQuoteAsync(request.Quote!, cancellationToken) : null) ?? throw UnknownQuote();
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

        var inputs = await core.ValidateInputsAsync(request.Inputs!, cancellationToken);
        var blanks = request.Outputs is { Count: > 0 } o ? await core.ValidateOutputsAsync(o, cancellationToken, blank: true) : [];
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
            return ToResponse(await settlement.MeltInternallyAsync(quote with { InputAmount = inputs.Amount, InputFee = inputs.Fee, ChangeOutputs = changeOutputs },
                own, inputs, cancellationToken));
        }

        try
        {
            await database.WriteAsync(async (c, t) =>
            {
                await core.SpendAsync(c, t, inputs, pending: true, quote.Id, now, cancellationToken);
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
                await settlement.SettleMeltAsync(quote.Id, new PaymentResult(PaymentState.Failed, Error: ex.Message), CancellationToken.None);
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

        var settled = await settlement.SettleMeltAsync(quote.Id, payment, cancellationToken);
        if (payment.State == PaymentState.Failed)
        {
            throw new CashuException(CashuErrorCode.LightningPaymentFailed, "the Lightning payment failed: " + (payment.Error ?? "unknown reason"));
        }

        return ToResponse(settled);
    }

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
}
