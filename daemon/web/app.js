/* sealwatch dashboard. Plain JS, no libraries, nothing loaded from outside this daemon.
 *
 * Data flow: one WebSocket (/live) sends a snapshot, then deltas. Deltas are queued and
 * applied once per animation frame, patching keyed DOM nodes in place: 500 devices and
 * 100 alerts never cause a full re-render. Operator actions call the daemon's /api/
 * commands with the session's CSRF token in a header.
 */
"use strict";

const RANK = { guard: 0, operator: 1, supervisor: 2, admin: 3 };
const SEV = { critical: 2, major: 1, minor: 0 };
const SVGNS = "http://www.w3.org/2000/svg";
const $ = (sel) => document.querySelector(sel);

const S = {
  lang: localStorage.getItem("sealwatch.lang") || "zh-CN",
  text: null, csrf: null, user: null, role: "guard",
  site: null, alerts: new Map(), devices: new Map(), people: {}, seals: [],
  offset: 0, ws: null, wsTries: 0, tab: "overview",
  sound: localStorage.getItem("sealwatch.sound") !== "off", audio: null,
  filters: { kind: "", zone: "", device: "", severity: "" }, timelineOldest: null,
  load: null, expanded: new Set(),
};
// Deltas waiting for the next animation frame.
const P = { alerts: new Map(), devices: new Map(), timeline: [], people: null, seals: null, full: false };
let flushQueued = false;
const stats = (window.sealwatchStats = { alertShown: {}, alertPainted: {}, flushes: 0, flushMs: 0 });

