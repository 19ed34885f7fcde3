// Shared helpers of Coinop's pages: DOM building (text only, never HTML from data), formatting, JSON calls, SVG
// charts, token values and the token box (copy button and QR code). No library, no network beyond this market.
"use strict";

const coinop = (() => {
  /** Builds an element; children are nodes or strings (set as text, so data from providers cannot inject markup). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  }

  const nf = new Intl.NumberFormat("en", { maximumFractionDigits: 3 });
  const nf1 = new Intl.NumberFormat("en", { maximumFractionDigits: 1 });

  function sats(msat) { return nf.format(msat / 1000) + " sat"; }
  function num(n, digits) { return digits === 1 ? nf1.format(n) : nf.format(n); }
  function pct(x) { return nf1.format(x * 100) + "%"; }
  function range(a, b) { return a === b ? nf.format(a) : nf.format(a) + "–" + nf.format(b); }

  function duration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    if (seconds < 60) return seconds + " s";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min";
    if (seconds < 86400) return Math.floor(seconds / 3600) + " h " + Math.floor((seconds % 3600) / 60) + " min";
    return Math.floor(seconds / 86400) + " d " + Math.floor((seconds % 86400) / 3600) + " h";
  }

  function time(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    return d.toLocaleString("en-GB", { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function clock(iso) {
    const d = new Date(iso);
    return d.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" });
  }

  /** Calls a JSON endpoint; a non-2xx answer throws an Error with the market's message and the status. */
  async function api(path, options) {
    const response = await fetch(path, Object.assign({ credentials: "same-origin" }, options || {}));
    const text = await response.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch { body = null; }
    if (!response.ok) {
      const message = body && body.error && (body.error.message || body.error) || text || response.statusText;
      const error = new Error(String(message));
      error.status = response.status;
      error.body = body;
      throw error;
    }
    return body;
  }

  function postJson(path, value, headers) {
    return api(path, { method: "POST", headers: Object.assign({ "Content-Type": "application/json" }, headers || {}), body: JSON.stringify(value || {}) });
  }

  /** Replaces a container's content. */
  function fill(container, ...children) {
    container.replaceChildren(...children.flat().filter(c => c !== null && c !== undefined));
  }

  function table(caption, headers, rows, numeric) {
    numeric = numeric || [];
    return el("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": caption },
      el("table", {},
        el("caption", { class: "sr-only", text: caption }),
        el("thead", {}, el("tr", {}, headers.map((h, i) => el("th", { scope: "col", class: numeric.includes(i) ? "num" : null, text: h })))),
        el("tbody", {}, rows.length === 0
          ? el("tr", {}, el("td", { colspan: headers.length, class: "muted", text: "Nothing yet." }))
          : rows.map(r => el("tr", {}, r.map((c, i) => el("td", { class: numeric.includes(i) ? "num" : null }, c)))))));
  }

  function badge(text, kind) { return el("span", { class: "badge " + (kind || "info"), text }); }

  /**
   * A line chart of several series over time: the lines are SVG stretched to the box (strokes keep their width), the
   * axis labels are HTML, so text stays readable at any width. series: [{name, values}] share the x axis `times`. The
   * chart has an accessible name and a legend; the numbers are also in the page's tables.
   */
  function lineChart(title, times, series, format) {
    const w = 1000, h = 100;
    const max = Math.max(1e-9, ...series.flatMap(s => s.values));
    const chart = svg("svg", { viewBox: `0 0 ${w} ${h}`, class: "lines", role: "img", "aria-label": title, preserveAspectRatio: "none" });
    const n = Math.max(1, times.length - 1);
    series.forEach((s, i) => {
      const values = s.values.length === 1 ? [s.values[0], s.values[0]] : s.values; // one point still draws a line
      const step = s.values.length === 1 ? w : w / n;
      const points = values.map((v, j) => `${(step * j).toFixed(1)},${(h - 2 - (h - 4) * v / max).toFixed(1)}`).join(" ");
      chart.append(svg("polyline", { class: "s" + (i % 5 + 1), points, "vector-effect": "non-scaling-stroke" }));
    });
    const top = Math.max(...series.flatMap(s => s.values), 0);
    const plot = el("div", { class: "plot" },
      el("span", { class: "y-max", "aria-hidden": "true", text: format ? format(top) : num(top) }),
      el("span", { class: "y-min", "aria-hidden": "true", text: "0" }),
      chart,
      times.length ? el("span", { class: "x-min", "aria-hidden": "true", text: clock(times[0]) }) : null,
      times.length ? el("span", { class: "x-max", "aria-hidden": "true", text: clock(times[times.length - 1]) }) : null);
    const legend = el("ul", { class: "legend" }, series.map((s, i) => el("li", {}, el("span", { class: "sw s" + (i % 5 + 1), "aria-hidden": "true" }), s.name)));
    return el("figure", { class: "panel chart" }, el("figcaption", { class: "muted", text: title }), plot, legend);
  }

  // ---- token values (display only: the market is what checks a token) ----

  function base64UrlBytes(text) {
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const padded = b64 + "===".slice((b64.length + 3) % 4);
    const raw = atob(padded);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }

  /** A minimal CBOR reader: enough for a cashuB token (maps, arrays, byte and text strings, unsigned ints). */
  function cbor(bytes) {
    let pos = 0;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    function length(info) {
      if (info < 24) return info;
      if (info === 24) return view.getUint8(pos++);
      if (info === 25) { const v = view.getUint16(pos); pos += 2; return v; }
      if (info === 26) { const v = view.getUint32(pos); pos += 4; return v; }
      if (info === 27) { const v = Number(view.getBigUint64(pos)); pos += 8; return v; }
      throw new Error("unsupported CBOR length");
    }
    function item() {
      const head = view.getUint8(pos++);
      const major = head >> 5, info = head & 31;
      switch (major) {
        case 0: return length(info);
        case 1: return -1 - length(info);
        case 2: { const n = length(info); const v = bytes.slice(pos, pos + n); pos += n; return v; }
        case 3: { const n = length(info); const v = new TextDecoder().decode(bytes.slice(pos, pos + n)); pos += n; return v; }
        case 4: { const n = length(info); const a = []; for (let i = 0; i < n; i++) a.push(item()); return a; }
        case 5: { const n = length(info); const m = {}; for (let i = 0; i < n; i++) { const k = item(); m[k] = item(); } return m; }
        case 7: return info === 20 ? false : info === 21 ? true : null;
        default: throw new Error("unsupported CBOR item");
      }
    }
    return item();
  }

  /** The sats in a cashuA/cashuB token, or null when it cannot be read. */
  function tokenValue(token) {
    try {
      token = token.trim();
      if (token.startsWith("cashuB")) {
        const t = cbor(base64UrlBytes(token.slice(6)));
        return (t.t || []).reduce((sum, entry) => sum + (entry.p || []).reduce((s, p) => s + (p.a || 0), 0), 0);
      }
      if (token.startsWith("cashuA")) {
        const t = JSON.parse(new TextDecoder().decode(base64UrlBytes(token.slice(6))));
        return (t.token || []).reduce((sum, entry) => sum + (entry.proofs || []).reduce((s, p) => s + (p.amount || 0), 0), 0);
      }
    } catch { /* not a token we can read */ }
    return null;
  }

  /** Shows a token to take away: read-only text, a copy button and a QR code (rendered by the market as SVG). */
  async function showToken(container, token, heading) {
    const id = "tok-" + Math.random().toString(36).slice(2, 8);
    const area = el("textarea", { id, class: "token", readonly: true, rows: 4 });
    area.value = token;
    const status = el("span", { class: "muted", role: "status" });
    const copy = el("button", {
      type: "button", class: "secondary", onclick: async () => {
        try { await navigator.clipboard.writeText(token); status.textContent = "Copied."; }
        catch { area.select(); status.textContent = "Selected: press Ctrl+C to copy."; }
      },
    }, "Copy token");
    const value = tokenValue(token);
    const qr = el("img", { class: "qr", alt: "QR code of the token" + (value !== null ? ` (${value} sat)` : "") });
    fill(container,
      el("div", { class: "token-box" },
        el("label", { for: id, text: heading + (value !== null ? ` (${value} sat)` : "") }),
        area,
        el("div", { class: "actions" }, copy, status),
        qr));
    try {
      const response = await fetch("/api/qr", { method: "POST", headers: { "Content-Type": "text/plain" }, body: token });
      if (response.ok) {
        qr.src = URL.createObjectURL(await response.blob());
      } else {
        qr.replaceWith(el("p", { class: "muted", text: "This token is too long for a QR code: copy it instead." }));
      }
    } catch {
      qr.remove();
    }
  }

  function message(container, text, kind) {
    container.className = "message " + (kind || "error");
    container.textContent = text;
  }

  return { el, svg, fill, table, badge, lineChart, sats, num, pct, range, duration, time, clock, api, postJson, tokenValue, showToken, message };
})();
