// sealwatch central: polls the JSON API and draws the list, the map and one site's alerts.
"use strict";
const NS = "http://www.w3.org/2000/svg";
let chosen = null;

function el(tag, attrs, text) {
  const e = tag === "svg:circle" || tag === "svg:text" ? document.createElementNS(NS, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function worstText(w) {
  return w ? `${w.severity} ${w.policy} ${w.subject}` : "—";
}

function sealText(seals) {
  if (!seals || !seals.length) return "—";
  return seals.map((s) => {
    const pct = s.bands.length ? Math.min(...s.bands.map((b) => b.uptime_pct)) : 100;
    return `${s.name || s.id}: ${pct.toFixed(2)} %`;
  }).join("; ");
}

function project(sites) {
  const lons = sites.map((s) => s.lon), lats = sites.map((s) => s.lat);
  const [x0, x1, y0, y1] = [Math.min(...lons), Math.max(...lons), Math.min(...lats), Math.max(...lats)];
  const w = Math.max(x1 - x0, 1e-6), h = Math.max(y1 - y0, 1e-6);
  return (s) => [60 + (880 * (s.lon - x0)) / w, 560 - (500 * (s.lat - y0)) / h];
}

function draw(data) {
  document.getElementById("title").textContent = data.name;
  document.getElementById("counts").textContent = Object.entries(data.availability).map(([k, v]) => `${k} ${v}`).join(" · ");
  const body = document.querySelector("#sites tbody");
  body.replaceChildren();
  const map = document.getElementById("map");
  map.replaceChildren();
  const xy = project(data.sites);
  for (const s of data.sites) {
    const tr = el("tr", { class: "site", "data-site": s.id });
    tr.append(el("td", {}, s.name), el("td", { class: `av-${s.availability}` }, s.availability),
      el("td", { class: s.worst ? `sev-${s.worst.severity}` : "" }, worstText(s.worst)), el("td", {}, sealText(s.seals)));
    tr.onclick = () => { chosen = s.id; detail(); };
    body.append(tr);
    const [x, y] = xy(s);
    const colour = s.availability !== "online" ? "var(--muted)" : s.worst ? `var(--${s.worst.severity})` : "var(--ok)";
    const dot = el("svg:circle", { cx: x, cy: y, r: 9, fill: colour, "data-site": s.id });
    dot.onclick = () => { chosen = s.id; detail(); };
    // the name beside its dot, on the side with room (never past the map's edge)
    const right = x < 600;
    const label = el("svg:text", {
      x: right ? x + 14 : x - 14, y: y + 7, "text-anchor": right ? "start" : "end", "data-site": s.id,
    }, s.name);
    map.append(dot, label);
  }
}

async function detail() {
  if (!chosen) return;
  const r = await fetch(`/api/sites/${encodeURIComponent(chosen)}`);
  const s = await r.json();
  const box = document.getElementById("detail");
  box.replaceChildren(el("h3", {}, `${s.name} — ${s.availability}`));
  const t = el("table");
  for (const a of s.active_alerts) {
    const row = el("tr");
    row.append(el("td", { class: `sev-${a.severity}` }, a.severity), el("td", {}, a.policy),
      el("td", {}, a.subject), el("td", {}, a.isa_state || a.state || ""), el("td", { class: "num" }, a.ts || a.raised || ""));
    t.append(row);
  }
  box.append(s.active_alerts.length ? t : el("p", { class: "muted" }, "没有告警 · no active alerts"));
}

async function poll() {
  try {
    const r = await fetch("/api/overview");
    draw(await r.json());
    const h = await (await fetch("/healthz")).json();
    document.getElementById("broker").textContent = h.broker ? `via ${h.broker}` : "集群不可达 · cluster unreachable";
    await detail();
  } catch (e) {
    document.getElementById("broker").textContent = "中心服务不可达 · centre unreachable";
  }
}
poll();
setInterval(poll, 2000);
