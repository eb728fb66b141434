// p2pd web UI: one page, plain JavaScript, no build step.
//
// It speaks the daemon's control API with the session cookie set by /api/login, sends
// the session's CSRF token on every state-changing request, and keeps itself current
// from the server-sent events of /api/events/live (plus a slow poll for what has no
// event, such as round-trip times). Text that comes from the network (file names, peer
// agents) is only ever inserted as text, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);

const state = {
  csrf: null,
  status: null,
  files: [],
  downloads: new Map(), // cid -> DownloadInfo
  peers: [],
  history: [], // RateSample
  events: null,
  timers: [],
  page: "dashboard",
};

// ---- helpers ----------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function bytes(n) {
  if (!Number.isFinite(n)) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return i === 0 ? `${n} B` : `${n.toFixed(n < 10 ? 2 : 1)} ${units[i]}`;
}
const rate = (n) => `${bytes(Math.round(n || 0))}/s`;

function duration(secs) {
  if (secs === null || secs === undefined || !Number.isFinite(secs)) return "–";
  secs = Math.round(secs);
  if (secs < 60) return `${secs}s`;
  if (secs < 3600) return `${Math.floor(secs / 60)}m ${secs % 60}s`;
  const h_ = Math.floor(secs / 3600);
  if (h_ < 48) return `${h_}h ${Math.floor((secs % 3600) / 60)}m`;
  return `${Math.floor(h_ / 24)}d ${h_ % 24}h`;
}

const short = (s, n = 10) => (s && s.length > 2 * n + 1 ? `${s.slice(0, n)}…${s.slice(-n)}` : s || "");

let toastTimer = null;
function toast(message) {
  const t = $("toast");
  t.textContent = message;
  t.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => t.classList.remove("show"), 2500);
}

async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = h("textarea", {}, text);
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  toast("Copied");
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// Background refreshes (timers, live events) end here when they fail: a 401 has already
// sent the page to the login view (see api()), and a network error while the daemon is
// away is shown by the live indicator; neither is an error in the page.
function refreshFailed(e) {
  if (e instanceof ApiError && e.status === 401) return;
  console.warn("refresh failed:", e && e.message ? e.message : e);
}

// Calls the API; a 401 sends the user back to the login page.
async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && state.csrf) headers["X-CSRF-Token"] = state.csrf;
  const res = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) {
    const message = (data && data.message) || `HTTP ${res.status}`;
    if (res.status === 401 && !path.startsWith("/api/login")) showLogin("Your session ended: log in again.");
    throw new ApiError(res.status, message);
  }
  return data;
}

// ---- session ----------------------------------------------------------------------

function showOnly(id) {
  for (const v of ["boot", "login-view", "setup-view", "app"]) $(v).hidden = v !== id;
}

function stopLive() {
  if (state.events) { state.events.close(); state.events = null; }
  for (const t of state.timers) clearInterval(t);
  state.timers = [];
  $("live").classList.remove("on");
}

function showLogin(message) {
  stopLive();
  state.csrf = null;
  showOnly("login-view");
  $("login-error").textContent = message || "";
  $("login-password").value = "";
  $("login-password").focus();
  if (!location.hash.startsWith("#/login")) history.replaceState(null, "", "#/login");
}

async function boot() {
  const setup = location.hash.match(/^#\/setup\/([0-9a-f]+)/);
  let session;
  try {
    session = await api("GET", "/api/session");
  } catch (e) {
    $("boot").textContent = `Cannot reach the daemon: ${e.message}`;
    return;
  }
  if (setup && !session.password_set) {
    showOnly("setup-view");
    $("setup-form").dataset.token = setup[1];
    $("setup-password").focus();
    return;
  }
  if (session.authenticated && session.via === "session") {
    state.csrf = session.csrf_token;
    enterApp();
  } else {
    showLogin(session.password_set ? "" :
      "No password is set yet. Run `p2pd passwd`, or open the setup link the daemon printed.");
  }
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("login-error").textContent = "";
  $("login-submit").disabled = true;
  try {
    const s = await api("POST", "/api/login", { password: $("login-password").value });
    state.csrf = s.csrf_token;
    history.replaceState(null, "", "#/dashboard");
    enterApp();
  } catch (e) {
    $("login-error").textContent = e.message;
  } finally {
    $("login-submit").disabled = false;
  }
});

