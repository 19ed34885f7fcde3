// The balance-key page: open a balance from a token, see its balance and recent charges, top up, refund to a token.
// The key lives in localStorage under "coinop.balanceKey" (the "Try it" box on the public page uses it too).
"use strict";

(() => {
  const { el, fill, table, sats, time, api, postJson, message, showToken } = coinop;
  const KEY = "coinop.balanceKey";
  const $ = id => document.getElementById(id);
  const kinds = { request: "request", top_up: "top up", refund: "refund", change: "change" };

  function key() { return localStorage.getItem(KEY); }
  function auth() { return { Authorization: "Bearer " + key() }; }

  function show() {
    const k = key();
    $("no-key").classList.toggle("hidden", !!k);
    $("has-key").classList.toggle("hidden", !k);
    if (k) {
      $("key-short").textContent = `${k.slice(0, 7)}…${k.slice(-4)}`;
      refresh();
    }
  }

  async function refresh() {
    try {
      const info = await api("/v1/balance/charges?limit=25", { headers: auth() });
      $("balance").textContent = sats(info.balance_msat);
      fill($("charges"), table("Recent charges", ["When", "What", "Amount", "Reference"],
        info.charges.map(c => [time(c.at), kinds[c.kind] || c.kind, (c.amount_msat > 0 ? "+" : "") + sats(c.amount_msat), el("code", { text: c.reference.slice(0, 12) })]),
        [2]));
    } catch (e) {
      message($("note"), "Could not read the balance: " + e.message);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("create").addEventListener("submit", async e => {
      e.preventDefault();
      try {
        const created = await postJson("/v1/balance/create", { token: $("create-token").value.trim() });
        localStorage.setItem(KEY, created.api_key);
        $("create-token").value = "";
        message($("note"), `Balance opened with ${sats(created.balance_msat)}. The key is kept in this browser.`, "ok");
        show();
      } catch (err) {
        message($("note"), "Could not open a balance: " + err.message);
      }
    });
    $("use").addEventListener("submit", async e => {
      e.preventDefault();
      const k = $("use-key").value.trim();
      try {
        await api("/v1/balance/info", { headers: { Authorization: "Bearer " + k } });
        localStorage.setItem(KEY, k);
        $("use-key").value = "";
        message($("note"), "");
        show();
      } catch (err) {
        message($("note"), "That key does not open a balance here: " + err.message);
      }
    });
    $("topup").addEventListener("submit", async e => {
      e.preventDefault();
      try {
        const added = await postJson("/v1/balance/topup", { token: $("topup-token").value.trim() }, auth());
        $("topup-token").value = "";
        message($("note"), `Added ${sats(added.added_msat)}.`, "ok");
        refresh();
      } catch (err) {
        message($("note"), "Could not top up: " + err.message);
      }
    });
    $("refund").addEventListener("click", async () => {
      const button = $("refund");
      button.disabled = true;
      try {
        const refund = await api("/v1/balance/refund", { method: "POST", headers: auth() });
        message($("note"), `Refunded ${refund.amount} sat. Keep the token below: it is the money.`, "ok");
        await showToken($("refund-token"), refund.token, "Your refund");
        refresh();
      } catch (err) {
        message($("note"), "Could not refund: " + err.message);
      } finally {
        button.disabled = false;
      }
    });
    $("show-key").addEventListener("click", () => {
      const area = el("textarea", { id: "key-text", class: "token", readonly: true, rows: 2 });
      area.value = key();
      fill($("key-full"), el("label", { for: "key-text", text: "Your balance key (keep it secret)" }), area);
    });
    $("forget").addEventListener("click", () => {
      if (!confirm("Forget the key? Without it the balance cannot be spent or refunded: refund first or copy the key.")) return;
      localStorage.removeItem(KEY);
      fill($("key-full"));
      fill($("refund-token"));
      show();
    });
    show();
  });
})();
