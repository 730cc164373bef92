// Patchbay dashboard: fetches /admin JSON with the bearer token and draws inline SVG charts.
// No libraries and no network beyond this gateway.
"use strict";

const TOKEN_KEY = "patchbay-admin-token";
const COLORS = ["#2563eb", "#db2777", "#16a34a", "#ea580c", "#7c3aed", "#0891b2", "#ca8a04", "#64748b"];
const SVG_NS = "http://www.w3.org/2000/svg";

// ------------------------------------------------------------------ token

function takeTokenFromUrl() {
  const url = new URL(window.location.href);
  const token = url.searchParams.get("token");
  if (token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    url.searchParams.delete("token");  // keep it out of history and bookmarks
    window.history.replaceState(null, "", url.pathname + url.search);
  }
}

function token() { return sessionStorage.getItem(TOKEN_KEY); }

function showLogin(message) {
  document.getElementById("board").hidden = true;
  document.getElementById("login").hidden = false;
  document.getElementById("login-error").textContent = message || "";
}

class Unauthorized extends Error {}

async function api(path) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${token()}` } });
  if (response.status === 401) throw new Unauthorized("the admin token was refused");
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status} ${await response.text()}`);
  return response;
}

// ------------------------------------------------------------------ svg helpers

function el(name, attrs, text) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function html(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function fmt(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return Number(value).toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

function timeLabel(epoch, step) {
  const date = new Date(epoch * 1000);
  const iso = date.toISOString();
  return step >= 86400 ? iso.slice(5, 10) : iso.slice(5, 10) + " " + iso.slice(11, 16);
}

function legend(container, names) {
  const box = html("div", { class: "legend" });
  names.forEach((name, i) => {
    const item = html("span", { "data-series": name });
    const swatch = el("svg", { width: 10, height: 10, "aria-hidden": "true" });
    swatch.appendChild(el("rect", { width: 10, height: 10, rx: 2, fill: COLORS[i % COLORS.length] }));
    item.appendChild(swatch);
    item.appendChild(document.createTextNode(" " + name));
    box.appendChild(item);
  });
  container.appendChild(box);
}

function empty(container, text) {
  container.replaceChildren(html("p", { class: "muted" }, text || "no data in this range"));
}

// Lines over the time buckets; null values break the line.
function lineChart(container, buckets, step, series, opts = {}) {
  const names = Object.keys(series);
  if (!buckets.length || !names.length) return empty(container);
  const W = 460, H = 200, L = 44, R = 10, T = 10, B = 28;
  const values = names.flatMap((n) => series[n]).filter((v) => v !== null && v !== undefined);
  const max = opts.max !== undefined ? opts.max : Math.max(1e-9, ...values) * 1.1;
  const x = (i) => L + (buckets.length === 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (buckets.length - 1));
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" });
  const tickDigits = opts.digits !== undefined ? opts.digits : max < 5 ? 1 : 0;  // small scales need decimals
  for (let k = 0; k <= 4; k++) {
    const v = (max * k) / 4;
    svg.appendChild(el("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#e5e7eb" }));
    svg.appendChild(el("text", { x: L - 4, y: y(v) + 3, "text-anchor": "end" }, fmt(v, tickDigits)));
  }
  const every = Math.max(1, Math.ceil(buckets.length / 6));
  buckets.forEach((b, i) => {
    if (i % every === 0) svg.appendChild(el("text", { x: x(i), y: H - 8, "text-anchor": "middle" }, timeLabel(b, step)));
  });
  names.forEach((name, s) => {
    const color = COLORS[s % COLORS.length];
    let path = "";
    series[name].forEach((v, i) => {
      if (v === null || v === undefined) return;
      path += `${path && series[name][i - 1] !== null && series[name][i - 1] !== undefined ? "L" : "M"}${x(i)},${y(v)}`;
      const dot = el("circle", { cx: x(i), cy: y(v), r: 2.5, fill: color });
      dot.appendChild(el("title", {}, `${name} ${timeLabel(buckets[i], step)}: ${fmt(v, opts.digits || 0)}`));
      svg.appendChild(dot);
    });
    svg.appendChild(el("path", { d: path, fill: "none", stroke: color, "stroke-width": 2, "data-series": name }));
  });
  container.replaceChildren(svg);
  legend(container, names);
}

// Horizontal bars with their values written next to them (so the figures are readable, and testable).
function barChart(container, entries, opts = {}) {
  if (!entries.length) return empty(container);
  const W = 460, row = 24, L = 110, R = 60;
  const H = entries.length * row + 8;
  const max = Math.max(1e-9, ...entries.map(([, v]) => v));
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" });
  entries.forEach(([label, value], i) => {
    const y = 4 + i * row;
    const width = ((W - L - R) * value) / max;
    svg.appendChild(el("text", { x: L - 6, y: y + 15, "text-anchor": "end", class: "value-label" }, label));
    svg.appendChild(el("rect", { x: L, y, width: Math.max(width, 1), height: row - 6, fill: COLORS[i % COLORS.length], rx: 2 }));
    svg.appendChild(el("text", { x: L + width + 6, y: y + 15, class: "value-label", "data-label": label }, fmt(value, opts.digits || 0)));
  });
  container.replaceChildren(svg);
}

function table(container, headers, rows, numeric = [], emptyText = undefined) {
  if (!rows.length) return empty(container, emptyText);
  const t = html("table");
  const head = html("tr");
  headers.forEach((h, i) => head.appendChild(html("th", numeric.includes(i) ? { class: "num" } : {}, h)));
  t.appendChild(head);
  rows.forEach((cells) => {
    const tr = html("tr");
    cells.forEach((cell, i) => {
      const td = html("td", numeric.includes(i) ? { class: "num" } : {});
      if (cell instanceof Node) td.appendChild(cell); else td.textContent = cell;
      tr.appendChild(td);
    });
    t.appendChild(tr);
  });
  container.replaceChildren(t);
}

function card(label, value) {
  const box = html("div", { class: "card", "data-card": label });
  box.appendChild(html("div", { class: "value" }, value));
  box.appendChild(html("div", { class: "label" }, label));
  return box;
}

// ------------------------------------------------------------------ sections

function drawSummary(summary) {
  const s = summary;
  const rate = s.satisfaction.rate;
  document.getElementById("cards").replaceChildren(
    card("messages", fmt(s.messages.total)),
    card("active users", fmt(s.engagement.active_users)),
    card("messages per user", fmt(s.engagement.messages_per_user, 2)),
    card("p50 response", `${fmt(s.response_time_ms.p50)} ms`),
    card("p95 response", `${fmt(s.response_time_ms.p95)} ms`),
    card("p99 response", `${fmt(s.response_time_ms.p99)} ms`),
    card("satisfaction", rate === null ? "–" : `${fmt(rate * 100, 1)} %`),
    card("cost", `$${fmt(s.cost.usd, 4)}`),
    card("limited or blocked", fmt((s.messages.by_decision.rate_limited || 0) + (s.messages.by_decision.blocked || 0))),
  );
  barChart(document.getElementById("chart-platforms"), Object.entries(s.messages.by_platform));
  barChart(document.getElementById("chart-providers"), Object.entries(s.providers).map(([n, p]) => [n, p.replies]));
  table(
    document.getElementById("table-stages"),
    ["stage", "p50", "p95", "n"],
    Object.entries(s.latency_breakdown_ms).map(([stage, v]) => [stage, fmt(v.p50), fmt(v.p95), fmt(v.count)]),
    [1, 2, 3],
  );
  table(
    document.getElementById("table-rollouts"),
    ["patch", "satisfaction in / out", "difference (95% CI)", "p", "p50 ms in / out"],
    Object.entries(s.rollouts).map(([name, r]) => [
      name,
      `${fmt(r.rollout.satisfaction, 2)} / ${fmt(r.control.satisfaction, 2)}`,
      `${fmt(r.satisfaction.difference, 2)} (${fmt(r.satisfaction.ci95_low, 2)}, ${fmt(r.satisfaction.ci95_high, 2)})`,
      fmt(r.satisfaction.p_value, 3),
      `${fmt(r.rollout.latency_p50_ms)} / ${fmt(r.control.latency_p50_ms)}`,
    ]),
    [],
    "no patch under a partial rollout in this range",
  );
}

function drawTools(tools) {
  const byTool = (tools && tools.by_tool) || {};
  const unavailable = (tools && tools.unavailable) || {};
  const rows = Object.entries(byTool).map(([name, t]) => [
    name, t.server, fmt(t.calls), fmt(t.failures), `${fmt((t.failure_rate || 0) * 100, 1)} %`,
    fmt(t.latency_ms.p50), fmt(t.latency_ms.p95),
  ]);
  for (const [server, count] of Object.entries(unavailable)) {
    rows.push([`${server} (server)`, server, "–", `unavailable for ${fmt(count)} replies`, "–", "–", "–"]);
  }
  table(
    document.getElementById("table-tools"),
    ["tool", "server", "calls", "failures", "failure rate", "p50 ms", "p95 ms"],
    rows,
    [2, 3, 4, 5, 6],
    "no tool calls in this range",
  );
}

function drawSeries(series) {
  const buckets = series.buckets, step = series.step_s;
  lineChart(document.getElementById("chart-traffic"), buckets, step, series.platforms);
  lineChart(document.getElementById("chart-latency"), buckets, step, series.latency_ms);
  lineChart(document.getElementById("chart-satisfaction"), buckets, step, { satisfaction: series.satisfaction }, { max: 1, digits: 2 });
  lineChart(document.getElementById("chart-cost"), buckets, step, { cost: series.cost_usd }, { digits: 4 });
}

function drawPatches(patches, summary) {
  const byName = summary.patches || {};
  const rows = patches.map((p) => {
    const health = html("span", { class: p.health === "ok" ? "good" : "bad" }, p.health);
    const errorRate = p.calls > p.skipped ? p.errors / (p.calls - p.skipped) : 0;
    return [
      p.name, p.kind, p.enabled ? "yes" : "no", `${fmt(p.rollout_percent)} %`, health,
      fmt(p.calls), `${fmt(errorRate * 100, 1)} %`, `${fmt(p.fallback_rate * 100, 1)} %`,
      byName[p.name] ? `${fmt((byName[p.name].fallback_rate || 0) * 100, 1)} %` : "–",
      fmt(p.below_failed || 0),
      p.refused ? p.refusal_reason : "",
    ];
  });
  // "below failed": calls the layer under the patch failed; propagated and never charged to the patch.
  table(
    document.getElementById("table-patches"),
    ["patch", "kind", "enabled", "rollout", "health", "calls", "errors", "fallbacks (live)", "fallbacks (range)", "below failed", "refused / broken"],
    rows,
    [3, 5, 6, 7, 8, 9],
    "no patches registered yet (workers publish theirs when they start)",
  );
}

// ------------------------------------------------------------------ loading

function rangeQuery() {
  const since = document.getElementById("range").value;
  return since ? `?since=${encodeURIComponent(since)}` : "";
}

async function load() {
  const status = document.getElementById("status");
  document.getElementById("login").hidden = true;
  document.getElementById("board").hidden = false;
  status.textContent = "loading…";
  try {
    const query = rangeQuery();
    const [summary, series] = await Promise.all([
      api(`/admin/summary${query}`).then((r) => r.json()),
      api(`/admin/timeseries${query}${query ? "&" : "?"}buckets=24`).then((r) => r.json()),
    ]);
    drawSummary(summary);
    drawTools(summary.tools);
    drawSeries(series);
    try {
      drawPatches(await (await api("/admin/patches")).json(), summary);
    } catch (error) {
      if (error instanceof Unauthorized) throw error;
      empty(document.getElementById("table-patches"), `patch status unavailable: ${error.message}`);
    }
    status.textContent = `updated ${new Date().toISOString().slice(0, 19).replace("T", " ")} UTC`;
    document.body.dataset.loaded = "true";
  } catch (error) {
    if (error instanceof Unauthorized) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin(error.message);
    } else {
      status.textContent = `error: ${error.message}`;
      status.className = "error";
    }
  }
}

async function download(format) {
  const response = await api(`/admin/export?format=${format}${rangeQuery().replace("?", "&")}`);
  const blob = await response.blob();
  const link = html("a", { href: URL.createObjectURL(blob), download: `patchbay-events.${format}` });
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

document.addEventListener("DOMContentLoaded", () => {
  takeTokenFromUrl();
  document.getElementById("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
    load();
  });
  document.getElementById("range").addEventListener("change", load);
  document.getElementById("logout").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); showLogin(""); });
  document.querySelectorAll("#downloads button").forEach((button) => {
    button.addEventListener("click", () => download(button.dataset.format).catch((e) => {
      document.getElementById("status").textContent = `export failed: ${e.message}`;
    }));
  });
  if (token()) load(); else showLogin("");
});