// -- text ---------------------------------------------------------------------------------
function t(key, vars) {
  const table = (S.text && S.text.ui[S.lang]) || {};
  let s = table[key];
  if (s === undefined) s = key.includes(".") ? key.split(".").slice(1).join(".") : key;
  if (vars) for (const k in vars) s = s.replace("{" + k + "}", vars[k]);
  return s;
}
function applyI18n() {
  document.documentElement.lang = S.lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-ph]")) el.placeholder = t(el.dataset.i18nPh);
  for (const el of document.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
  $("#banner-text").textContent = t(RANK[S.role] >= RANK.operator ? "alerts.new_critical" : "alerts.critical_active");
  $("#login-tz").textContent = tz();
  $("#sound-btn").textContent = t(S.sound ? "sound.on" : "sound.off");
  setConn(!!S.live);
  fmt.time = new Intl.DateTimeFormat(S.lang, { timeZone: tz(), hour12: false, hour: "2-digit", minute: "2-digit", second: "2-digit" });
  fmt.date = new Intl.DateTimeFormat(S.lang, { timeZone: tz(), month: "2-digit", day: "2-digit" });
  fmt.dateKey = new Intl.DateTimeFormat("en-CA", { timeZone: tz(), year: "numeric", month: "2-digit", day: "2-digit" });
}
const fmt = {};
function tz() { return (S.site && S.site.timezone) || S.loginTz || "UTC"; }
function now() { return Date.now() + S.offset; }
function hms(ms) { return ms ? fmt.time.format(new Date(ms)) : "—"; }
function when(ms) {
  if (!ms) return "—";
  const d = new Date(ms);
  return fmt.dateKey.format(d) === fmt.dateKey.format(new Date(now())) ? fmt.time.format(d) : fmt.date.format(d) + " " + fmt.time.format(d);
}
function dur(ms) {
  if (ms == null || ms < 0) return "—";
  const s = Math.floor(ms / 1000), d = Math.floor(s / 86400);
  const hh = String(Math.floor((s % 86400) / 3600)).padStart(2, "0");
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return (d ? d + (S.lang === "en" ? " d " : " 天 ") : "") + hh + ":" + mm + ":" + ss;
}
function zoneName(id) { const z = S.site && S.site.zonesById[id]; return z ? (z.name || id) : (id || "—"); }
function devName(id) { const d = S.site && S.site.devById[id]; return d && d.name ? d.name + " (" + id + ")" : id; }
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function svg(tag, attrs, parent) {
  const e = document.createElementNS(SVGNS, tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (parent) parent.appendChild(e);
  return e;
}

// -- talking to the daemon ------------------------------------------------------------------
async function api(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (S.csrf) headers["X-CSRF-Token"] = S.csrf;
  const resp = await fetch(path, { method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await resp.json(); } catch (e) { data = null; }
  if (resp.status === 401 && path !== "/auth/login") showLogin("login.expired");
  return { ok: resp.ok && !(data && data.accepted === false), status: resp.status, data };
}

async function boot() {
  S.text = await (await fetch("/static/i18n.json", { credentials: "same-origin" })).json();
  applyI18n();
  wireUi();
  const r = await api("GET", "/auth/session");
  if (r.ok) { setUser(r.data); connect(); }
  else {
    loginSite(r.data && r.data.site);
    showLogin(r.data && r.data.users_exist === false ? "login.nousers" : null);
  }
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js").catch(() => {});
  everySecond();
  setInterval(everySecond, 1000);
  setInterval(refreshThumbs, 2000);
}

// The login screen: the site's name and its clock in the site's time zone, nothing else.
function loginSite(site) {
  if (!site) return;
  S.loginTz = site.timezone;
  $("#login-site").textContent = site.name;
  applyI18n();
}

function setUser(d) {
  S.csrf = d.csrf; S.user = d.user; S.role = d.role;
  document.body.classList.remove("login-open");
  applyI18n();
  $("#who").innerHTML = "";
  $("#who").append(el("b", "", d.user), document.createTextNode(" · " + t("role." + d.role)));
  $("#login").classList.add("hidden");
  for (const f of document.querySelectorAll("[data-role]")) f.classList.toggle("hidden", RANK[S.role] < RANK[f.dataset.role]);
  $("#act-guard").classList.toggle("hidden", S.role !== "guard");
}

function showLogin(reason) {
  if (S.ws) { S.ws.onclose = null; S.ws.close(); S.ws = null; }
  S.csrf = null;
  document.body.classList.add("login-open");
  $("#login").classList.remove("hidden");
  $("#login-err").textContent = reason ? t(reason) : "";
  $("#login-user").focus();
}

async function doLogin(ev) {
  ev.preventDefault();
  unlockAudio();
  const r = await api("POST", "/auth/login", { username: $("#login-user").value, password: $("#login-pass").value });
  $("#login-pass").value = "";
  if (r.ok) { setUser(r.data); connect(); return; }
  $("#login-err").textContent = r.status === 429 ? t("login.throttled", { s: (r.data && r.data.retry_after_s) || 60 }) : t("login.failed");
}

function connect() {
  const proto = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(proto + location.host + "/live");
  S.ws = ws;
  ws.onopen = () => { S.wsTries = 0; };
  ws.onmessage = (m) => receive(JSON.parse(m.data));
  ws.onclose = (e) => {
    setConn(false);
    if (S.ws !== ws) return;
    S.ws = null;
    if (e.code === 4001) { showLogin("login.expired"); return; }
    const delay = Math.min(10000, 500 * Math.pow(1.6, S.wsTries++)) * (0.7 + Math.random() * 0.6);
    setTimeout(async () => {
      const r = await api("GET", "/auth/session");
      if (r.ok) { setUser(r.data); connect(); } else if (r.status !== 401) { ws.onclose({ code: 0 }); }
    }, delay);
  };
}
function setConn(up) {
  S.live = up;
  const c = $("#conn");
  c.classList.toggle("lost", !up);
  c.textContent = t(up ? "conn.live" : "conn.lost");
}

function receive(msg) {
  if (msg.now_ms) S.offset = msg.now_ms - Date.now();
  if (msg.t === "snapshot") { setConn(true); loadSnapshot(msg); return; }
  if (msg.t === "bye") return;
  if (msg.t === "alerts") {
    for (const a of msg.upsert) P.alerts.set(a.id, a);
    for (const id of msg.remove) P.alerts.set(id, null);
  }
  if (msg.devices) for (const d of msg.devices) P.devices.set(d.id, d);
  if (msg.timeline) P.timeline.push(...msg.timeline);
  if (msg.people) P.people = msg.people;
  if (msg.seals) P.seals = msg.seals;
  if (msg.health) renderHealth(msg.health);
  queueFlush();
}

// The daemon's own faults (store not writable, broker away): shown above everything else.
function renderHealth(h) {
  const bad = h && h.status !== "ok";
  $("#health-banner").classList.toggle("hidden", !bad);
  $("#health-problems").textContent = bad ? h.problems.join(" · ") : "";
}

function queueFlush() {
  if (flushQueued) return;
  flushQueued = true;
  requestAnimationFrame(flush);
}

// -- applying deltas, once per frame ----------------------------------------------------------
function flush() {
  flushQueued = false;
  const t0 = performance.now();
  if (P.alerts.size) {
    const fresh = [];
    for (const [id, a] of P.alerts) {
      if (a === null) { removeAlert(id); continue; }
      if (!S.alerts.has(id)) fresh.push(id);
      S.alerts.set(id, a);
      renderAlert(a);
    }
    P.alerts.clear();
    orderAlerts();
    clearTimeout(S.loadTimer);
    S.loadTimer = setTimeout(fetchLoad, 300);
    updateCue();
    const shown = performance.timeOrigin + performance.now();
    for (const id of fresh) stats.alertShown[id] = shown;
    if (fresh.length) requestAnimationFrame(() => {
      const painted = performance.timeOrigin + performance.now();
      for (const id of fresh) stats.alertPainted[id] = painted;
    });
  }
  if (P.devices.size) {
    for (const [id, d] of P.devices) { S.devices.set(id, d); renderDevice(d); }
    P.devices.clear();
    renderJammers();
  }
  if (P.people) { S.people = P.people; P.people = null; renderPeople(); }
  if (P.seals) { S.seals = P.seals; P.seals = null; renderSeal(); }
  if (P.timeline.length) { prependTimeline(P.timeline); P.timeline = []; }
  stats.flushes++;
  stats.flushMs += performance.now() - t0;
}

function loadSnapshot(snap) {
  const site = snap.site;
  site.zonesById = Object.fromEntries(site.zones.map((z) => [z.id, z]));
  site.devById = Object.fromEntries(site.devices.map((d) => [d.id, d]));
  for (const d of site.doors) site.devById[d.id] = Object.assign({}, d, { kind: "door", door_kind: d.kind, zone: d.a + " ↔ " + d.b });
  S.site = site; S.thumbs = snap.thumbnails;
  renderHealth(snap.health);
  applyI18n();
  $("#site-name").textContent = site.name;
  $("#site-id").textContent = site.id + " · " + site.timezone;
  $("#login-site").textContent = site.name;
  document.title = site.name + " · sealwatch";
  S.devices = new Map(snap.devices.map((d) => [d.id, d]));
  S.alerts = new Map();
  $("#alerts").innerHTML = "";
  alertNodes.clear();
  drawPlan();
  buildDeviceTable();
  buildCameras();
  buildFilters();
  buildActionChoices();
  for (const d of snap.devices) renderDevice(d);
  renderJammers();
  S.people = snap.people; renderPeople();
  S.seals = snap.seals; renderSeal();
  for (const a of snap.alerts) { S.alerts.set(a.id, a); renderAlert(a); }
  orderAlerts();
  updateCue();
  fetchLoad();
  setTimeline(snap.timeline);
  everySecond();
}

// -- alerts -----------------------------------------------------------------------------------
const alertNodes = new Map();
let alertOrder = [];

// newest first; during a flood first-out first (the oldest alarm is most likely the cause)
function alertKey(a) { const flood = S.load && S.load.flood; return [a.closed ? 1 : 0, -(SEV[a.severity] || 0), a.acked ? 1 : 0, flood ? a.raised_ms : -a.raised_ms]; }
function cmpAlerts(x, y) {
  const a = alertKey(x), b = alertKey(y);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return x.id < y.id ? -1 : 1;
}

function renderAlert(a) {
  let n = alertNodes.get(a.id);
  if (!n) {
    n = el("div", "alert");
    n.dataset.id = a.id;
    n.tabIndex = 0;
    n.setAttribute("role", "button");
    n.append(el("span", "sev"), el("div", "head"), el("div", "time num"), el("div", "text"), el("div", "state"), el("div", "acts"));
    alertNodes.set(a.id, n);
  }
  n.className = "alert " + a.severity + " " + a.state + (a.closed ? " closed" : "");
  const [sev, head, time, text, state, acts] = n.children;
  sev.textContent = t("sev." + a.severity);
  head.textContent = devName(a.subject.split("/")[0]) + (a.subject.includes("/") ? " / " + a.subject.split("/").slice(1).join("/") : "");
  const clause = el("span", "clause", a.clause);
  head.appendChild(clause);
  time.textContent = when(a.raised_ms);
  text.textContent = (a.explain && a.explain[S.lang]) || a.message;
  text.title = a.message;
  state.textContent = "";
  state.append(el("b", "", a.closed ? t("alerts.closed_note") : t("state." + a.state)));
  if (a.acked_by) state.append(document.createTextNode(" · " + t("by") + " " + a.acked_by));
  if (a.shelved_by) state.append(document.createTextNode(" · " + t("alerts.shelved_by") + " " + a.shelved_by));
  if (a.shelved_until) state.append(document.createTextNode(" · ≤ " + a.shelved_until.slice(11, 16)));
  if (a.zone) state.append(document.createTextNode(" · " + zoneName(a.zone)));
  acts.textContent = "";
  if (RANK[S.role] >= RANK.operator && !a.closed) {
    if (!a.acked) acts.append(button("ack", a.id, "alerts.ack", "btn primary"));
    if (a.state === "shelved") acts.append(button("unshelve", a.id, "alerts.unshelve", "btn"));
    else if (a.active && !a.suppressed) acts.append(button("shelve", a.id, "alerts.shelve", "btn"));
  }
}
function button(act, id, key, cls) {
  const b = el("button", cls, t(key));
  b.dataset.act = act; b.dataset.id = id;
  return b;
}
function removeAlert(id) {
  S.alerts.delete(id);
  const n = alertNodes.get(id);
  if (n) { n.remove(); alertNodes.delete(id); }
}
function orderAlerts() {
  let list = [...S.alerts.values()].sort(cmpAlerts).map((a) => a.id);
  list = groupedOrder(list);
  const box = $("#alerts");
  const same = list.length === alertOrder.length && list.every((id, i) => id === alertOrder[i]) && box.childElementCount === list.length;
  if (!same) {
    // Move only what is out of place; appending an already-placed node is a no-op cost.
    let prev = null;
    for (const id of list) {
      const n = alertNodes.get(id);
      const want = prev ? prev.nextSibling : box.firstChild;
      if (n !== want) box.insertBefore(n, want);
      prev = n;
    }
    alertOrder = list;
  }
  let empty = box.querySelector(".empty");
  if (!list.length && !empty) box.append(el("div", "empty", t("alerts.none")));
  else if (list.length && empty) empty.remove();
  const crit = list.filter((id) => S.alerts.get(id).severity === "critical" && !S.alerts.get(id).closed).length;
  $("#alert-count").textContent = list.length ? list.length + (crit ? " · " + crit + " " + t("sev.critical") : "") : "";
}

// -- ISA-18.2 alarm load: figures, flood state, consequential alarms under their cause --------
function groupsNow() { return (S.load && S.load.flood && S.load.groups) || []; }
// During a flood each cause's members follow it (folded unless expanded); nothing is dropped.
function groupedOrder(list) {
  const groups = groupsNow().filter((g) => S.alerts.has(g.cause));
  const memberOf = new Map();
  for (const g of groups) for (const m of g.members) if (S.alerts.has(m)) memberOf.set(m, g.cause);
  for (const [id, n] of alertNodes) {
    const cause = memberOf.get(id);
    n.classList.toggle("member", !!cause);
    n.classList.toggle("folded", !!cause && !S.expanded.has(cause));
    let grp = n.querySelector(".grp");
    const g = groups.find((x) => x.cause === id);
    const count = g ? g.members.filter((m) => S.alerts.has(m)).length : 0;
    n.classList.toggle("cause", count > 0);
    if (count) {
      if (!grp) { grp = el("button", "btn grp"); grp.dataset.act = "group"; n.append(grp); }
      grp.dataset.id = id;
      grp.textContent = t(S.expanded.has(id) ? "load.hide" : "load.grouped", { n: count });
      grp.setAttribute("aria-expanded", S.expanded.has(id) ? "true" : "false");
    } else if (grp) grp.remove();
  }
  if (!memberOf.size) return list;
  const out = [];
  for (const id of list) {
    if (memberOf.has(id)) continue;
    out.push(id);
    const g = groups.find((x) => x.cause === id);
    if (g) for (const m of g.members) if (S.alerts.has(m)) out.push(m);
  }
  return out;
}
async function fetchLoad() {
  S.loadAt = now();
  const r = await api("GET", "/api/alarm-load");
  if (!r.ok) return;
  S.load = r.data;
  renderLoad();
  orderAlerts();
}
function renderLoad() {
  const L = S.load;
  const strip = $("#alarm-load");
  strip.textContent = "";
  strip.append(el("span", L.flood ? "bad" : "", t("load.10min", { n: L.last_10min, p: L.per_operator_10min })), el("span", "", t("load.hour", { n: L.last_hour })));
  strip.append(el("span", L.chattering.length ? "warn" : "", t("load.chatter", { n: L.chattering.length })), el("span", L.stale.length ? "warn" : "", t("load.stale", { n: L.stale.length })));
  if (L.top_sources.length) strip.append(el("span", "top", t("load.top") + L.top_sources.map((x) => x.subject + " ×" + x.count).join(", ")));
  const fb = $("#flood-banner");
  fb.classList.toggle("hidden", !L.flood);
  fb.textContent = L.flood ? t("load.flood", { n: L.last_10min, limit: L.flood_limit }) : "";
}

// The audible and visual cue: while any critical alert is unacknowledged (and not shelved).
let cueTimer = null;
function updateCue() {
  const n = [...S.alerts.values()].filter((a) => a.severity === "critical" && !a.acked && !a.closed && a.state !== "shelved" && a.state !== "suppressed").length;
  // Guards may not acknowledge: their banner informs, it does not ask, and it does not beep.
  const mayAck = RANK[S.role] >= RANK.operator;
  $("#banner").classList.toggle("hidden", n === 0);
  $("#banner-count").textContent = n;
  const badge = $("#tab-alert-count");
  badge.classList.toggle("hidden", n === 0);
  badge.textContent = n;
  document.title = (n ? "(" + n + ") " : "") + ((S.site && S.site.name) || "sealwatch") + " · sealwatch";
  const ring = n > 0 && mayAck;
  if (ring && !cueTimer) { beep(); cueTimer = setInterval(beep, 2500); }
  if (!ring && cueTimer) { clearInterval(cueTimer); cueTimer = null; }
}
function unlockAudio() {
  try {
    if (!S.audio) S.audio = new (window.AudioContext || window.webkitAudioContext)();
    if (S.audio.state === "suspended") S.audio.resume();
  } catch (e) { S.audio = null; }
}
function beep() {
  if (!S.sound || !S.audio || S.audio.state !== "running") return;
  // Two falling tones: noticeable without being shrill in a quiet room.
  const t0 = S.audio.currentTime;
  for (const [f, at] of [[880, 0], [660, 0.28]]) {
    const o = S.audio.createOscillator(), g = S.audio.createGain();
    o.type = "sine"; o.frequency.value = f;
    g.gain.setValueAtTime(0.0001, t0 + at);
    g.gain.exponentialRampToValueAtTime(0.25, t0 + at + 0.02);
    g.gain.exponentialRampToValueAtTime(0.0001, t0 + at + 0.25);
    o.connect(g).connect(S.audio.destination);
    o.start(t0 + at); o.stop(t0 + at + 0.27);
  }
}

// -- the site plan ------------------------------------------------------------------------------
const planNodes = new Map(); // device or door id -> {g, title}
const zoneNodes = new Map(); // zone id -> {count, bg}
const ICONS = {
  camera: '<path d="M3 6.5h9.5v7H3z"/><path d="M12.5 8.5 17 6v8l-4.5-2.5"/>',
  jammer: '<path d="M10 9v8M7 17h6"/><path d="M6.5 4.5a5 5 0 0 0 0 7M13.5 4.5a5 5 0 0 1 0 7M8.3 6.3a2.4 2.4 0 0 0 0 3.4M11.7 6.3a2.4 2.4 0 0 1 0 3.4"/>',
  alarm_input: '<circle cx="10" cy="10" r="2.2"/><path d="M5.5 5.5a6.4 6.4 0 0 0 0 9M14.5 5.5a6.4 6.4 0 0 1 0 9"/>',
  alarm_panel: '<rect x="4" y="3.5" width="12" height="13" rx="1.5"/><path d="M7 7h6M7 10h6M7 13h3"/>',
  phone_detector: '<rect x="6.5" y="3" width="7" height="14" rx="1.5"/><path d="M9 14.5h2"/><path d="M3 7l14 6"/>',
  checkpoint: '<path d="M6 17V3M6 4h8l-2 3 2 3H6"/>',
  console: '<rect x="3" y="4" width="14" height="9" rx="1"/><path d="M8 16h4M10 13v3"/>',
  duty_phone: '<path d="M5 4h3l1.5 3.5-2 1.3a8 8 0 0 0 3.7 3.7l1.3-2L16 12v3a1.5 1.5 0 0 1-1.6 1.5A12 12 0 0 1 3.5 5.6 1.5 1.5 0 0 1 5 4z"/>',
};

function defs(root) {
  const d = svg("defs", {}, root);
  for (const k in ICONS) {
    const s = svg("symbol", { id: "i-" + k, viewBox: "0 0 20 20" }, d);
    s.innerHTML = ICONS[k];
    s.setAttribute("fill", "none"); s.setAttribute("stroke", "currentColor");
    s.setAttribute("stroke-width", "1.6"); s.setAttribute("stroke-linecap", "round"); s.setAttribute("stroke-linejoin", "round");
  }
  const p = svg("symbol", { id: "i-person", viewBox: "0 0 20 20" }, d);
  p.innerHTML = '<circle cx="10" cy="6" r="3.2"/><path d="M3.5 17.5a6.5 6.5 0 0 1 13 0z"/>';
  p.setAttribute("fill", "currentColor");
}

function layout(site) {
  const W = 900, ICON = 26, PAD = 10, GAP = 14;
  const TITLE = (z) => (z.classification ? 46 : 32);
  const kids = {}, devs = {};
  for (const z of site.zones) if (z.parent && site.zonesById[z.parent]) (kids[z.parent] = kids[z.parent] || []).push(z);
  for (const d of site.devices) (devs[d.zone] = devs[d.zone] || []).push(d);
  const roots = site.zones.filter((z) => !z.parent || !site.zonesById[z.parent]);
  const outside = roots.filter((z) => !z.sealed && z.kind !== "screening");
  const airlock = roots.filter((z) => z.kind === "screening");
  const sealed = roots.filter((z) => z.sealed);
  const boxes = {};
  function measure(z, w) {
    const n = (devs[z.id] || []).length;
    const cols = Math.max(1, Math.floor((w - 2 * PAD) / ICON));
    let h = TITLE(z) + Math.ceil(n / cols) * ICON;
    const ch = kids[z.id] || [];
    if (ch.length) {
      const cc = Math.max(1, Math.min(ch.length, Math.floor((w - 2 * PAD + GAP) / (150 + GAP))));
      const cw = (w - 2 * PAD - (cc - 1) * GAP) / cc;
      const rows = [];
      ch.forEach((c, i) => { const r = Math.floor(i / cc); rows[r] = Math.max(rows[r] || 0, measure(c, cw).h); });
      h += rows.reduce((s, x) => s + x + GAP, 0);
      z._cc = cc; z._cw = cw; z._rows = rows;
    }
    return { h: h + PAD };
  }
  function place(z, x, y, w) {
    const h = measure(z, w).h;
    boxes[z.id] = { x, y, w, h, zone: z };
    const ds = devs[z.id] || [];
    const cols = Math.max(1, Math.floor((w - 2 * PAD) / ICON));
    ds.forEach((d, i) => { d._x = x + PAD + 12 + (i % cols) * ICON; d._y = y + TITLE(z) - 2 + Math.floor(i / cols) * ICON; });
    let cy = y + TITLE(z) + Math.ceil(ds.length / cols) * ICON;
    const ch = kids[z.id] || [];
    ch.forEach((c, i) => {
      const r = Math.floor(i / z._cc), col = i % z._cc;
      if (col === 0 && i > 0) cy += z._rows[r - 1] + GAP;
      place(c, x + PAD + col * (z._cw + GAP), cy, z._cw);
    });
    return h;
  }
  const cols = [];
  let x = 0;
  if (outside.length) { cols.push({ zones: outside, x, w: 180 }); x += 215; }
  if (airlock.length) { cols.push({ zones: airlock, x, w: 150, airlock: true }); x += 185; }
  cols.push({ zones: sealed, x: x + 14, w: W - x - 28, sealed: true });
  const top = 34;
  const heights = cols.map((c) => c.zones.reduce((s, z) => s + measure(z, c.w).h + GAP, 0));
  const H = Math.max(...heights, 120) + top + 20;
  cols.forEach((c, i) => {
    let y = top;
    for (const z of c.zones) y += place(z, c.x, y, c.w) + GAP;
  });
  const sealedBox = sealed.length ? { x: cols[cols.length - 1].x - 12, y: top - 12, w: cols[cols.length - 1].w + 24, h: heights[cols.length - 1] + 10 } : null;
  return { W, H, boxes, cols, sealedBox, top };
}

function ancestor(site, a, b) { // is zone a an ancestor of zone b?
  for (let z = site.zonesById[b]; z && z.parent; z = site.zonesById[z.parent]) if (z.parent === a) return true;
  return false;
}

function drawPlan() {
  const site = S.site, host = $("#plan");
  host.innerHTML = "";
  planNodes.clear(); zoneNodes.clear();
  if (site.floor_plan) return drawFloorPlan(site, host);
  const L = layout(site);
  const root = svg("svg", { viewBox: `0 0 ${L.W} ${L.H}`, role: "img" });
  defs(root);
  for (const c of L.cols) {
    if (c.sealed) continue;
    const lab = svg("text", { x: c.x, y: 20, class: c.airlock ? "airlock-label" : "group-label" }, root);
    lab.textContent = c.airlock ? t("plan.airlock") : t("plan.outside");
  }
  if (L.sealedBox) {
    const b = L.sealedBox;
    svg("rect", { x: b.x, y: b.y, width: b.w, height: b.h, rx: 14, class: "boundary" }, root);
    const lab = svg("text", { x: b.x + 14, y: b.y - 4 + 0, class: "boundary-label" }, root);
    lab.textContent = "▣ " + t("plan.sealed");
    lab.setAttribute("y", 20);
  }
  const zoneLayer = svg("g", {}, root), linkLayer = svg("g", {}, root), devLayer = svg("g", {}, root);
  const ordered = site.zones.slice().sort((a, b) => depth(site, a) - depth(site, b));
  for (const z of ordered) {
    const b = L.boxes[z.id];
    if (!b) continue;
    const g = svg("g", { class: "zone " + z.kind + (z.sealed ? " sealed" : "") }, zoneLayer);
    svg("rect", { x: b.x, y: b.y, width: b.w, height: b.h, class: "box" }, g);
    const title = svg("text", { x: b.x + 10, y: b.y + 19, class: "title" }, g);
    title.textContent = z.name || z.id;
    if (z.classification) {
      const sub = svg("text", { x: b.x + 10, y: b.y + 35, class: "sub" }, g);
      sub.textContent = t("class." + z.classification);
    }
    const cg = svg("g", {}, g);
    const bg = svg("rect", { x: b.x + b.w - 50, y: b.y + 6, width: 42, height: 18, rx: 9, class: "count-bg" }, cg);
    svg("use", { href: "#i-person", x: b.x + b.w - 47, y: b.y + 8, width: 14, height: 14 }, cg).setAttribute("color", "#9fb3c8");
    const count = svg("text", { x: b.x + b.w - 30, y: b.y + 20, class: "count" }, cg);
    const tip = svg("title", {}, g);
    zoneNodes.set(z.id, { count, bg, tip });
  }
  // doors: links between boxes (or on a child's top edge when one zone holds the other)
  const used = {};
  for (const d of site.doors) {
    const A = L.boxes[d.a], B = L.boxes[d.b];
    if (!A || !B) continue;
    let x, y, path = null;
    if (ancestor(site, d.a, d.b) || ancestor(site, d.b, d.a)) {
      // a room inside another: the door sits on the room's left wall
      const child = ancestor(site, d.a, d.b) ? B : A;
      const k = (used[child.zone.id] = (used[child.zone.id] || 0) + 1) - 1;
      x = child.x; y = child.y + Math.min(child.h - 12, 30 + k * 24);
    } else {
      const [P1, P2] = A.x <= B.x ? [A, B] : [B, A];
      const key = [d.a, d.b].sort().join("|");
      const k = (used[key] = (used[key] || 0) + 1) - 1;
      if (P1.x + P1.w <= P2.x) {
        const clamp = (v, box) => Math.min(box.y + box.h - 14, Math.max(box.y + 16, v));
        y = clamp(P1.y + P1.h / 2 + k * 24, P2);
        const y1 = clamp(y, P1);
        x = d.boundary && L.sealedBox && L.sealedBox.x > P1.x + P1.w && L.sealedBox.x < P2.x + 2 ? L.sealedBox.x : (P1.x + P1.w + P2.x) / 2;
        if (d.boundary && L.sealedBox && Math.abs(P2.x - L.sealedBox.x) < 20) x = L.sealedBox.x;
        path = `M${P1.x + P1.w},${y1} H${x} V${y} H${P2.x}`;
      } else {
        const [U, D] = A.y <= B.y ? [A, B] : [B, A];
        const lo = Math.max(U.x, D.x), hi = Math.min(U.x + U.w, D.x + D.w);
        x = (lo < hi ? (lo + hi) / 2 : (U.x + D.x) / 2) + k * 26;
        y = (U.y + U.h + D.y) / 2;
        path = `M${x},${U.y + U.h} V${D.y}`;
      }
    }
    if (path) svg("path", { d: path, class: "link", fill: "none" }, linkLayer);
    const g = svg("g", { class: "door unknown" + (d.entrance ? " entrance" : "") }, devLayer);
    g.dataset.id = d.id;
    svg("rect", { x: x - 9, y: y - 9, width: 18, height: 18 }, g);
    const glyph = svg("text", { x: x, y: y + 3.5, "text-anchor": "middle" }, g);
    glyph.textContent = d.kind === "hatch" ? "H" : d.two_person ? "2" : d.entrance ? (d.entrance === "outer" ? "O" : "I") : "D";
    if (path) {
      const lab = svg("text", { x: x, y: y + 21, "text-anchor": "middle", class: "door-label" }, g);
      lab.textContent = d.name || d.id;
    }
    const title = svg("title", {}, g);
    planNodes.set(d.id, { g, title, door: true });
  }
  for (const d of site.devices) {
    if (d._x === undefined) continue;
    const g = svg("g", { class: "dev unknown" }, devLayer);
    g.dataset.id = d.id;
    svg("circle", { cx: d._x, cy: d._y + 10, r: 11, class: "bg" }, g);
    svg("use", { href: "#i-" + d.kind, x: d._x - 8, y: d._y + 2, width: 16, height: 16 }, g);
    const title = svg("title", {}, g);
    planNodes.set(d.id, { g, title });
  }
  host.appendChild(root);
  placeDoorLabels(root, L.W);
  planView(root, L.W, L.H);
}
function depth(site, z) { let n = 0; for (let c = z; c && c.parent && site.zonesById[c.parent]; c = site.zonesById[c.parent]) n++; return n; }

function drawFloorPlan(site, host) {
  const fp = site.floor_plan;
  const root = svg("svg", { viewBox: `0 0 ${fp.width} ${fp.height}` });
  defs(root);
  svg("image", { href: fp.url, x: 0, y: 0, width: fp.width, height: fp.height }, root);
  for (const d of site.doors.concat(site.devices)) {
    if (!d.position) continue;
    const [x, y] = d.position;
    const isDoor = site.doors.includes(d);
    const g = svg("g", { class: (isDoor ? "door" : "dev") + " unknown" }, root);
    g.dataset.id = d.id;
    if (isDoor) svg("rect", { x: x - 9, y: y - 9, width: 18, height: 18 }, g);
    else { svg("circle", { cx: x, cy: y, r: 11, class: "bg" }, g); svg("use", { href: "#i-" + d.kind, x: x - 8, y: y - 8, width: 16, height: 16 }, g); }
    planNodes.set(d.id, { g, title: svg("title", {}, g), door: isDoor });
  }
  host.appendChild(root);
}

function devStatus(d) {
  if (!d || d.online === null || d.online === undefined) return "unknown";
  if (d.online === false) return "offline";
  if (d.sev) return d.sev;
  return "ok";
}
function stateText(d) {
  const info = S.site.devById[d.id] || {};
  const kind = info.kind;
  const parts = [];
  if (d.online === false) parts.push(t("devices.offline"));
  if (kind === "door") { if (d.online != null || d.open || d.forced) parts.push(d.forced ? t("door.forced") : d.open ? t("door.open") : t("door.closed")); }
  else if (kind === "alarm_input" && d.state) parts.push(t("input." + d.state));
  else if (kind === "alarm_panel") {
    if (d.armed != null) parts.push(t(d.armed ? "panel.armed" : "panel.disarmed"));
    if (d.mains === "lost") parts.push(t("panel.mains_lost"));
    if (d.battery === "low") parts.push(t("panel.battery_low"));
  } else if (kind === "jammer" && d.bands) {
    const bands = info.bands || [];
    const ok = bands.filter((b) => d.bands[b.id] !== undefined && d.bands[b.id] >= b.min_dbm).length;
    parts.push(d.output === false ? t("jammers.off") : ok + "/" + bands.length + " ✓");
    if (d.faults && d.faults.length) parts.push(d.faults.join(", "));
  } else if (kind === "camera" && d.stream) {
    parts.push(t("camera." + d.stream));
    if (d.tamper) parts.push(t("tamper." + d.tamper));
  }
  if (!parts.length) parts.push(d.online == null ? t("devices.never") : t("devices.online"));
  return parts.join(" · ");
}

function renderDevice(d) {
  const info = S.site.devById[d.id];
  if (!info) return;
  const status = devStatus(d);
  const n = planNodes.get(d.id);
  if (n) {
    if (n.door) {
      const cls = d.forced ? "forced" : d.open ? "open" : d.online == null ? "unknown" : "closed";
      n.g.setAttribute("class", "door " + cls + (d.sev === "critical" ? " alert" : "") + (info.entrance ? " entrance" : ""));
    } else {
      n.g.setAttribute("class", "dev " + status);
    }
    n.title.textContent = devName(d.id) + " — " + stateText(d);
  }
  const row = devRows.get(d.id);
  if (row) {
    row.className = status;
    row.cells[3].textContent = stateText(d);
    row.cells[4].textContent = d.seen_ms ? when(d.seen_ms) : t("devices.never");
  }
  const cam = camNodes.get(d.id);
  if (cam) for (const c of cam) paintCamera(c, d);
}

function renderPeople() {
  const site = S.site;
  const counts = {};
  // headcount of a zone includes the zones inside it
  for (const z in S.people) {
    for (let id = z; id; id = site.zonesById[id] && site.zonesById[id].parent) counts[id] = (counts[id] || 0) + S.people[z].length;
  }
  for (const [id, n] of zoneNodes) {
    const c = counts[id] || 0;
    n.count.textContent = c;
    n.bg.setAttribute("class", "count-bg" + (c ? " some" : ""));
    n.tip.textContent = zoneName(id) + ": " + ((S.people[id] || []).map(personName).join(", ") || t("nobody"));
  }
  const box = $("#people");
  box.textContent = "";
  box.append(el("span", "", t("people.inside") + ":"));
  const zones = Object.keys(S.people).filter((z) => S.people[z].length && site.zonesById[z] && site.zonesById[z].kind !== "public");
  if (!zones.length) box.append(el("span", "", t("nobody")));
  for (const z of zones) {
    const s = el("span");
    s.append(el("b", "", zoneName(z) + " " + S.people[z].length), document.createTextNode(" " + S.people[z].slice(0, 6).map(personName).join(", ") + (S.people[z].length > 6 ? " …" : "")));
    box.append(s);
  }
}
function personName(badge) { const p = S.site.people[badge]; return p ? p.name : badge; }

// -- seal and jammers -------------------------------------------------------------------------
function renderSeal() {
  const body = $("#seal-body");
  body.textContent = "";
  const chip = $("#seal-chip");
  const active = S.seals.filter((s) => s.status === "active");
  chip.classList.toggle("active", active.length > 0);
  chip.textContent = active.length ? "● " + t("seal.active") + " · " + active[0].name : t("seal.none");
  if (!S.seals.length) { body.append(el("div", "empty", t("seal.none"))); return; }
  for (const s of S.seals) {
    s._sent = now();
    const head = el("div", "name", s.name);
    head.append(el("span", "cls", t("class." + s.classification)));
    const status = el("div", "muted", t("seal." + s.status) + " · " + s.id + (s.start_ms ? " · " + when(s.start_ms) : s.planned_start_ms ? " · " + when(s.planned_start_ms) : ""));
    const figs = el("div", "figures");
    const fig = (k, cls) => { const f = el("div", "fig"); const v = el("div", "v " + (cls || "")); f.append(el("div", "k", t(k)), v); figs.append(f); return v; };
    s._elapsed = fig("seal.elapsed");
    s._remaining = fig("seal.remaining");
    const intr = fig("seal.interruptions", s.interruptions ? "bad" : "");
    intr.textContent = s.interruptions;
    const table = el("table");
    s._pct = [];
    for (const b of s.bands) {
      const tr = el("tr");
      const pct = el("td", "pct");
      tr.append(el("td", "", b.jammer), el("td", "", b.band), pct);
      table.append(tr);
      s._pct.push([b, pct]);
    }
    body.append(head, status, figs);
    if (s.bands.length) { body.append(el("div", "muted", t("seal.uptime"))); body.append(table); }
  }
  tickSeal();
}
function tickSeal() {
  const n = now();
  for (const s of S.seals) {
    if (!s._elapsed) continue;
    const end = s.end_ms || n;
    s._elapsed.textContent = s.start_ms ? dur(end - s.start_ms) : "—";
    s._remaining.textContent = s.status === "active" && s.planned_end_ms ? dur(s.planned_end_ms - n) : "—";
    const span = s.start_ms ? Math.max(1, end - s.start_ms) : 0;
    for (const [b, td] of s._pct) {
      // downtime keeps growing while a band is still down (server sent it up to now_ms)
      const down = b.down_ms + (b.down_now && !s.end_ms ? Math.max(0, n - (s._sent || n)) : 0);
      const pct = span ? Math.max(0, 100 * (1 - down / span)) : null;
      td.textContent = pct === null ? "—" : pct.toFixed(pct === 100 ? 0 : 3) + " %";
      td.className = "pct " + (pct === null ? "" : pct < 100 ? "bad" : "good");
    }
  }
}

const jamRows = new Map();
function renderJammers() {
  const box = $("#jammers");
  const jams = S.site.devices.filter((d) => d.kind === "jammer");
  if (!jamRows.size || box.childElementCount !== jams.length) {
    box.textContent = ""; jamRows.clear();
    if (!jams.length) box.append(el("div", "empty", "—"));
    for (const j of jams) {
      const wrap = el("div", "jammer");
      const name = el("div", "jname", j.name || j.id);
      const note = el("span", "note");
      name.append(note);
      wrap.append(name);
      const bands = [];
      for (const b of j.bands) {
        const row = el("div", "band");
        const bar = el("div", "bar"), fill = el("div", "fill"), floor = el("div", "floor"), val = el("div", "val num");
        bar.append(fill, floor);
        row.append(el("span", "", b.id), bar, val);
        wrap.append(row);
        bands.push({ b, row, fill, floor, val });
      }
      box.append(wrap);
      jamRows.set(j.id, { note, bands });
    }
  }
  for (const j of jams) {
    const r = jamRows.get(j.id), d = S.devices.get(j.id) || {};
    r.note.textContent = d.online === false ? t("devices.offline") : d.output === false ? t("jammers.off") : d.faults && d.faults.length ? d.faults.join(", ") : "";
    for (const x of r.bands) {
      const lo = x.b.min_dbm - 15, hi = x.b.min_dbm + 10;
      const v = d.bands ? d.bands[x.b.id] : undefined;
      const pos = (val) => Math.max(0, Math.min(100, (100 * (val - lo)) / (hi - lo)));
      x.floor.style.left = pos(x.b.min_dbm) + "%";
      x.fill.style.width = (v === undefined ? 0 : pos(v)) + "%";
      const low = v === undefined ? false : v < x.b.min_dbm || d.output === false;
      x.row.className = "band" + (v === undefined ? " nodata" : low ? " low" : "");
      x.val.textContent = v === undefined ? t("jammers.nodata") : v.toFixed(1) + " dBm";
      x.row.title = t("jammers.floor") + " " + x.b.min_dbm + " dBm";
    }
  }
}

// -- cameras ----------------------------------------------------------------------------------
const camNodes = new Map();
function buildCameras() {
  camNodes.clear();
  for (const host of [$("#cams"), $("#camstrip")]) {
    host.textContent = "";
    for (const c of S.site.devices.filter((d) => d.kind === "camera")) {
      const box = el("div", "cam");
      box.dataset.id = c.id;
      const img = el("img");
      img.alt = c.id;
      const none = el("div", "none", t("cameras.nothumb"));
      const badge = el("span", "tbadge hidden");
      const label = el("div", "label", (c.name || c.id) + " · " + zoneName(c.zone));
      img.className = "hidden";
      img.onload = () => { none.classList.add("hidden"); img.classList.remove("hidden"); };
      img.onerror = () => { img.classList.add("hidden"); none.classList.remove("hidden"); };
      box.append(img, none, badge, label);
      host.append(box);
      const n = { box, img, badge, host };
      if (!camNodes.has(c.id)) camNodes.set(c.id, []);
      camNodes.get(c.id).push(n);
      paintCamera(n, S.devices.get(c.id) || { id: c.id });
    }
  }
  refreshThumbs();
}
function paintCamera(n, d) {
  const bad = d.stream === "down" || d.tamper || d.online === false;
  n.box.classList.toggle("bad", !!bad && d.sev === "critical");
  n.box.classList.toggle("warn", !!bad && d.sev !== "critical");
  n.badge.classList.toggle("hidden", !bad);
  n.badge.className = "tbadge" + (bad ? "" : " hidden") + (bad && d.sev !== "critical" ? " warn" : "");
  n.badge.textContent = d.online === false ? t("devices.offline") : d.stream === "down" ? t("camera.down") : d.tamper ? t("tamper." + d.tamper) : "";
}
function refreshThumbs() {
  if (!S.thumbs || !S.site || document.hidden) return;
  const host = S.tab === "cameras" ? $("#cams") : S.tab === "overview" ? $("#camstrip") : null;
  if (!host) return;
  for (const [id, list] of camNodes) for (const n of list) if (n.host === host) n.img.src = "/api/dashboard/cameras/" + encodeURIComponent(id) + ".jpg?t=" + Date.now();
}
let largeTimer = null;
function openCamera(id) {
  const dlg = $("#dlg-camera");
  dlg.querySelector(".subject").textContent = devName(id);
  const img = $("#camera-large");
  const load = () => { if (S.thumbs) img.src = "/api/dashboard/cameras/" + encodeURIComponent(id) + ".jpg?size=large&t=" + Date.now(); };
  load();
  largeTimer = setInterval(load, 1000);
  dlg.onclose = () => { clearInterval(largeTimer); largeTimer = null; };
  dlg.showModal();
}

// -- timeline ---------------------------------------------------------------------------------
const CATS = ["alert", "door", "badge", "alarm", "jammer", "camera", "phone", "patrol", "operator", "seal", "approval", "inspection", "review", "call", "device"];
function buildFilters() {
  const opt = (sel, items) => {
    sel.textContent = "";
    sel.append(new Option(t("timeline.all"), ""));
    for (const [v, label] of items) sel.append(new Option(label, v));
  };
  opt($("#f-kind"), CATS.map((c) => [c, t("cat." + c)]));
  opt($("#f-zone"), S.site.zones.map((z) => [z.id, z.name || z.id]));
  opt($("#f-sev"), ["critical", "major", "minor"].map((s) => [s, t("sev." + s)]));
  const dl = $("#device-list");
  dl.textContent = "";
  for (const id of Object.keys(S.site.devById)) dl.append(new Option(id));
}
function matches(item) {
  const f = S.filters;
  if (f.kind && item.cat !== f.kind) return false;
  if (f.zone && item.zone !== f.zone) return false;
  if (f.device && item.device !== f.device) return false;
  if (f.severity && (item.k !== "alert" || item.detail.severity !== f.severity)) return false;
  return true;
}
function describe(item) {
  const d = item.detail || {};
  if (item.k === "alert") {
    return t("sev." + d.severity) + " · " + t("tr." + d.state) +
      " · " + d.subject + " · " + ((item.explain && item.explain[S.lang]) || d.policy) + (d.comment ? " — " + d.comment : "");
  }
  const dev = devName(item.device);
  switch (item.type) {
    case "door.opened": return dev + " " + t("door.open");
    case "door.closed": return dev + " " + t("door.closed");
    case "door.forced": return dev + " " + t("door.forced");
    case "badge.granted": case "badge.denied":
      return dev + " · " + personName(d.badge) + " (" + d.badge + ") " + (d.direction === "out" ? "←" : "→") + (item.type === "badge.denied" ? " ✗ " + (d.reason || "") : " ✓");
    case "alarm.input": return dev + " · " + t("input." + d.state);
    case "seal.start": case "seal.end": return (item.type === "seal.start" ? t("actions.seal_start") : t("actions.seal_end")) + " · " + d.seal + (d.name ? " · " + d.name : "") + (item.actor ? " · " + item.actor : "");
    case "operator.duty": return personName(d.badge) + " " + t(d.state === "on" ? "duty.on" : "duty.off") + " · " + dev;
    default: {
      const kv = Object.entries(d).filter(([, v]) => v !== null && typeof v !== "object").map(([k, v]) => k + "=" + v);
      return dev + (kv.length ? " · " + kv.join(" ") : "");
    }
  }
}
function timelineNode(item) {
  const li = el("li", item.k === "alert" ? "sev-" + item.detail.severity : "");
  li.append(el("span", "t", hms(item.ms)), el("span", "c", t("cat." + item.cat)), el("span", "", zoneName(item.zone)), el("span", "d", describe(item)));
  return li;
}
function setTimeline(items) {
  const ul = $("#timeline");
  ul.textContent = "";
  const shown = items.filter(matches);
  for (const it of shown) ul.append(timelineNode(it));
  S.timelineOldest = items.length ? items[items.length - 1].ms : null;
  $("#timeline-empty").classList.toggle("hidden", shown.length > 0);
}
function prependTimeline(items) {
  const ul = $("#timeline");
  const frag = document.createDocumentFragment();
  const fresh = items.filter(matches).sort((a, b) => b.ms - a.ms);
  for (const it of fresh) frag.append(timelineNode(it));
  ul.insertBefore(frag, ul.firstChild);
  while (ul.childElementCount > 500) ul.lastChild.remove();
  if (fresh.length) $("#timeline-empty").classList.add("hidden");
}
async function fetchTimeline(older) {
  const f = S.filters, q = new URLSearchParams({ limit: "200" });
  if (f.kind) q.set("kind", f.kind);
  if (f.zone) q.set("zone", f.zone);
  if (f.device) q.set("device", f.device);
  if (f.severity) q.set("severity", f.severity);
  if (older && S.timelineOldest) q.set("before_ms", S.timelineOldest);
  const r = await api("GET", "/api/dashboard/timeline?" + q);
  if (!r.ok) return;
  if (!older) setTimeline(r.data);
  else {
    const ul = $("#timeline");
    for (const it of r.data.filter(matches)) ul.append(timelineNode(it));
    if (r.data.length) S.timelineOldest = r.data[r.data.length - 1].ms;
  }
}

// -- device table -----------------------------------------------------------------------------
const devRows = new Map();
function buildDeviceTable() {
  const body = $("#devrows");
  body.textContent = "";
  devRows.clear();
  const all = S.site.doors.map((d) => S.site.devById[d.id]).concat(S.site.devices);
  const frag = document.createDocumentFragment();
  for (const d of all) {
    const tr = el("tr", "unknown");
    const id = el("td");
    id.append(el("span", "dot"), document.createTextNode(d.name ? d.name + " (" + d.id + ")" : d.id));
    tr.append(id, el("td", "", t("kind." + (d.door_kind === "hatch" ? "hatch" : d.kind))), el("td", "", d.kind === "door" ? d.zone : zoneName(d.zone)), el("td", "st", "—"), el("td", "last", "—"));
    tr.dataset.search = (d.id + " " + (d.name || "") + " " + d.kind + " " + d.zone).toLowerCase();
    frag.append(tr);
    devRows.set(d.id, tr);
  }
  body.append(frag);
}

// -- actions ----------------------------------------------------------------------------------
function buildActionChoices() {
  const zones = $("#inspection-zone"), cams = $("#review-camera"), badges = $("#badge-list");
  zones.textContent = ""; cams.textContent = ""; badges.textContent = "";
  for (const z of S.site.zones.filter((z) => z.kind === "key_part")) zones.append(new Option(z.name || z.id, z.id));
  for (const c of S.site.devices.filter((d) => d.kind === "camera")) cams.append(new Option(c.name || c.id, c.id));
  for (const [b, p] of Object.entries(S.site.people)) { const o = new Option(b, b); o.label = p.name; badges.append(o); }
}
async function submitAction(form, ev) {
  ev.preventDefault();
  const f = new FormData(form), out = form.querySelector(".out");
  let r;
  if (form.id === "act-seal") {
    const seal = encodeURIComponent(f.get("seal"));
    r = ev.submitter && ev.submitter.value === "end"
      ? await api("POST", "/api/seals/" + seal + "/end", {})
      : await api("POST", "/api/seals/" + seal + "/start", { name: f.get("name") || undefined, classification: f.get("classification") });
  } else if (form.id === "act-precheck") {
    r = await api("POST", "/api/precheck", { remediation: f.get("remediation") || undefined });
    if (r.ok) fetchLatestPrecheck();
  } else if (form.id === "act-approval") {
    r = await api("POST", "/api/approvals", { badge: f.get("badge"), valid_s: Number(f.get("valid")) * 60 });
  } else if (form.id === "act-inspection") {
    r = await api("POST", "/api/inspections", { zone: f.get("zone") });
  } else {
    r = await api("POST", "/api/reviews", { camera: f.get("camera") });
  }
  out.className = "out " + (r.ok ? "note-ok" : "note-bad");
  out.textContent = r.ok ? t("actions.done") : t("actions.refused") + ((r.data && r.data.reason) || r.status);
}

// -- the alert's detail: history, events around it, clause, what to do, snapshot ------------
let detailId = null;
async function openDetail(id) {
  const a = S.alerts.get(id);
  const dlg = $("#dlg-alert");
  detailId = id;
  $("#detail-title").textContent = a ? a.subject : id;
  $("#detail-meta").textContent = t("detail.loading");
  for (const sel of ["#detail-clause", "#detail-todo", "#detail-history", "#detail-context", "#detail-snapshot"]) $(sel).textContent = "";
  if (!dlg.open) {
    dlg.showModal();
    history.pushState({ detail: id }, "");  // the phone's back button closes the sheet
  }
  const r = await api("GET", "/api/dashboard/alerts/" + encodeURIComponent(id));
  if (detailId !== id) return;
  if (!r.ok) { $("#detail-meta").textContent = t("actions.refused") + ((r.data && r.data.reason) || r.status); return; }
  renderDetail(r.data);
}
function langOf(texts) { return texts ? (S.lang === "en" ? texts.en : texts.zh) || texts.en || texts.zh : ""; }
function renderDetail(d) {
  const live = S.alerts.get(d.alert_id);
  $("#detail-title").textContent = devName(d.subject.split("/")[0]) + (d.subject.includes("/") ? " / " + d.subject.split("/").slice(1).join("/") : "");
  const meta = $("#detail-meta");
  meta.textContent = "";
  meta.append(el("span", "sevtag " + d.severity, t("sev." + d.severity)), document.createTextNode(" " + d.policy + " · " + when(d.raised_ms) + (d.zone ? " · " + zoneName(d.zone) : "") + " · " + t("state." + (live ? live.state : d.isa_state))));
  meta.append(el("div", "msg", (live && live.explain && live.explain[S.lang]) || d.message));
  const clause = $("#detail-clause");
  clause.textContent = "";
  clause.append(el("b", "clause", d.clause), document.createTextNode(" " + (langOf(d.clause_text) || "")));
  const todo = $("#detail-todo");
  todo.textContent = "";
  for (const line of langOf(d.procedure).split("\n")) if (line.trim()) todo.append(el("li", "", line.replace(/^\d+\.\s*/, "")));
  if (d.procedure.source === "site") todo.append(el("li", "muted site-note", t("detail.todo_site")));
  const hist = $("#detail-history");
  hist.textContent = "";
  hist.append(row("th", [t("detail.col_time"), t("detail.col_what"), t("detail.col_by"), t("detail.col_note")]));
  for (const h of d.history) {
    const note = [h.comment, h.reason && t("detail.reason") + ": " + h.reason, h.until && t("detail.until") + " " + when(Date.parse(h.until))].filter(Boolean).join(" · ");
    const tr = row("td", [when(h.ms), t("tr." + h.what), h.by ? personName(h.by) : "—", note || "—"]);
    tr.className = "h-" + h.what;
    hist.append(tr);
  }
  const ctx = $("#detail-context");
  ctx.textContent = "";
  if (!d.context.length) ctx.append(row("td", [t("detail.context_none")]));
  else ctx.append(row("th", [t("detail.col_time"), "Δ", t("detail.col_device"), t("detail.col_event")]));
  for (const e of d.context) {
    const tr = row("td", [hms(e.ms), (e.offset_s > 0 ? "+" : "") + e.offset_s + " s", devName(e.device), e.type + " " + detailText(e.detail)]);
    if (Math.abs(e.offset_s) < 1) tr.className = "at-raise";
    ctx.append(tr);
  }
  const snapBox = $("#detail-snap-box");
  snapBox.classList.toggle("hidden", !d.snapshot);
  if (d.snapshot) $("#detail-snapshot").textContent = t("detail.no_snapshot") + " · " + t("detail.cameras") + ": " + d.snapshot.cameras.map(devName).join(", ");
}
function row(cell, values) {
  const tr = el("tr");
  for (const v of values) tr.append(el(cell, "", v));
  return tr;
}
function detailText(detail) {
  return Object.entries(detail || {}).filter(([k]) => k !== "site").map(([k, v]) => k + "=" + (typeof v === "object" ? JSON.stringify(v) : v)).join(" ").slice(0, 240);
}
function closeDetail() {
  const dlg = $("#dlg-alert");
  if (dlg.open) dlg.close();
}

let dialogAlert = null;
function openAlertDialog(kind, id) {
  const a = S.alerts.get(id);
  if (!a) return;
  dialogAlert = id;
  const dlg = $(kind === "ack" ? "#dlg-ack" : "#dlg-shelve");
  dlg.querySelector(".subject").textContent = a.subject;
  dlg.querySelector(".out").textContent = "";
  dlg.querySelector("textarea").value = "";
  dlg.showModal();
  dlg.querySelector("textarea").focus();
}
async function submitAlertDialog(kind, ev) {
  const form = ev.target;
  if (ev.submitter && ev.submitter.value === "cancel") return;
  ev.preventDefault();
  const f = new FormData(form);
  const r = kind === "ack"
    ? await api("POST", "/api/alerts/" + encodeURIComponent(dialogAlert) + "/ack", { comment: f.get("comment") || undefined })
    : await api("POST", "/api/alerts/" + encodeURIComponent(dialogAlert) + "/shelve", { reason: f.get("reason"), for_s: Number(f.get("for_s")) });
  if (r.ok) form.closest("dialog").close();
  else form.querySelector(".out").textContent = t("actions.refused") + ((r.data && r.data.reason) || r.status);
}

// -- wiring -----------------------------------------------------------------------------------
function showTab(tab) {
  S.tab = tab;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("on", b.dataset.tab === tab);
  for (const v of document.querySelectorAll(".view")) v.classList.toggle("hidden", v.id !== "view-" + tab);
  refreshThumbs();
  if (tab === "seals") fetchCalendar();
  if (tab === "muster") fetchMuster();
  if (tab === "actions" && RANK[S.role] >= RANK.supervisor) fetchLatestPrecheck();
  if (tab === "overview" && S.labelsPending) { const r = S.labelsPending; S.labelsPending = null; placeDoorLabels(r, Z.W); }
}
function wireUi() {
  $("#login-form").addEventListener("submit", doLogin);
  document.addEventListener("click", async (ev) => {
    unlockAudio();
    const b = ev.target.closest("[data-act],[data-tab],.cam");
    if (!b) {
      const card = ev.target.closest("#alerts .alert");
      if (card) openDetail(card.dataset.id);
      return;
    }
    if (b.dataset.tab) return showTab(b.dataset.tab);
    if (b.classList.contains("cam")) return openCamera(b.dataset.id);
    switch (b.dataset.act) {
      case "lang":
        S.lang = S.lang === "zh-CN" ? "en" : "zh-CN";
        localStorage.setItem("sealwatch.lang", S.lang);
        applyI18n();
        if (S.site) rerenderAll();
        break;
      case "sound":
        S.sound = !S.sound;
        localStorage.setItem("sealwatch.sound", S.sound ? "on" : "off");
        applyI18n();
        break;
      case "logout":
        await api("POST", "/auth/logout", {});
        showLogin(null);
        break;
      case "ack": case "shelve": openAlertDialog(b.dataset.act, b.dataset.id); break;
      case "unshelve": await api("POST", "/api/alerts/" + encodeURIComponent(b.dataset.id) + "/unshelve", {}); break;
      case "older": fetchTimeline(true); break;
      case "precheck-run": runPrecheck(); break;
      case "detail-close": closeDetail(); break;
      case "group":
        if (S.expanded.has(b.dataset.id)) S.expanded.delete(b.dataset.id); else S.expanded.add(b.dataset.id);
        orderAlerts();
        break;
      case "print": await fetchMuster(); window.print(); break;
      case "zoom-in": zoomPlan(0.7); break;
      case "zoom-out": zoomPlan(1 / 0.7); break;
      case "zoom-reset": zoomPlan(0); break;
    }
  });
  $("#alerts").addEventListener("keydown", (ev) => {
    const card = ev.target.closest && ev.target.closest(".alert");
    if (card && ev.target === card && (ev.key === "Enter" || ev.key === " ")) { ev.preventDefault(); openDetail(card.dataset.id); }
  });
  // Esc closes the sheet (the dialog's own cancel); back closes it too
  $("#dlg-alert").addEventListener("close", () => {
    const wasId = detailId;
    detailId = null;
    if (wasId && history.state && history.state.detail) history.back();
    const card = alertNodes.get(wasId);
    if (card) card.focus();
  });
  window.addEventListener("popstate", () => { if ($("#dlg-alert").open) { detailId = null; closeDetail(); } });
  $("#ack-form").addEventListener("submit", (ev) => submitAlertDialog("ack", ev));
  $("#shelve-form").addEventListener("submit", (ev) => submitAlertDialog("shelve", ev));
  for (const id of ["act-seal", "act-precheck", "act-approval", "act-inspection", "act-review"]) {
    const form = document.getElementById(id);
    form.addEventListener("submit", (ev) => submitAction(form, ev));
  }
  const onFilter = () => {
    S.filters = { kind: $("#f-kind").value, zone: $("#f-zone").value, device: $("#f-device").value.trim(), severity: $("#f-sev").value };
    fetchTimeline(false);
  };
  for (const id of ["#f-kind", "#f-zone", "#f-sev", "#f-device"]) $(id).addEventListener("change", onFilter);
  $("#dev-filter").addEventListener("input", (ev) => {
    const q = ev.target.value.trim().toLowerCase();
    for (const tr of devRows.values()) tr.classList.toggle("hidden", q !== "" && !tr.dataset.search.includes(q));
  });
  document.addEventListener("visibilitychange", refreshThumbs);
}
function rerenderAll() {
  drawPlan(); buildDeviceTable(); buildCameras(); buildFilters(); buildActionChoices();
  for (const d of S.devices.values()) renderDevice(d);
  jamRows.clear(); renderJammers(); renderPeople(); renderSeal();
  for (const a of S.alerts.values()) renderAlert(a);
  orderAlerts(); updateCue(); fetchTimeline(false);
  if (S.user) setUser({ user: S.user, role: S.role, csrf: S.csrf });
}
function everySecond() {
  if (!fmt.time) return;
  $("#clock").textContent = fmt.time.format(new Date(now()));
  $("#login-clock").textContent = fmt.time.format(new Date(now()));
  // closed-on-acknowledgement alerts leave the list once their time is up
  const expired = [...S.alerts.values()].filter((a) => a.closed && a.linger_until_ms && a.linger_until_ms < now());
  if (expired.length) { for (const a of expired) removeAlert(a.id); orderAlerts(); }
  if (S.seals.length) tickSeal();
  if (S.csrf && now() - (S.loadAt || 0) > 5000) fetchLoad();
  if (S.tab === "muster" && !document.hidden && now() - (S.musterAt || 0) > 10000) fetchMuster();
}

// -- door labels: never on top of each other, never cut off at the plan's edge ---------------
function placeDoorLabels(root, W) {
  if (!root.getBoundingClientRect().width) { S.labelsPending = root; return; } // not shown yet
  const labels = [...root.querySelectorAll("text.door-label")];
  const placed = [];
  const overlaps = (a, b) => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
  for (const lab of labels) {
    let box = lab.getBBox();
    // keep inside the drawing
    if (box.x < 2) { lab.setAttribute("x", Number(lab.getAttribute("x")) + (2 - box.x)); box = lab.getBBox(); }
    if (box.x + box.width > W - 2) { lab.setAttribute("x", Number(lab.getAttribute("x")) - (box.x + box.width - W + 2)); box = lab.getBBox(); }
    // step down (then up) until it is clear of every label placed so far
    const y0 = Number(lab.getAttribute("y"));
    const tries = [0, 11, 22, -32, 33, -43, 44, 55];
    let ok = false;
    for (const dy of tries) {
      lab.setAttribute("y", y0 + dy);
      box = lab.getBBox();
      if (!placed.some((p) => overlaps(box, p))) { ok = true; break; }
    }
    if (!ok) { lab.classList.add("hidden"); continue; } // its name stays in the door's tooltip
    placed.push({ x: box.x - 1, y: box.y - 1, width: box.width + 2, height: box.height + 2 });
  }
}

// -- the plan's zoom and pan: the SVG viewBox, by buttons, wheel, drag and pinch -------------
const Z = { root: null, W: 0, H: 0, vb: null, pointers: new Map(), start: null };
function planView(root, W, H) {
  Z.root = root; Z.W = W; Z.H = H; Z.vb = { x: 0, y: 0, w: W, h: H };
  root.addEventListener("wheel", (ev) => { ev.preventDefault(); zoomPlan(ev.deltaY < 0 ? 0.85 : 1 / 0.85, ev); }, { passive: false });
  root.addEventListener("pointerdown", (ev) => {
    Z.pointers.set(ev.pointerId, { x: ev.clientX, y: ev.clientY });
    Z.start = { vb: Object.assign({}, Z.vb), pts: new Map(Z.pointers) };
  });
  const end = (ev) => { Z.pointers.delete(ev.pointerId); Z.start = { vb: Object.assign({}, Z.vb), pts: new Map(Z.pointers) }; };
  root.addEventListener("pointerup", end);
  root.addEventListener("pointercancel", end);
  root.addEventListener("pointermove", (ev) => {
    if (!Z.pointers.has(ev.pointerId) || !Z.start) return;
    Z.pointers.set(ev.pointerId, { x: ev.clientX, y: ev.clientY });
    const r = root.getBoundingClientRect(), k = Z.start.vb.w / r.width;
    const pts = [...Z.pointers.values()], was = [...Z.start.pts.values()];
    if (pts.length === 1 && was.length === 1) {
      if (Z.start.vb.w >= Z.W) return; // nothing to pan at full view: let the page scroll
      setView(Z.start.vb.x - (pts[0].x - was[0].x) * k, Z.start.vb.y - (pts[0].y - was[0].y) * k, Z.start.vb.w);
    } else if (pts.length >= 2 && was.length >= 2) {
      const dist = (a, b) => Math.hypot(a.x - b.x, a.y - b.y) || 1;
      const f = dist(was[0], was[1]) / dist(pts[0], pts[1]);
      const cx = (was[0].x + was[1].x) / 2 - r.left, cy = (was[0].y + was[1].y) / 2 - r.top;
      const px = Z.start.vb.x + cx * k, py = Z.start.vb.y + cy * k, w = Z.start.vb.w * f;
      setView(px - (cx / r.width) * w, py - (cy / r.height) * w * (Z.H / Z.W), w);
    }
  });
  applyView();
}
function setView(x, y, w) {
  w = Math.max(Z.W / 8, Math.min(Z.W, w));
  const h = w * (Z.H / Z.W);
  Z.vb = { x: Math.max(0, Math.min(Z.W - w, x)), y: Math.max(0, Math.min(Z.H - h, y)), w, h };
  applyView();
}
function applyView() {
  if (!Z.root) return;
  Z.root.setAttribute("viewBox", `${Z.vb.x} ${Z.vb.y} ${Z.vb.w} ${Z.vb.h}`);
  $("#plan").classList.toggle("zoomed", Z.vb.w < Z.W);
}
function zoomPlan(f, ev) {
  if (!Z.root) return;
  if (!f) return setView(0, 0, Z.W);
  const r = Z.root.getBoundingClientRect();
  const fx = ev ? (ev.clientX - r.left) / r.width : 0.5, fy = ev ? (ev.clientY - r.top) / r.height : 0.5;
  const w = Math.max(Z.W / 8, Math.min(Z.W, Z.vb.w * f)), h = w * (Z.H / Z.W);
  setView(Z.vb.x + fx * (Z.vb.w - w), Z.vb.y + fy * (Z.vb.h - h), w);
}

// -- the seal calendar: upcoming, running and past seals with their status --------------------
async function fetchCalendar() {
  const r = await api("GET", "/api/dashboard/seals");
  if (r.ok) renderCalendar(r.data);
}
function renderCalendar(seals) {
  const box = $("#seal-calendar");
  box.textContent = "";
  const groups = [["active", "seals.running"], ["pending", "seals.upcoming"], ["ended", "seals.past"]];
  for (const [status, key] of groups) {
    const sec = el("section", "calgroup " + status);
    sec.append(el("h3", "", t(key)));
    const list = seals.filter((s) => s.status === status);
    if (!list.length) sec.append(el("div", "muted", t("seals.none")));
    for (const s of list) {
      const row = el("div", "calrow " + status);
      row.dataset.id = s.id;
      const head = el("div", "name", s.name);
      head.append(el("span", "cls", t("class." + s.classification)));
      const planned = el("div", "muted", t("seals.planned") + " " + when(s.planned_start_ms) + " → " + when(s.planned_end_ms));
      const actual = el("div", "", t("seals.actual") + " " + when(s.start_ms) + " → " + (s.end_ms ? when(s.end_ms) : s.start_ms ? "…" : "—"));
      const facts = el("div", "facts");
      const pc = s.precheck || "none";
      facts.append(el("span", "pc " + pc, t("seals.precheck") + ": " + t("precheck." + pc)));
      if (s.started_by) facts.append(el("span", "", t("seals.started_by") + " " + personName(s.started_by)));
      if (s.ended_by) facts.append(el("span", "", t("seals.ended_by") + " " + personName(s.ended_by)));
      const counts = Object.entries(s.alerts || {}).map(([sev, n]) => t("sev." + sev) + " " + n);
      if (s.start_ms) facts.append(el("span", counts.length ? "bad" : "", t("seals.alerts") + ": " + (counts.join(" · ") || "0")));
      row.append(head, el("div", "muted", s.id), planned, actual, facts);
      sec.append(row);
    }
    box.append(sec);
  }
}

// -- the pre-seal check (supervisors): run it, read the evidence, record it with a note -------
function precheckList(ul, items) {
  ul.textContent = "";
  for (const it of items) {
    const li = el("li", it.passed ? "pass" : "fail");
    li.append(el("b", "", (it.passed ? "✓ " : "✗ ") + it.item));
    for (const p of it.problems || []) li.append(el("div", "problem", p));
    ul.append(li);
  }
}
async function runPrecheck() {
  const r = await api("GET", "/api/precheck");
  const out = $("#act-precheck .out");
  if (!r.ok) { out.className = "out note-bad"; out.textContent = t("actions.refused") + ((r.data && r.data.reason) || r.status); return; }
  precheckList($("#precheck-items"), r.data.items);
  out.className = "out " + (r.data.passed ? "note-ok" : "note-bad");
  out.textContent = t(r.data.passed ? "precheck.ready" : "precheck.not_ready") + " · " + hms(Date.parse(r.data.ts));
}
async function fetchLatestPrecheck() {
  const r = await api("GET", "/api/precheck/latest");
  const box = $("#precheck-latest");
  box.textContent = "";
  if (!r.ok || !r.data.recorded) { box.textContent = t("precheck.none"); return; }
  const d = r.data;
  box.append(el("div", d.passed ? "note-ok" : "note-bad", t(d.passed ? "precheck.passed" : "precheck.failed") + " · " + when(Date.parse(d.ts)) + " · " + t("precheck.by") + " " + personName(d.inspector || "—")));
  if (d.remediation) box.append(el("div", "remediation", d.remediation));
  const ul = el("ul", "pc-items");
  precheckList(ul, d.items);
  box.append(ul);
}

// -- the muster: who is inside each zone, who is unseen; printable for an evacuation ---------
async function fetchMuster() {
  S.musterAt = now();
  const r = await api("GET", "/api/muster");
  if (r.ok) renderMuster(r.data);
}
function renderMuster(m) {
  $("#muster-site").textContent = (S.site && S.site.name) || m.site;
  $("#muster-time").textContent = when(m.now_ms);
  $("#muster-summary").textContent = t("muster.inside", { n: m.inside }) + " · " + t("muster.unseen", { n: m.unseen.length, m: m.unseen_min });
  const unseen = $("#muster-unseen");
  unseen.classList.toggle("hidden", !m.unseen.length);
  unseen.textContent = m.unseen.length ? t("muster.unseen_list") + m.unseen.map((b) => personName(b) + " (" + b + ")").join(", ") : "";
  const box = $("#muster-zones");
  box.textContent = "";
  const byBadge = Object.fromEntries(m.people.map((p) => [p.badge, p]));
  for (const z of m.zones) {
    if (z.kind === "public" && !z.count) continue;
    const sec = el("section", "mzone" + (z.count ? "" : " empty-zone"));
    sec.dataset.zone = z.zone;
    sec.append(el("h3", "", zoneName(z.zone) + " · " + z.count));
    if (!z.count) { sec.append(el("div", "muted", t("muster.empty"))); box.append(sec); continue; }
    const table = el("table", "dtable mtable");
    table.append(row("th", [t("muster.col_badge"), t("muster.col_name"), t("muster.col_role"), t("muster.col_seen"), t("muster.col_note")]));
    for (const b of z.badges) {
      const p = byBadge[b] || { badge: b };
      const notes = [];
      if (p.permitted === false) notes.push(t("muster.not_permitted"));
      if (p.unseen) notes.push(t("muster.unseen_flag"));
      const tr = row("td", [b, p.name || "?", p.role ? t("role." + p.role) : "?", p.last_seen_ms ? when(p.last_seen_ms) : t("muster.never"), notes.join(" · ")]);
      tr.dataset.badge = b;
      if (p.unseen) tr.classList.add("unseen");
      if (p.permitted === false) tr.classList.add("bad");
      table.append(tr);
    }
    sec.append(table);
    box.append(sec);
  }
}

boot();
