// The operator's page: /api/ledger/summary and /api/admin/* (signed in with the admin token: an HttpOnly cookie).
"use strict";

(() => {
  const { el, fill, table, badge, lineChart, sats, num, time, duration, api, postJson, message } = coinop;
  const $ = id => document.getElementById(id);
  const linkBadge = {
    online: "ok", busy: "warn", parked: "bad", draining: "warn", connecting: "info", elsewhere: "info", offline: "info", revoked: "bad",
  };

  function stat(label, value) {
    return el("div", { class: "stat" }, el("span", { class: "label", text: label }), el("span", { class: "value", text: value }));
  }

  async function money() {
    const [summary, m] = await Promise.all([api("/api/ledger/summary"), api("/api/admin/money?window=24h")]);
    fill($("ledger"),
      stat("Received", sats(summary.received_msat)), stat("Spent", sats(summary.spent_msat)), stat("Refunded", sats(summary.refunded_msat)),
      stat("Balances", sats(summary.balances_msat)), stat("Held", sats(summary.held_msat)), stat("Providers earned", sats(summary.provider_earned_msat)),
      stat("Owed to providers", sats(summary.owed_msat)), stat("Paid out", sats(summary.paid_out_msat)), stat("Market fee", sats(summary.fee_msat)));
    // The equations as the market computed them, and checked again here from the summary's own numbers.
    const s = summary;
    const mine = [
      s.received_msat === s.spent_msat + s.refunded_msat + s.balances_msat + s.held_msat,
      s.spent_msat === s.provider_earned_msat + s.fee_msat,
      s.provider_earned_msat === s.paid_out_msat + s.owed_msat,
    ];
    fill($("equations"), m.equations.map((q, i) => el("div", { class: "equation" },
      q.holds && mine[i] ? badge("holds", "ok") : badge("does not hold", "bad"),
      el("code", { text: q.name }),
      el("span", { class: "muted", text: `${sats(q.left_msat)} = ${sats(q.right_msat)}` }))));
    const points = m.series.points;
    fill($("money-chart"), lineChart(`Money moved per ${duration(m.series.bucket_seconds)}, last 24 hours (sat)`, points.map(p => p.at), [
      { name: "received", values: points.map(p => p.received_msat / 1000) },
      { name: "spent", values: points.map(p => p.spent_msat / 1000) },
      { name: "fee", values: points.map(p => p.fee_msat / 1000) },
      { name: "refunded", values: points.map(p => p.refunded_msat / 1000) },
      { name: "paid out", values: points.map(p => p.paid_out_msat / 1000) },
    ]));
    fill($("keysets"), table("Ecash per keyset", ["Keyset", "Active", "Fee (ppk)", "Issued", "Spent", "In change stock", "Outstanding"],
      m.keysets.map(k => [el("code", { title: k.id, text: k.id.length > 16 ? k.id.slice(0, 16) + "…" : k.id }), k.active ? badge("active", "ok") : "retired", String(k.input_fee_ppk),
        num(k.issued_sat) + " sat", num(k.spent_sat) + " sat", num(k.in_stock_sat) + " sat", num(k.outstanding_sat) + " sat"]),
      [2, 3, 4, 5, 6]));
    fill($("quotes"), table("Open quotes", ["Kind", "Quote", "State", "Amount", "Created", "Expires"],
      m.quotes.map(q => [q.kind, el("code", { text: q.id }), q.state, `${num(q.amount)} ${q.unit}`, time(q.created_at), time(q.expires_at)]), [3]));
    fill($("payouts"), table("Payouts", ["When", "Provider", "Amount"],
      m.payouts.map(p => [time(p.at), el("code", { text: p.provider_id }), sats(p.amount_msat)]), [2]));
  }

  async function traffic() {
    const t = await api("/api/admin/traffic?window=15m");
    fill($("queue"), stat("In flight", num(t.queue.in_flight)), stat("Queued at backends", num(t.queue.provider_queue_depth)),
      stat("Providers full", `${t.queue.providers_busy} of ${t.queue.providers_connected}`),
      t.queue.market_queue_depth !== undefined ? stat("Queued at the market", num(t.queue.market_queue_depth)) : null);
    const times = t.buckets;
    const seriesBy = key => [...new Set(t.series.map(p => p[key]))].sort().map(name => ({
      name,
      values: times.map(at => t.series.filter(p => Date.parse(p.at) === Date.parse(at) && p[key] === name).reduce((s, p) => s + p.jobs, 0) / t.bucket_seconds),
    }));
    fill($("traffic-models"), lineChart("Requests per second by model, last 15 minutes", times, seriesBy("model"), v => num(v, 1)));
    fill($("traffic-status"), lineChart("Requests per second by status, last 15 minutes", times, seriesBy("outcome"), v => num(v, 1)));
    fill($("errors"), table("Errors by code", ["Code", "Jobs"], t.errors.map(e => [el("code", { text: e.code }), num(e.jobs)]), [1]));
    fill($("slowest"), table("Slowest providers", ["Provider", "Jobs", "Avg first byte (ms)", "Max first byte (ms)", "Failed", "p95 now (ms)"],
      t.slowest.map(p => [el("span", { title: p.provider_id, text: p.name || p.provider_id }), num(p.jobs), num(p.avg_first_byte_ms, 1), num(p.max_first_byte_ms),
        num(p.failed), p.p95_latency_ms === null || p.p95_latency_ms === undefined ? "–" : num(p.p95_latency_ms, 1)]),
      [1, 2, 3, 4, 5]));
  }

  async function act(what, path, body) {
    try {
      await postJson(path, body);
      message($("note"), what, "ok");
    } catch (e) {
      message($("note"), e.message);
    }
    refresh();
  }

  async function providers() {
    const p = await api("/api/admin/providers");
    fill($("provider-list"), table("Providers", ["Name", "Link", "Isolation", "Models", "Enrolled", "Earned", "Owed", "Paid out", "Actions"],
      p.providers.map(v => [
        el("span", { title: v.id, text: v.name }),
        [badge(v.link, linkBadge[v.link] || "info"), v.parked_until ? el("div", { class: "muted", text: "until " + time(v.parked_until) }) : null],
        v.isolation || "–", v.models.join(", ") || "–", time(v.enrolled_at), sats(v.earned_msat), sats(v.owed_msat), sats(v.paid_out_msat),
        el("div", { class: "actions" },
          v.connected_here && v.link !== "revoked"
            ? (v.parked_until
              ? el("button", { type: "button", class: "secondary", "aria-label": `Un-park (${v.name})`, onclick: () => act(`Un-parked ${v.name}.`, `/api/admin/providers/${encodeURIComponent(v.id)}/park`, { seconds: 0 }) }, "Un-park")
              : el("button", { type: "button", class: "secondary", "aria-label": `Park 10 min (${v.name})`, onclick: () => act(`Parked ${v.name} for 10 minutes.`, `/api/admin/providers/${encodeURIComponent(v.id)}/park`, { seconds: 600 }) }, "Park 10 min"))
            : null,
          v.link !== "revoked"
            ? el("button", {
              type: "button", class: "danger", "aria-label": `Revoke (${v.name})`, onclick: () => {
                if (confirm(`Revoke ${v.name}? It is disconnected and can never connect again with this identity.`)) {
                  act(`Revoked ${v.name}.`, `/api/admin/providers/${encodeURIComponent(v.id)}/revoke`, { reason: "revoked on the operator's page" });
                }
              },
            }, "Revoke")
            : el("span", { class: "muted", text: v.revoked_reason || "" })),
      ]),
      [5, 6, 7]));
    fill($("codes"), table(`Enrollment codes (providers join ${p.enrollment === "open" ? "openly; codes are not needed" : "with a code"})`,
      ["Code", "Uses", "Created", "Expires"],
      p.codes.map(c => [el("code", { text: c.code }), `${c.uses} / ${c.max_uses}`, time(c.created_at), time(c.expires_at)]), [1]));
  }

  async function workloads() {
    const w = await api("/api/admin/workloads");
    fill($("workload-list"), table("Workloads", ["Workload", "State", "Provider", "Standbys", "Epoch", "Created", "History"],
      w.map(x => [el("code", { text: x.id }), [x.state, x.reason ? el("div", { class: "muted", text: x.reason }) : null],
        x.provider ? el("code", { text: x.provider }) : "–", x.standbys.length ? x.standbys.join(", ") : "–", String(x.epoch), time(x.created_at),
        el("details", {}, el("summary", { text: `${x.history.length} steps` }),
          el("ol", {}, x.history.map(h => el("li", { text: `${time(h.at)} ${h.state}${h.provider ? " on " + h.provider : ""}` }))))]),
      [4]));
  }

  async function nodes() {
    let list;
    try {
      const body = await api("/api/nodes");
      list = Array.isArray(body) ? body : body && Array.isArray(body.nodes) ? body.nodes : [];
    } catch {
      list = []; // no such endpoint on this market (one node)
    }
    $("nodes").classList.toggle("hidden", list.length < 2);
    if (list.length < 2) return;
    const keys = [...new Set(list.flatMap(n => Object.keys(n)))];
    fill($("node-list"), table("Nodes", keys, list.map(n => keys.map(k => typeof n[k] === "object" ? JSON.stringify(n[k]) : String(n[k] ?? "–")))));
  }

  async function refresh() {
    const results = await Promise.allSettled([money(), traffic(), providers(), workloads(), nodes()]);
    const failed = results.find(r => r.status === "rejected");
    if (failed && failed.reason && failed.reason.status === 401) {
      location.reload(); // the token changed: sign in again
      return;
    }
    $("updated").textContent = "Updated " + new Date().toLocaleTimeString("en-GB") + (failed ? " (some parts failed: " + failed.reason.message + ")" : "");
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("issue").addEventListener("submit", async e => {
      e.preventDefault();
      try {
        const code = await postJson("/api/admin/enrollment-codes", {
          uses: parseInt($("code-uses").value, 10), valid_for_seconds: parseFloat($("code-hours").value) * 3600,
        });
        fill($("new-code"), "New code: ", el("code", { text: code.code }), ` (${code.max_uses} uses, until ${time(code.expires_at)})`);
        providers();
      } catch (err) {
        message($("note"), "Could not issue a code: " + err.message);
      }
    });
    refresh();
    setInterval(refresh, 5000);
  });
})();