$("setup-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const password = $("setup-password").value;
  if (password !== $("setup-repeat").value) {
    $("setup-error").textContent = "The passwords differ.";
    return;
  }
  try {
    const s = await api("POST", "/api/setup", { token: $("setup-form").dataset.token, password });
    state.csrf = s.csrf_token;
    history.replaceState(null, "", "#/dashboard");
    enterApp();
  } catch (e) {
    $("setup-error").textContent = e.message;
  }
});

$("logout").addEventListener("click", async () => {
  try { await api("POST", "/api/logout"); } catch { /* logged out anyway */ }
  showLogin("You are logged out.");
});

// ---- the application --------------------------------------------------------------

function enterApp() {
  showOnly("app");
  route();
  refreshAll();
  startLive();
}

function route() {
  if (state.csrf === null) return;
  const m = location.hash.match(/^#\/(dashboard|search|files|downloads|shares|peers|peer|relays)(?:\/([^/?#]+))?/);
  const page = m ? m[1] : "dashboard";
  state.page = page;
  for (const p of ["dashboard", "search", "files", "downloads", "shares", "peers", "peer", "relays"]) $(`page-${p}`).hidden = p !== page;
  const tab = page === "peer" ? "peers" : page;
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.page === tab);
  // Show the page's data as it is now, not as of the last poll (search.js: search, peer;
  // share.js: shares).
  const refresh = {
    dashboard: refreshStatus, search: refreshFiles, files: () => Promise.all([refreshFiles(), refreshCatalog()]),
    downloads: refreshDownloads, shares: refreshShares, relays: refreshRelays, peers: refreshPeers, peer: () => loadPeerPage(m && m[2] ? decodeURIComponent(m[2]) : ""),
  }[page];
  refresh().catch(() => {});
  if (page === "dashboard") drawChart();
}
window.addEventListener("hashchange", () => {
  if (location.hash.startsWith("#/setup/") || location.hash.startsWith("#/login")) return;
  if (state.csrf === null) { boot(); return; }
  route();
});

async function refreshAll() {
  await Promise.allSettled([refreshStatus(), refreshFiles(), refreshDownloads(), refreshPeers(), refreshStats()]);
}

function startLive() {
  stopLive();
  const es = new EventSource("/api/events/live");
  state.events = es;
  es.onopen = () => { $("live").classList.add("on"); $("live").title = "Live updates: connected"; refreshAll(); };
  es.onerror = () => {
    $("live").classList.remove("on");
    $("live").title = "Live updates: reconnecting…";
    // The browser reconnects by itself; if the session ended, go to the login page.
    api("GET", "/api/session").then((s) => { if (!s.authenticated) showLogin("Your session ended: log in again."); }).catch(() => {});
  };
  es.onmessage = (msg) => {
    let ev;
    try { ev = JSON.parse(msg.data); } catch { return; }
    onEvent(ev);
  };
  // What has no event (RTT, per-peer bytes, uptime) is polled slowly.
  state.timers.push(setInterval(refreshPeers, 3000));
  state.timers.push(setInterval(refreshStatus, 5000));
}

let peersSoon = null;
function onEvent(ev) {
  switch (ev.type) {
    case "net":
      clearTimeout(peersSoon);
      peersSoon = setTimeout(() => { refreshPeers(); refreshStatus(); }, 150);
      break;
    case "download": {
      let d = ev.download;
      const before = state.downloads.get(d.cid);
      // A resumed download reports nothing until it has reopened its partial file:
      // keep showing what it held rather than dropping the bar to zero.
      if (d.size === 0 && before && before.size > 0 && d.state === "finding") {
        d = { ...d, size: before.size, bytes_done: before.bytes_done, name: d.name || before.name };
      }
      state.downloads.set(d.cid, d);
      renderDownloads();
      findingChanged();
      if (d.state === "done" && (!before || before.state !== "done")) refreshFiles();
      break;
    }
    case "file_added":
    case "file_changed":
      refreshFiles();
      refreshStatus();
      break;
    case "stats":
      state.history.push(ev.sample);
      if (state.history.length > 300) state.history.shift();
      renderRates();
      break;
    case "reputation": {
      const peer = state.peers && state.peers.find((p) => p.peer_id === ev.peer_id);
      if (peer && (peer.reputation !== ev.score || peer.banned !== ev.banned)) {
        peer.reputation = ev.score;
        peer.banned = ev.banned;
        renderPeers();
      }
      break;
    }
    case "settings":
      renderName(ev.settings.display_name);
      break;
  }
}

