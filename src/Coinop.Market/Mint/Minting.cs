using Coinop.Ecash.MintApi;
using Coinop.Market.Mint.Lightning;
using Coinop.Storage;
using Coinop.Storage.Mint;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using static Coinop.Market.Mint.MintCore;

namespace Coinop.Market.Mint;

/// <summary>
/// Mint quotes and minting (NUT-04, NUT-20, NUT-23): a quote is a Lightning invoice of the mint's node; once it is
/// paid, its outputs are signed exactly once (the quote becomes ISSUED in the transaction that records the signatures).
/// </summary>
public sealed partial class Minting(
    Database database,
    MintCore core,
    IMintQuoteStore quotes,
    ILightningBackend lightning,
    IOptions<MintOptions> mintOptions,
    TimeProvider time,
    MintMetrics metrics,
    ILogger<Minting> logger)
{
    private readonly MintOptions _options = mintOptions.Value;

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

        var outputs = await core.ValidateOutputsAsync(request.Outputs!, cancellationToken);
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

            await core.RecordSignaturesAsync(c, t, outputs, signatures, now, cancellationToken);
        }, cancellationToken);
        metrics.SignaturesIssued(signatures.Length);
        return new SignaturesResponse(signatures);
    }

    /// <summary>The quote, marked PAID first when the node says its invoice was paid.</summary>
    /// <param name="answerWhenUnreachable">True: with the node down, answer the stored state; false: 503.</param>
    private async Task<MintQuoteRecord> RefreshMintQuoteAsync(string quoteId, bool answerWhenUnreachable, CancellationToken cancellationToken)
    {
        var quote = (MintCore.MayBeQuoteId(quoteId) ? await quotes.FindMintQuoteAsync(quoteId, cancellationToken) : null) ?? throw UnknownQuote();
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
}
