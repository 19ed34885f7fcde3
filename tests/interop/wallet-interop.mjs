// Drives an independent Cashu wallet (cashu-ts from npm) against a mint: mint, send/receive (swap), melt,
// check state, DLEQ on every proof, NUT-17 subscriptions (mint quote, proof states, melt quote over the mint's
// WebSocket), a NUT-20 locked mint quote, what /v1/info announces (17, 19, 20), and optionally receive a token made
// by Coinop's own code.
// Usage: node wallet-interop.mjs MINT_URL [COINOP_TOKEN]
// Prints one JSON line: {"ok":true,...} or {"ok":false,"error":"..."}; exit code 0 only on success.
import {
  Wallet, MintQuoteState, getEncodedToken, hasValidDleq, CheckStateEnum, injectWebSocketImpl, createRandomSecretKey, getPubKeyFromPrivKey,
} from '@cashu/cashu-ts';
import WebSocket from 'ws';

injectWebSocketImpl(WebSocket); // node 18/20 have no global WebSocket

const [mintUrl, coinopToken] = process.argv.slice(2);
const sum = (proofs) => proofs.reduce((a, p) => a + BigInt(p.amount.toString()), 0n);
const check = (condition, message) => {
  if (!condition) throw new Error(message);
};
const hex = (bytes) => Buffer.from(bytes).toString('hex');

async function main() {
  const alice = new Wallet(mintUrl);
  await alice.loadMint();
  const keyset = alice.keyChain.getKeyset();
  const info = alice.getMintInfo();

  // NUT-06: what the mint announces, as cashu-ts reads it.
  const nut17 = info.isSupported(17);
  const commands = ['bolt11_mint_quote', 'bolt11_melt_quote', 'proof_state'];
  check(nut17.supported && nut17.params?.some((p) => p.method === 'bolt11' && p.unit === 'sat' && commands.every((c) => p.commands.includes(c))),
    'NUT-17 bolt11/sat with all three commands in /v1/info');
  const nut19 = info.isSupported(19);
  check(nut19.supported && ['/v1/swap', '/v1/mint/bolt11', '/v1/melt/bolt11'].every((path) => nut19.params.cached_endpoints.some((e) => e.path === path && e.method === 'POST')),
    'NUT-19 cached endpoints in /v1/info');
  check(info.isSupported(20).supported, 'NUT-20 in /v1/info');

  // NUT-04: mint 64 sat through the fake Lightning backend; NUT-17: the payment is learnt over the WebSocket.
  const quote = await alice.createMintQuoteBolt11(64);
  const paidOverWs = await alice.on.onceMintPaid(quote.quote, { timeoutMs: 60_000 });
  check(paidOverWs.state === MintQuoteState.PAID, `mint quote over the WebSocket: ${paidOverWs.state}`);
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
  // NUT-17 proof_state: Alice watches the proofs she sent become SPENT when Bob receives them.
  const watching = new AbortController();
  const spentSeen = (async () => {
    for await (const update of alice.on.proofStatesStream(send, { signal: watching.signal })) {
      if (update.state === CheckStateEnum.SPENT) return true;
    }
    return false;
  })();
  const received = await bob.receive(token, { requireDleq: true });
  const timeout = setTimeout(() => watching.abort(), 60_000);
  check(await spentSeen, 'proof_state over the WebSocket never said SPENT');
  clearTimeout(timeout);
  watching.abort();
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
  const meltOverWs = await alice.on.onceMeltPaid(meltQuote.quote, { timeoutMs: 60_000 });
  check(meltOverWs.state === 'PAID', `melt quote over the WebSocket: ${meltOverWs.state}`);
  const change = melt.change ?? [];
  check(change.every((p) => hasValidDleq(p, keyset)), 'DLEQ of change');

  // NUT-20: a quote locked to a key is minted with a signature by that key.
  const secretKey = createRandomSecretKey();
  const lockedQuote = await alice.createLockedMintQuote(8, hex(getPubKeyFromPrivKey(secretKey)));
  check(lockedQuote.pubkey === hex(getPubKeyFromPrivKey(secretKey)), 'locked quote pubkey');
  const locked = await alice.mintProofsBolt11(8, lockedQuote, { privkey: hex(secretKey) });
  check(sum(locked) === 8n, 'minted from a locked quote');

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
    subscriptions: 'mint_quote,proof_state,melt_quote',
    lockedMinted: sum(locked).toString(),
  }));
  alice.mint.disconnectWebSocket();
}

main().then(() => process.exit(0), (e) => {
  console.log(JSON.stringify({ ok: false, error: String(e?.stack ?? e) }));
  process.exit(1);
});