// ---- dashboard --------------------------------------------------------------------

function renderName(name) {
  $("top-name").textContent = name || "";
  if (document.activeElement !== $("name-input")) $("name-input").value = name || "";
}

// Never rejects: see refreshFailed.
function refreshStatus() { return loadStatus().catch(refreshFailed); }

async function loadStatus() {
  const s = await api("GET", "/api/status");
  state.status = s;
  const node = s.node || {};
  renderName(s.display_name);
  $("node-id").textContent = node.peer_id || "";
  $("node-version").textContent = s.version;
  $("node-uptime").textContent = duration(s.uptime_secs);
  const nat = $("nat-status");
  nat.textContent = node.nat_status === "public" ? "public (reachable)" : "private (behind NAT)";
  nat.className = `pill ${node.nat_status === "public" ? "good" : "warn"}`;
  $("dht-mode").textContent = `${node.dht_server ? "server" : "client"} · ${node.routing_table_peers ?? 0} in routing table · ${node.provided_files ?? 0} announced`;
  const addrs = [];
  for (const a of node.external_addrs || []) addrs.push([a, "confirmed external address"]);
  for (const a of node.listen_addrs || []) if (!addrs.some(([x]) => x === a)) addrs.push([a, "listening"]);
  $("addresses").replaceChildren(...(addrs.length ? addrs.map(([a, kind]) => h("li", { title: kind }, a)) : [h("li", { class: "muted" }, "none")]));
  $("stat-peers").textContent = node.connected_peers ?? 0;
  $("nav-peers").textContent = node.connected_peers ?? 0;
  $("stat-files").textContent = s.files;
}

$("name-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    const s = await api("PUT", "/api/settings", { display_name: $("name-input").value });
    $("name-input").blur();
    renderName(s.display_name);
    toast(s.display_name ? `Display name set to ${s.display_name}` : "Display name cleared");
  } catch (e) {
    toast(e.message);
  }
});

// Never rejects: see refreshFailed.
function refreshStats() { return loadStats().catch(refreshFailed); }

async function loadStats() {
  const s = await api("GET", "/api/stats");
  state.history = s.history;
  renderRates();
}

function renderRates() {
  const recent = state.history.slice(-3);
  const avg = (k) => recent.reduce((a, s) => a + s[k], 0) / Math.max(1, recent.length);
  $("stat-down").textContent = rate(avg("down"));
  $("stat-up").textContent = rate(avg("up"));
  if (state.page === "dashboard") drawChart();
}

function drawChart() {
  const canvas = $("chart");
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (!width || !height) return;
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * dpr);
  canvas.height = Math.round(height * dpr);
  const ctx = canvas.getContext("2d");
  ctx.scale(dpr, dpr);
  ctx.clearRect(0, 0, width, height);
  const css = getComputedStyle(document.documentElement);
  const color = (v) => css.getPropertyValue(v).trim();
  const samples = state.history;
  const max = Math.max(1024, ...samples.map((s) => Math.max(s.down, s.up)));
  const pad = 4;
  // Grid lines at quarters.
  ctx.strokeStyle = color("--line");
  ctx.lineWidth = 1;
  for (let i = 1; i < 4; i++) {
    const y = Math.round(pad + ((height - 2 * pad) * i) / 4) + 0.5;
    ctx.beginPath(); ctx.moveTo(0, y); ctx.lineTo(width, y); ctx.stroke();
  }
  const n = 300; // five minutes, one sample a second, newest at the right
  const x = (i) => width - ((samples.length - 1 - i) / (n - 1)) * width;
  const y = (v) => height - pad - (v / max) * (height - 2 * pad);
  for (const [key, col] of [["down", "--down"], ["up", "--up"]]) {
    if (samples.length < 2) break;
    ctx.beginPath();
    samples.forEach((s, i) => (i ? ctx.lineTo(x(i), y(s[key])) : ctx.moveTo(x(i), y(s[key]))));
    ctx.strokeStyle = color(col);
    ctx.lineWidth = 2;
    ctx.stroke();
    ctx.lineTo(x(samples.length - 1), height);
    ctx.lineTo(x(0), height);
    ctx.closePath();
    ctx.globalAlpha = 0.12;
    ctx.fillStyle = color(col);
    ctx.fill();
    ctx.globalAlpha = 1;
  }
  $("chart-max").textContent = `top of chart: ${rate(max)}`;
}
window.addEventListener("resize", () => { if (state.page === "dashboard") drawChart(); });

