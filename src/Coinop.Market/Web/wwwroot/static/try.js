// "Try it": one streamed chat request paid with a pasted Cashu token (X-Cashu) or the browser's balance key (Bearer).
// A token payer's change arrives as the stream's ": X-Cashu <token>" comment (or the X-Cashu header); when a paid
// request fails without change, what the market kept is reclaimed from the balance it holds under the token.
"use strict";

(() => {
  const { el, fill, message, showToken, tokenValue } = coinop;
  const KEY = "coinop.balanceKey";
  const $ = id => document.getElementById(id);

  function fillModels(overview) {
    const select = $("try-model");
    const chosen = select.value;
    const models = overview.models.map(m => m.model);
    if (models.join("\n") === Array.from(select.options).map(o => o.value).join("\n")) return;
    fill(select, models.length === 0 ? el("option", { value: "", text: "no model online yet" }) : models.map(m => el("option", { value: m, text: m })));
    if (models.includes(chosen)) select.value = chosen;
  }

  function payMode() { return document.querySelector("input[name=pay]:checked").value; }

  function showPayMode() {
    const key = localStorage.getItem(KEY);
    const byKey = payMode() === "key";
    $("token-field").classList.toggle("hidden", byKey);
    $("key-field").classList.toggle("hidden", !byKey);
    $("key-state").textContent = key ? `Key ${key.slice(0, 7)}…${key.slice(-4)}.` : "No key yet: create one on the balance page.";
  }

  /** Reads an SSE body: text deltas go to onText; returns the change token from the ": X-Cashu" comment, if any. */
  async function readStream(response, onText) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "", change = null, usage = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, nl).replace(/\r$/, "");
        buffer = buffer.slice(nl + 1);
        if (line.startsWith(": X-Cashu ")) { change = line.slice(10).trim(); continue; }
        if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
        const chunk = JSON.parse(line.slice(6));
        if (chunk.error) throw new Error("the answer broke off: " + (chunk.error.message || "error"));
        if (chunk.usage) usage = chunk.usage;
        const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
        if (delta && typeof delta.content === "string") onText(delta.content);
      }
    }
    return { change, usage };
  }

  /** The market kept a token it could not serve: take back what its balance holds. */
  async function reclaim(token) {
    try {
      const refund = await coinop.api("/v1/balance/refund", { method: "POST", headers: { Authorization: "Bearer " + token } });
      return refund.token || null;
    } catch {
      return null;
    }
  }

  async function send(event) {
    event.preventDefault();
    const button = $("try-send"), answer = $("answer"), note = $("try-message"), cost = $("try-cost"), change = $("change");
    answer.textContent = ""; cost.textContent = ""; fill(change); message(note, "");
    const model = $("try-model").value;
    const max = parseInt($("try-max").value, 10);
    if (!model) { message(note, "No model is online yet."); return; }
    if (!(max >= 1)) { message(note, "Most tokens must be a whole number of at least 1."); return; }

    const headers = { "Content-Type": "application/json", Accept: "text/event-stream" };
    let token = null;
    if (payMode() === "token") {
      token = $("try-token").value.trim();
      if (!token.startsWith("cashu")) { message(note, "Paste a Cashu token (it starts with cashuA or cashuB), or pay with a balance key."); return; }
      headers["X-Cashu"] = token;
    } else {
      const key = localStorage.getItem(KEY);
      if (!key) { message(note, "There is no balance key in this browser: create one on the balance page."); return; }
      headers.Authorization = "Bearer " + key;
    }

    button.disabled = true;
    button.textContent = "Answering…";
    const body = { model, stream: true, max_tokens: max, stream_options: { include_usage: true }, messages: [{ role: "user", content: $("try-prompt").value }] };
    let back = null;
    try {
      const response = await fetch("/v1/chat/completions", { method: "POST", headers, body: JSON.stringify(body) });
      back = response.headers.get("X-Cashu");
      if (back && !back.startsWith("cashu")) back = null; // a 402's payment request, not change
      if (!response.ok) {
        let text = response.statusText;
        try { const e = await response.json(); text = e.error && e.error.message || text; } catch { /* not JSON */ }
        throw new Error(`${response.status}: ${text}`);
      }
      const result = await readStream(response, t => { answer.textContent += t; });
      back = result.change || back;
      if (result.usage) cost.textContent = `${result.usage.prompt_tokens} tokens in, ${result.usage.completion_tokens} out.`;
      if (token) {
        const paid = tokenValue(token), returned = back ? tokenValue(back) : 0;
        if (paid !== null && returned !== null) cost.textContent += ` Paid ${paid - returned} sat of the ${paid} sat token.`;
        $("try-token").value = "";
      } else {
        cost.textContent += " Charged to your balance key.";
      }
    } catch (e) {
      message(note, "The request failed: " + e.message);
      if (token && !back) back = await reclaim(token);
    } finally {
      button.disabled = false;
      button.textContent = "Send";
    }

    if (back) {
      await showToken(change, back, "Your change: keep this token, it is money");
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("try").addEventListener("submit", send);
    for (const radio of document.querySelectorAll("input[name=pay]")) radio.addEventListener("change", showPayMode);
    if (localStorage.getItem(KEY)) $("pay-key").checked = true;
    showPayMode();
  });
  document.addEventListener("coinop:overview", e => fillModels(e.detail));
})();
