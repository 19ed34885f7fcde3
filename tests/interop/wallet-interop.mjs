// Drives an independent Cashu wallet (cashu-ts from npm) against a mint: mint, send/receive (swap), melt,
// check state, DLEQ on every proof, and optionally receive a token made by Coinop's own code.
// Usage: node wallet-interop.mjs MINT_URL [COINOP_TOKEN]
// Prints one JSON line: {"ok":true,...} or {"ok":false,"error":"..."}; exit code 0 only on success.
import { Wallet, MintQuoteState, getEncodedToken, hasValidDleq, CheckStateEnum } from '@cashu/cashu-ts';

const [mintUrl, coinopToken] = process.argv.slice(2);
const sum = (proofs) => proofs.reduce((a, p) => a + BigInt(p.amount.toString()), 0n);
const check = (condition, message) => {
  if (!condition) throw new Error(message);
};

async function main() {
  const alice = new Wallet(mintUrl);
  await alice.loadMint();
  const keyset = alice.keyChain.getKeyset();
  const info = alice.getMintInfo();

  // NUT-04: mint 64 sat through the fake Lightning backend.
  const quote = await alice.createMintQuoteBolt11(64);
  const checked = await alice.checkMintQuoteBolt11(quote.quote);
  check(checked.state === MintQuoteState.PAID, `mint quote not paid: ${checked.state}`);
  const minted = await alice.mintProofsBolt11(64, quote.quote);
  check(sum(minted) === 64n, 'minted amount');
  check(minted.every((p) => hasValidDleq(p, keyset)), 'DLEQ of minted proofs');

  // NUT-03: send 21 to Bob as a cashuB token; Bob receives it (a swap at the mint).
  const { keep, send } = await alice.send(21, minted, { includeFees: true });
  check(send.every((p) => hasValidDleq(p, keyset)), 'DLEQ of sent proofs');
  const token = getEncodedToken({ mint: mintUrl, proofs: send, unit: 'sat' });
  check(token.startsWith('cashuB'), 'V4 token');
  const bob = new Wallet(mintUrl);
  await bob.loadMint();
  const received = await bob.receive(token, { requireDleq: true });
  check(sum(received) > 0n && sum(received) <= 21n, 'received amount');
  check(received.every((p) => hasValidDleq(p, keyset)), 'DLEQ of received proofs');

  // NUT-07: the sent proofs are now spent, the kept ones unspent.
  const sentStates = await alice.checkProofsStates(send);
  check(sentStates.every((s) => s.state === CheckStateEnum.SPENT), 'sent proofs spent');
  const keepStates = await alice.checkProofsStates(keep);
  check(keepStates.every((s) => s.state === CheckStateEnum.UNSPENT), 'kept proofs unspent');

  // A double spend of the sent token fails.
  let doubleSpend = 'accepted';
  try {
    await new Wallet(mintUrl).loadMint().then(() => bob.receive(token));
  } catch (e) {
    doubleSpend = String(e.message ?? e);
  }
  check(doubleSpend !== 'accepted', 'double spend was accepted');

  // NUT-05 (+ NUT-08 change): pay an invoice (another mint quote's request) with Alice's remaining proofs.
  const invoiceQuote = await alice.createMintQuoteBolt11(10);
  const meltQuote = await alice.createMeltQuoteBolt11(invoiceQuote.request);
  const needed = meltQuote.amount.add(meltQuote.fee_reserve);
  const { send: toMelt } = await alice.send(needed, keep, { includeFees: true });
  const melt = await alice.meltProofsBolt11(meltQuote, toMelt);
  check(melt.quote.state === 'PAID', `melt state ${melt.quote.state}`);
  const change = melt.change ?? [];
  check(change.every((p) => hasValidDleq(p, keyset)), 'DLEQ of change');

  // A token made by cashu-ts for Coinop's wallet to receive (checked by the C# side).
  const { send: forCoinop } = await bob.send(5, received, { includeFees: true });
  const tokenForCoinop = getEncodedToken({ mint: mintUrl, proofs: forCoinop, unit: 'sat' });

  // A token minted by Coinop (short keyset ids, DLEQ with r) is accepted by this wallet.
  let coinopReceived = null;
  if (coinopToken) {
    const carol = new Wallet(mintUrl);
    await carol.loadMint();
    const proofs = await carol.receive(coinopToken, { requireDleq: true });
    coinopReceived = sum(proofs).toString();
  }

  console.log(JSON.stringify({
    ok: true,
    mint: info.name ?? null,
    keyset: keyset.id,
    minted: sum(minted).toString(),
    sent: sum(send).toString(),
    received: sum(received).toString(),
    melted: meltQuote.amount.toString(),
    change: sum(change).toString(),
    doubleSpend,
    coinopReceived,
    tokenForCoinop,
  }));
}

main().catch((e) => {
  console.log(JSON.stringify({ ok: false, error: String(e?.stack ?? e) }));
  process.exit(1);
});