// ---- files ------------------------------------------------------------------------

// Never rejects: see refreshFailed.
function refreshFiles() { return loadFiles().catch(refreshFailed); }

async function loadFiles() {
  state.files = await api("GET", "/api/files");
  renderFiles();
  findingChanged();
}

function renderFiles() {
  const rows = state.files.slice().reverse().map((f) => {
    const name = f.name || "(unnamed)";
    let stateText = f.state === "changed" ? "changed on disk: not shared, add it again" : f.state === "complete" ? (f.published ? "shared" : "not announced") : `downloading ${f.have_chunks}/${f.chunks}`;
    if (f.location === "in_place") stateText += " · in place";
    if (f.folder) stateText = `folder of ${f.chunks} files · ` + (f.state === "complete" ? "shared" : "fetch unfinished");
    stateText += f.listed ? (f.in_catalog ? " · listed" : " · listed when shared") : " · unlisted";
    const actions = [];
    // A folder: its tree (a link to its listing) and a ticket; the file actions do not apply.
    if (f.folder) return h("tr", { "data-cid": f.cid, "data-folder": "" },
      h("td", { "data-label": "Name", class: "file-name" }, h("a", { href: `/api/folders/${f.cid}`, title: "The folder's files (JSON)" }, `📁 ${name}/`)),
      h("td", { "data-label": "Size", class: "num" }, bytes(f.size)),
      h("td", { "data-label": "CID" }, h("code", { class: "cid", title: f.cid }, f.cid)),
      h("td", { "data-label": "State" }, stateText),
      h("td", { class: "actions" }, f.state === "complete" ? h("a", { class: "button small", href: `#/shares/${f.cid}`, "data-action": "share" }, "Ticket") : ""));
    actions.push(h("button", { type: "button", class: "small", "data-action": f.listed ? "unlist" : "list",
      title: f.listed ? "Hide it from search and browsing (fetchable by CID only)" : "Let others find it by the words of its name",
      onclick: () => setListed(f, !f.listed) }, f.listed ? "Unlist" : "List"));
    if (f.state === "complete" || f.state === "partial") actions.push(openButton(f.cid, name));
    if (f.state === "complete") {
      actions.push(h("a", { class: "button small", href: `/api/files/${f.cid}/content`, download: name, "data-action": "save" }, "Save"));
    }
    if (f.published) {
      actions.push(h("button", { type: "button", class: "small", "data-action": "unpublish", onclick: () => fileAction("POST", `/api/files/${f.cid}/unpublish`, `${name} is no longer announced`) }, "Stop sharing"));
    } else if (f.state === "complete") {
      actions.push(h("button", { type: "button", class: "small", "data-action": "publish", onclick: () => fileAction("POST", `/api/files/${f.cid}/publish`, `${name} is announced again`) }, "Publish again"));
    }
    if (f.state === "complete") actions.push(h("a", { class: "button small", href: `#/shares/${f.cid}`, "data-action": "share" }, "Ticket"));
    actions.push(h("button", { type: "button", class: "small danger", "data-action": "remove", onclick: () => {
      if (confirm(`Remove ${name} from this node?${f.location === "in_place" ? " (the file itself stays where it is)" : ""}`)) {
        fileAction("DELETE", `/api/files/${f.cid}`, `${name} removed`);
      }
    } }, "Remove"));
    return h("tr", { "data-cid": f.cid },
      h("td", { "data-label": "Name", class: "file-name" }, name),
      h("td", { "data-label": "Size", class: "num" }, bytes(f.size)),
      h("td", { "data-label": "CID" }, h("span", { class: "cid-cell" },
        h("code", { class: "cid", title: f.cid }, f.cid),
        h("button", { type: "button", class: "small copy", onclick: () => copy(f.cid) }, "Copy"))),
      h("td", { "data-label": "State" }, stateText),
      h("td", { class: "actions" }, actions));
  });
  $("files-body").replaceChildren(...rows);
  $("files-empty").hidden = rows.length > 0;
}

async function fileAction(method, path, done) {
  try {
    await api(method, path);
    toast(done);
  } catch (e) {
    toast(e.message);
  }
  refreshFiles();
}

