// The public page: the overview from /api/market/overview, then live from /api/market/events (server-sent events).
"use strict";

(() => {
  const { el, fill, table, badge, lineChart, num, pct, range, duration } = coinop;
  let current = null;

  const stateBadge = {
    online: ["online", "ok"], busy: ["busy", "warn"], parked: ["parked", "bad"], draining: ["draining", "warn"], connecting: ["connecting", "info"],
  };

  function render(o) {
    current = o;
    const routable = o.providers.filter(p => p.state === "online" || p.state === "busy");
    document.getElementById("stat-providers").textContent = `${routable.length}` + (o.providers.length > routable.length ? ` (+${o.providers.length - routable.length} other)` : "");
    document.getElementById("stat-models").textContent = String(o.models.length);
    const jobs = o.throughput.points.reduce((s, p) => s + p.jobs, 0);
    document.getElementById("stat-jobs").textContent = num(jobs);
    fill(document.getElementById("stat-mint"),
      el("a", { href: o.mint.url + "/v1/info", text: o.mint.url.replace(/^https?:\/\//, "") }), " ",
      o.mint.demo_money ? badge("demo money", "warn") : badge("real sats", "ok"),
      o.free ? [" ", badge("free", "info")] : null);

    const times = o.throughput.points.map(p => p.at);
    fill(document.getElementById("throughput"), lineChart(
      `Jobs and output tokens per ${o.throughput.bucket_seconds} seconds, last 5 minutes`,
      times,
      [
        { name: "jobs", values: o.throughput.points.map(p => p.jobs) },
        { name: "output tokens ÷ 10", values: o.throughput.points.map(p => p.output_tokens / 10) },
      ]));

    fill(document.getElementById("models"), table("Models and prices",
      ["Model", "Providers", "Input (sat/Mtok)", "Output (sat/Mtok)", "Context"],
      o.models.map(m => [m.model, String(m.providers), range(m.input_price_min, m.input_price_max), range(m.output_price_min, m.output_price_max),
        m.context_window ? num(m.context_window) : "–"]),
      [1, 2, 3, 4]));

    const now = Date.now();
    fill(document.getElementById("providers"), table("Providers online",
      ["Name", "State", "Isolation", "Models", "In flight", "p50 / p95 ms", "tok/s", "Errors", "Uptime"],
      o.providers.map(p => {
        const [label, kind] = stateBadge[p.state] || [p.state, "info"];
        return [
          el("span", { title: p.id, text: p.name }), badge(label, kind), p.isolation || "–", p.models.join(", ") || "–",
          `${p.in_flight} / ${p.max_concurrent}` + (p.queue_depth ? ` (+${p.queue_depth} queued)` : ""),
          `${num(p.p50_latency_ms, 1)} / ${num(p.p95_latency_ms, 1)}`, num(p.tokens_per_second, 1), pct(p.error_rate),
          duration((now - Date.parse(p.connected_at)) / 1000),
        ];
      }),
      [4, 5, 6, 7, 8]));

    document.dispatchEvent(new CustomEvent("coinop:overview", { detail: o }));
  }

  function live(text, kind) {
    const node = document.getElementById("live");
    node.textContent = text;
    node.className = "live badge " + kind;
  }

  async function start() {
    try {
      render(await coinop.api("/api/market/overview"));
    } catch (e) {
      live("could not load: " + e.message, "bad");
    }

    const events = new EventSource("/api/market/events");
    events.addEventListener("overview", e => { render(JSON.parse(e.data)); live("live", "ok"); });
    events.addEventListener("open", () => live("live", "ok"));
    events.addEventListener("error", () => live("reconnecting…", "warn"));
    // Uptimes move on even when nothing else does.
    setInterval(() => { if (current) render(current); }, 30000);
  }

  document.addEventListener("DOMContentLoaded", start);
})();
