using System.Data.Common;
using System.Text.Json;
using System.Threading.Channels;
using Coinop.Ecash;
using Coinop.Ecash.Tokens;
using Coinop.Market.Hosting;
using Coinop.Market.Mint;
using Coinop.Storage;
using Coinop.Storage.Payments;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Coinop.Market.Payments;

/// <summary>
/// Change kept ready. Issuing ecash costs a few elliptic-curve multiplications per proof (sign, DLEQ proof): about a
/// third of a millisecond each, which a request paid by token would otherwise wait for. So the
/// market issues proofs of the small denominations ahead of time, in the background, and settling takes them out
/// of stock inside its transaction (a denomination out of stock is issued on the spot). Stocked proofs are ordinary
/// ecash of our mint, recorded as issued when made; until handed out they belong to the market, not to the ledger.
/// </summary>
public sealed partial class ChangeStock(
    Database database,
    IChangeStockStore store,
    CashuMint mint,
    MintKeysets keysets,
    BackgroundCpu cpu,
    Cluster.NodeDuties duties,
    MarketOptions market,
    IOptions<PaymentsOptions> options,
    TimeProvider time,
    ILogger<ChangeStock> logger) : BackgroundService
{
    private const int RefillBatch = 8;
    private readonly PaymentsOptions _options = options.Value;
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });

    /// <summary>Change of <paramref name="sats"/> as a <c>cashuB</c> token, inside the caller's transaction: from stock, or issued now.</summary>
    public async Task<string> TakeAsync(DbConnection c, DbTransaction t, long sats, CancellationToken cancellationToken)
    {
        var proofs = new List<Proof>();
        ulong missing = 0;
        foreach (var amount in Amounts.Split((ulong)sats))
        {
            if (IsStocked(amount) && await store.TakeAsync(c, t, (long)amount, cancellationToken) is { } stocked)
            {
                proofs.Add(new Proof
                {
                    Amount = amount,
                    Id = stocked.KeysetId,
                    Secret = stocked.Secret,
                    C = stocked.C,
                    Dleq = stocked.Dleq is null ? null : JsonSerializer.Deserialize<DleqProof>(stocked.Dleq),
                });
            }
            else
            {
                missing += amount;
            }
        }

        if (missing > 0)
        {
            proofs.AddRange((await mint.IssueAsync(c, t, missing, cancellationToken)).Proofs);
        }

        return TokenCodec.EncodeV4(new Token(mint.MintUrl, MintKeysets.Unit, proofs));
    }

    /// <summary>Asks for a refill; call it after the transaction that took change committed (so the refill sees what was taken).</summary>
    public void Wake() => _wake.Writer.TryWrite(true);

    /// <summary>The duty that keeps the shared stock full: one node at a time refills it.</summary>
    public const string Duty = "change_stock";

    /// <summary>How often the holder looks at the stock when not woken (other nodes take change from it too).</summary>
    private TimeSpan CheckInterval => _options.SweepInterval < TimeSpan.FromSeconds(5) ? _options.SweepInterval : TimeSpan.FromSeconds(5);

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        market.Free || _options.ChangeStockPerAmount == 0
            ? Task.CompletedTask
            : duties.RunAsync(Duty, (_, held) => RestockAsync(held), stoppingToken);

    private async Task RestockAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(CheckInterval, time);
        var ticks = timer.WaitForNextTickAsync(stoppingToken).AsTask();
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    await RefillAsync(stoppingToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogRefillFailed(logger, ex);
                }

                // Wake when change was taken here, or on the timer (other nodes take from the shared stock too).
                var woken = await Task.WhenAny(_wake.Reader.WaitToReadAsync(stoppingToken).AsTask(), ticks);
                if (woken == ticks)
                {
                    await ticks;
                    ticks = timer.WaitForNextTickAsync(stoppingToken).AsTask();
                }

                _wake.Reader.TryRead(out _);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private bool IsStocked(ulong amount) => _options.ChangeStockPerAmount > 0 && amount <= (ulong)_options.ChangeStockMaxSat;

    private async Task RefillAsync(CancellationToken cancellationToken)
    {
        var counts = await store.CountsAsync(cancellationToken);
        var active = await keysets.ActiveAsync(cancellationToken);
        for (ulong amount = 1; amount <= (ulong)_options.ChangeStockMaxSat; amount <<= 1)
        {
            var have = counts.GetValueOrDefault((long)amount);
            while (have < _options.ChangeStockPerAmount)
            {
                // The elliptic-curve work first, outside any transaction and at background priority; then one short
                // transaction records a few proofs: the store's write lock is held briefly and seldom.
                var count = (int)Math.Min(RefillBatch, _options.ChangeStockPerAmount - have);
                var denominations = Enumerable.Repeat(amount, count).ToList();
                var prepared = await cpu.RunAsync(() => CashuMint.PrepareIssue(active, denominations), cancellationToken);
                have += count;

                await database.WriteAsync(async (c, t) =>
                {
                    var proofs = await mint.RecordIssuedAsync(c, t, prepared, cancellationToken);
                    await store.AddAsync(c, t, [.. proofs.Select(p => new StockedProof(p.Secret, (long)p.Amount, p.Id, p.C,
                        p.Dleq is null ? null : JsonSerializer.Serialize(p.Dleq)))], time.GetUtcNow(), cancellationToken);
                }, cancellationToken);
            }
        }
    }
}