$("upload-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const file = $("upload-input").files[0];
  if (!file) { $("upload-status").textContent = "Choose a file first."; return; }
  const bar = $("upload-progress");
  bar.hidden = false;
  bar.className = "bar";
  bar.firstElementChild.style.width = "0%";
  $("upload-submit").disabled = true;
  $("upload-status").textContent = `Uploading ${file.name}…`;
  const xhr = new XMLHttpRequest();
  xhr.open("POST", `/api/upload?name=${encodeURIComponent(file.name)}`);
  xhr.setRequestHeader("Content-Type", "application/octet-stream");
  xhr.setRequestHeader("X-CSRF-Token", state.csrf || "");
  xhr.upload.onprogress = (e) => {
    if (e.lengthComputable) bar.firstElementChild.style.width = `${(100 * e.loaded) / e.total}%`;
  };
  xhr.onload = () => {
    $("upload-submit").disabled = false;
    let data = null;
    try { data = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
    if (xhr.status === 200 && data) {
      bar.classList.add("done");
      bar.firstElementChild.style.width = "100%";
      $("upload-status").textContent = `${data.already_present ? "Already shared" : "Shared"}: ${data.name} (${bytes(data.size)}) — ${data.cid}`;
      $("upload-input").value = "";
      refreshFiles();
    } else {
      bar.classList.add("failed");
      $("upload-status").textContent = `Upload failed: ${(data && data.message) || `HTTP ${xhr.status}`}`;
      if (xhr.status === 401) showLogin("Your session ended: log in again.");
    }
  };
  xhr.onerror = () => {
    $("upload-submit").disabled = false;
    bar.classList.add("failed");
    $("upload-status").textContent = "Upload failed: the connection broke.";
  };
  xhr.send(file);
});

$("path-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("path-status").textContent = "Importing…";
  try {
    const res = await fetch("/api/add", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": state.csrf || "" },
      body: JSON.stringify({ path: $("path-input").value.trim(), no_copy: $("path-nocopy").checked }),
    });
    const lines = (await res.text()).trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
    const last = lines[lines.length - 1] || {};
    if (!res.ok || last.event === "error") throw new Error(last.message || `HTTP ${res.status}`);
    $("path-status").textContent = `Shared: ${last.name} (${bytes(last.size)}) — ${last.cid}`;
    $("path-input").value = "";
    refreshFiles();
  } catch (e) {
    $("path-status").textContent = `Failed: ${e.message}`;
  }
});

// ---- downloads --------------------------------------------------------------------

// Never rejects: see refreshFailed.
function refreshDownloads() { return loadDownloads().catch(refreshFailed); }

async function loadDownloads() {
  const list = await api("GET", "/api/downloads");
  state.downloads = new Map(list.map((d) => [d.cid, d]));
  renderDownloads();
}

function downloadCard(d) {
  const pct = d.size > 0 ? Math.floor((100 * d.bytes_done) / d.size) : d.state === "done" ? 100 : 0;
  const status = d.paused ? "paused" : d.state;
  const bar = h("div", { class: `bar ${status}`, role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": pct, "aria-label": "progress" }, h("div"));
  bar.firstElementChild.style.width = `${pct}%`;
  const running = ["queued", "finding", "downloading", "verifying"].includes(d.state);
  const buttons = [];
  if (running) buttons.push(h("button", { type: "button", class: "small", "data-action": "pause", onclick: () => downloadAction("POST", `/api/downloads/${d.cid}/pause`) }, "Pause"));
  if (d.state === "failed" || d.state === "paused") buttons.push(h("button", { type: "button", class: "small", "data-action": "resume", onclick: () => downloadAction("POST", `/api/downloads/${d.cid}/resume`) }, d.paused ? "Resume" : "Retry"));
  if (d.state !== "done" && d.state !== "cancelled") buttons.push(h("button", { type: "button", class: "small danger", "data-action": "cancel", onclick: () => downloadAction("DELETE", `/api/downloads/${d.cid}`) }, "Cancel"));
  if (running || d.state === "done") buttons.push(openButton(d.cid, d.name));
  if (d.state === "done") buttons.push(h("a", { class: "button small", href: `/api/files/${d.cid}/content`, download: d.name || d.cid, "data-action": "save" }, "Save"));
  const stateText = d.paused ? "paused" : d.state === "failed" ? `failed: ${d.error || ""}` : d.state;
  return h("div", { class: "card download", "data-cid": d.cid, "data-state": status },
    h("div", { class: "download-head" },
      h("span", { class: "download-name", title: d.name || d.cid }, d.name || short(d.cid, 14)),
      h("span", { class: "num pct" }, `${pct}%`)),
    bar,
    h("div", { class: "download-meta" },
      h("span", { class: "dl-state" }, stateText),
      h("span", { class: "num" }, `${bytes(d.bytes_done)} of ${d.size ? bytes(d.size) : "?"}`),
      running ? h("span", { class: "num" }, rate(d.rate)) : null,
      running ? h("span", { class: "num" }, `ETA ${duration(d.eta_secs)}`) : null,
      h("span", { class: "num" }, `${running ? d.peers : d.per_peer.length} peer${(running ? d.peers : d.per_peer.length) === 1 ? "" : "s"}`),
      d.state === "done" ? h("span", { class: "num" }, `in ${d.elapsed_secs.toFixed(1)}s`) : null),
    h("div", { class: "download-foot" },
      h("code", { class: "muted cid", title: d.cid }, short(d.cid, 14)),
      h("span", { class: "actions" }, buttons)));
}

function renderDownloads() {
  const list = [...state.downloads.values()].sort((a, b) => a.elapsed_secs - b.elapsed_secs);
  $("downloads-list").replaceChildren(...list.map(downloadCard));
  $("downloads-empty").hidden = list.length > 0;
}

async function downloadAction(method, path) {
  try {
    let d = await api(method, path);
    const before = state.downloads.get(d.cid);
    if (d.size === 0 && before && before.size > 0 && d.state === "finding") {
      d = { ...d, size: before.size, bytes_done: before.bytes_done, name: d.name || before.name };
    }
    state.downloads.set(d.cid, d);
    renderDownloads();
  } catch (e) {
    toast(e.message);
  }
}

$("fetch-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("fetch-error").textContent = "";
  const cid = $("fetch-cid").value.trim();
  try {
    const d = await api("POST", "/api/downloads", { cid });
    state.downloads.set(d.cid, d);
    renderDownloads();
    $("fetch-cid").value = "";
  } catch (e) {
    $("fetch-error").textContent = e.message;
  }
});

// ---- peers ------------------------------------------------------------------------

// Never rejects: see refreshFailed.
function refreshPeers() { return loadPeers().catch(refreshFailed); }

async function loadPeers() {
  state.peers = await api("GET", "/api/peers");
  renderPeers();
}

function renderPeers() {
  const rows = state.peers.map((p) => {
    const status = p.banned ? h("span", { class: "pill bad" }, "banned") :
      p.reputation === null || p.reputation === undefined ? h("span", { class: "muted" }, "no score yet") : p.reputation.toFixed(1);
    return h("tr", { "data-peer": p.peer_id },
      h("td", { "data-label": "Peer", class: "stack" },
        h("div", { class: "with-copy" },
          h("a", { href: `#/peer/${p.peer_id}`, class: "peer-link", title: `Files of ${p.peer_id}` }, h("code", { class: "peer-id" }, short(p.peer_id, 8))),
          h("button", { type: "button", class: "small copy", onclick: () => copy(p.peer_id) }, "Copy")),
        h("div", { class: "muted small" }, p.agent || "", p.addrs && p.addrs[0] ? ` · ${p.addrs[0]}` : "")),
      h("td", { "data-label": "Connection" }, h("span", { class: `pill ${p.direct ? "good" : "warn"}` }, p.direct ? "direct" : "relayed")),
      h("td", { "data-label": "RTT", class: "num" }, p.rtt_ms === null || p.rtt_ms === undefined ? "–" : `${p.rtt_ms.toFixed(1)} ms`),
      h("td", { "data-label": "Received", class: "num" }, bytes(p.bytes_received)),
      h("td", { "data-label": "Sent", class: "num" }, bytes(p.bytes_sent)),
      h("td", { "data-label": "Rate ↓ / ↑", class: "num" }, `${rate(p.rate_down)} / ${rate(p.rate_up)}`),
      h("td", { "data-label": "Reputation" }, status));
  });
  $("peers-body").replaceChildren(...rows);
  $("peers-empty").hidden = rows.length > 0;
  $("nav-peers").textContent = rows.length;
  $("stat-peers").textContent = rows.length;
}

// ---- start ------------------------------------------------------------------------

document.addEventListener("click", (ev) => {
  const button = ev.target.closest("[data-copy-from]");
  if (button) copy($(button.dataset.copyFrom).textContent);
});

boot();
